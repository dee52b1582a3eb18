"""Hand-crafted feature extractors, each a scikit-learn transformer over uint8 image batches.

A module here registers the features it defines with ``@register_feature`` (:mod:`pipelines.features.registry`);
the classical catalogue imports every module of this package (no import list) and offers each feature with
every classifier that suits its kind.
"""
