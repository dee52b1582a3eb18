"""Transfer from ImageNet (family ``transfer``): ``<backbone>-features-<clf>`` and ``<backbone>-finetune``.

Frozen features reuse the classical classifiers (:func:`pipelines.classifiers.make_classifier`) and the
classical validation-split tuning (:class:`pipelines.classifiers.TunedFeatureClassifier`); embeddings are cached on disk.
"""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import clone

from pipelines import classifiers
from pipelines.features.concat import ConcatFeatures
from pipelines.params import Interval
from pipelines.registry import derived_factory, register
from pipelines.transfer import (
    BACKBONES,
    MULTISCALE_BLOCKS,
    BackboneFeatures,
    FineTuneClassifier,
    FrozenFeatureClassifier,
)

FEATURE_CLASSIFIERS = ("logreg", "linsvm", "knn")


# Frozen embeddings want stronger regularisation than the classical grid's C ∈ {0.01, 0.1, 1}; the grid is
# searched on the whole training split (why: see docs/measurements.md#catalogue-transfer).
LOGREG_GRID = {"logisticregression__C": [0.001, 0.003, 0.01, 0.03]}


def _features_factory(backbone: str, clf: str) -> Callable[..., FrozenFeatureClassifier]:
    multiscale_default = backbone in MULTISCALE_BLOCKS

    def factory(resolution: int = 224, extra_resolution: int | list[int] | None = None, weights: str = "imagenet",
                multiscale: bool = multiscale_default, batch_size: int = 128, compile: bool = False,
                tune: bool = True, device: str = "auto", seed: int = 0) -> FrozenFeatureClassifier:
        est, grid = classifiers.make_classifier(clf, seed=seed, tune=tune)
        tune_max_train = classifiers.get_classifier(clf).tune_max_train
        if clf == "logreg" and tune:
            grid, tune_max_train = LOGREG_GRID, None
        feats = BackboneFeatures(backbone=backbone, resolution=resolution, weights=weights, multiscale=multiscale,
                                 batch_size=batch_size, compile=compile, device=device)
        # The same network at more input sizes, side by side (each part cached); why: see
        # docs/measurements.md#catalogue-transfer
        if extra_resolution is not None:
            extra = [extra_resolution] if isinstance(extra_resolution, int) else extra_resolution
            if not isinstance(extra, list | tuple) or not extra or not all(type(r) is int and r > 0 for r in extra):
                raise ValueError(f"extra_resolution must be a positive int or a list of them, got {extra_resolution!r}")
            feats = ConcatFeatures([feats, *(clone(feats).set_params(resolution=r) for r in extra)], normalize=False)
        return FrozenFeatureClassifier(feats, est, grid, tune_max_train=tune_max_train, seed=seed)

    blocks = f"; global-pooled blocks {MULTISCALE_BLOCKS[backbone]} + penultimate layer" if multiscale_default else ""
    factory.__doc__ = f"Frozen ImageNet {backbone} embeddings (cached{blocks}) → {clf} tuned on validation."
    factory.__name__ = f"{backbone}_features_{clf}"
    return factory


def _finetune_factory(backbone: str) -> Callable[..., FineTuneClassifier]:
    # the backbone is fixed by name: a factory that passed `locals()` once lost it (a closure variable the body
    # did not use), and each fine-tune pipeline silently trained efficientnet_lite0
    return derived_factory(f"{backbone}-finetune", FineTuneClassifier, f"ImageNet {backbone} + new head: "
                           "linear-probe warm-up, then fine-tuning with a lower backbone learning rate.",
                           fixed={"backbone": backbone})


for _b in BACKBONES:
    for _c in FEATURE_CLASSIFIERS:
        _missing = None if _c in classifiers.CLASSIFIERS else f"classifier {_c!r} is not in pipelines.classifiers"
        register(f"{_b}-features-{_c}", family="transfer", features=f"{_b}", classifier=_c,
                 unavailable_reason=_missing)(_features_factory(_b, _c))
    register(f"{_b}-finetune", family="transfer", features=_b, classifier="softmax",  # epochs=0: probe only
             ranges={"epochs": Interval(ge=0)})(_finetune_factory(_b))
