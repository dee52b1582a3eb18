"""Classical recipes: hand-crafted features → classical classifier, tuned on the validation split.

Every pipeline is named ``<feature>-<classifier>``: one for each feature registered with ``@register_feature``
beside its class in ``pipelines/features/`` (:mod:`pipelines.features.registry`: what the feature is, its kind
and the recipe's values where they differ from its class's defaults; every module of that package is imported
here) and each classifier registered in ``pipelines.classifiers`` that suits the feature's kind
(``register_classifier(..., suits=...)``; ``combos()`` lists them), whichever is registered first. For example
``hog-linsvm`` is HOG (``FEATURES["hog"]``, in ``pipelines/features/hog.py``) → standardised linear SVM
(``pipelines.classifiers`` documents every classifier and its validation grid), ``sift-bovw-rbfsvm`` is
SIFT bag of words → RBF SVM, ``colorhist-knn`` colour histograms → k-NN. ``python -m bench list 'hog-*'``
prints them; a pipeline's parameters are its feature's and its classifier's, plus ``tune``,
``tune_max_train`` and ``seed``. The built-in features:

==========  ============================================================================================
feature     description (default configuration)
==========  ============================================================================================
pixels      raw intensities in [0, 1] (optional ``size`` resize and ``grayscale``)
colorhist   joint 8×8×8 RGB and HSV histograms, L1 (grayscale data: 32-bin intensity histogram)
hog         OpenCV HOG, cell from the image size (28/32 px → 4 px cells, 2×2-cell blocks, 9 bins)
hogcolor    HOG + square-rooted RGB/HSV histograms on a 2×2 grid, each part scaled to unit norm
lbp         uniform LBP histograms, radii 1 and 2, 2×2 grid
sift-bovw   dense SIFT (every 4 px, 2 sizes) + DoG SIFT → 512 words (MiniBatchKMeans on training descriptors),
            Hellinger encoding, 1×1 + 2×2 spatial pyramid
orb-bovw    dense + FAST ORB (images upscaled to 64 px) → 512 words over bits (Hamming), same encoding
akaze-bovw  dense AKAZE MLDB (images upscaled to 64 px) → 512 words, same encoding
surf-bovw   SURF bag of words: only with a non-free OpenCV build, otherwise listed as unavailable
tiny        tiny images (Torralba et al. 2008): 16×16 grayscale thumbnail, zero mean, unit norm
sift-fv     dense SIFT (every 4 px, 16×16-px patches, σ 0.8), RootSIFT, PCA 64, + (x, y) → improved Fisher vectors
            over a 256-Gaussian diagonal GMM (2·256·66 = 33,792-d, power + L2 normalised; ``pyramid`` optional)
sift-vlad   the same descriptors → VLAD over 128 k-means centres, intra-normalised (8,192-d)
sift-spm    dense SIFT (every 4 px at 16, 24 and 32 px, σ 0.8) → 400 words over 1×1 + 2×2 + 4×4 cells, L1
            (Lazebnik et al.'s spatial pyramid, with the histogram-intersection SVM ``hiksvm``)
==========  ============================================================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pipelines import classifiers
from pipelines.classifiers import (
    ClassifierSpec,
    TunedFeatureClassifier,
    make_classifier,
    on_register_classifier,
)
from pipelines.discovery import import_submodules
from pipelines.features import registry as feature_registry
from pipelines.features.encoding import DescriptorEncoding
from pipelines.features.registry import FeatureSpec, on_register_feature
from pipelines.registry import register

FEATURES = feature_registry.FEATURES  # re-exported: the registry's dict (``pipelines.features.registry``)


def combos() -> dict[str, tuple[str, ...]]:
    """Feature name -> the registered classifiers it is offered with (one pipeline each)."""
    return {f: tuple(c for c, spec in classifiers.CLASSIFIERS.items() if spec.suits_feature(f, fspec.kind))
            for f, fspec in feature_registry.FEATURES.items()}


def build(feature: str | FeatureSpec, classifier: str, **params: Any) -> TunedFeatureClassifier:
    """The estimator for ``<feature>-<classifier>`` with ``params`` (feature's, classifier's, tuning)."""
    fspec = feature if isinstance(feature, FeatureSpec) else feature_registry.FEATURES[feature]
    builder = fspec.builder
    cdefaults = classifiers.get_classifier(classifier).defaults
    fkw = {k: params[k] for k in fspec.defaults}
    if "seed" in inspect.signature(builder).parameters:  # e.g. a vocabulary's k-means: the pipeline's seed
        fkw["seed"] = params["seed"]
    bovw = isinstance(builder, type) and issubclass(builder, DescriptorEncoding)
    ckw = {k: params[k] for k in cdefaults}
    # Hellinger bag-of-words, Fisher and VLAD vectors are normalised already: linear models use them unstandardised
    clf, grid = make_classifier(classifier, seed=params["seed"], tune=params["tune"],
                                histogram=fspec.kind == "histogram", standardise=not bovw, **ckw)
    return TunedFeatureClassifier(builder(**fkw), clf, grid, tune_max_train=params["tune_max_train"],
                                  seed=params["seed"])


def _factory(fspec: FeatureSpec, clf: ClassifierSpec) -> Callable[..., TunedFeatureClassifier]:
    feature = fspec.name
    fdefaults = fspec.defaults
    fdefaults.update({k: v for k, v in clf.feature_params.items() if k in fdefaults})  # e.g. chi2svm: L1 words
    clash = set(fdefaults) & {*clf.defaults, "tune", "tune_max_train", "seed"}
    if clash:
        raise ValueError(f"{feature}-{clf.name}: feature and classifier both have parameter(s) {sorted(clash)}")
    defaults = {**fdefaults, **clf.defaults, "tune": True, "tune_max_train": clf.tune_max_train, "seed": 0}
    classifier = clf.name
    fallbacks = clf.fallbacks

    def factory(**params: Any) -> TunedFeatureClassifier:
        return build(fspec, classifier, **{**defaults, **params})

    def annotation(k: str, v: Any) -> Any:  # what the parameter accepts, for pipelines.params' checks
        if k in clf.tuned:
            return type(fallbacks[k]) | None
        if isinstance(v, tuple | list):
            return list | tuple
        return Any if v is None else type(v)

    factory.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v, annotation=annotation(k, v))
         for k, v in defaults.items()])
    factory.__name__ = f"{feature}_{classifier}".replace("-", "_")
    factory.__doc__ = f"{fspec.description} → {clf.description}."
    return factory


def _register_pipeline(fspec: FeatureSpec, clf: ClassifierSpec) -> None:
    """Register ``<feature>-<classifier>`` if the classifier suits the feature."""
    if clf.suits_feature(fspec.name, fspec.kind):
        register(f"{fspec.name}-{clf.name}", family="classical", features=fspec.name, classifier=clf.name,
                 unavailable_reason=fspec.unavailable_reason())(_factory(fspec, clf))


def _pipelines_of_classifier(clf: ClassifierSpec) -> None:
    for fspec in list(feature_registry.FEATURES.values()):
        _register_pipeline(fspec, clf)


def _pipelines_of_feature(fspec: FeatureSpec) -> None:
    for clf in list(classifiers.CLASSIFIERS.values()):
        _register_pipeline(fspec, clf)


# Every pair once, whichever of its feature and classifier is registered last: the features of every module of
# pipelines.features (and any registered before, e.g. by a plugin) × the classifiers registered so far now,
# then each classifier and each feature registered later with those registered before it.
import_submodules("pipelines.features")  # each module registers the features it defines
on_register_classifier(_pipelines_of_classifier)
on_register_feature(_pipelines_of_feature, replay=False)  # the features so far were paired just above
