"""Transfer from ImageNet (family ``transfer``): ``<backbone>-features-<clf>`` and ``<backbone>-finetune``.

Frozen features reuse the classical classifiers (:func:`pipelines.classifiers.make_classifier`) and the
classical validation-split tuning (:class:`pipelines.classifiers.TunedFeatureClassifier`); embeddings are cached on disk.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines import classifiers
from pipelines.registry import register
from pipelines.transfer import BACKBONES, BackboneFeatures, FineTuneClassifier, FrozenFeatureClassifier

FEATURE_CLASSIFIERS = ("logreg", "linsvm", "knn")


def _features_factory(backbone: str, clf: str) -> Callable[..., FrozenFeatureClassifier]:
    def factory(resolution: int = 224, weights: str = "imagenet", batch_size: int = 128, tune: bool = True,
                device: str = "auto", seed: int = 0) -> FrozenFeatureClassifier:
        est, grid = classifiers.make_classifier(clf, seed=seed, tune=tune)
        feats = BackboneFeatures(backbone=backbone, resolution=resolution, weights=weights,
                                 batch_size=batch_size, device=device)
        return FrozenFeatureClassifier(feats, est, grid, tune_max_train=classifiers.TUNE_MAX_TRAIN[clf], seed=seed)

    factory.__doc__ = f"Frozen ImageNet {backbone} embeddings (cached) → {clf} tuned on validation."
    factory.__name__ = f"{backbone}_features_{clf}"
    return factory


def _finetune_factory(backbone: str) -> Callable[..., FineTuneClassifier]:
    def factory(resolution: int = 224, weights: str = "imagenet", warmup_epochs: int = 1, epochs: int = 5,
                batch_size: int = 64, optimizer: str = "adamw", lr: float = 1e-3, backbone_lr_mult: float = 0.1,
                unfreeze_from: str | None = None, schedule: str = "onecycle", weight_decay: float = 0.05,
                label_smoothing: float = 0.1, augment: str = "standard", hflip: bool | None = None,
                patience: int | None = None, time_budget_s: float | None = None, compile: bool = False,
                device: str = "auto", seed: int = 0) -> FineTuneClassifier:
        return FineTuneClassifier(**locals())  # the closure's `backbone` is among locals()

    factory.__doc__ = (f"ImageNet {backbone} + new head: linear-probe warm-up, then fine-tuning with a lower "
                       "backbone learning rate.")
    factory.__name__ = f"{backbone}_finetune"
    return factory


for _b in BACKBONES:
    for _c in FEATURE_CLASSIFIERS:
        _missing = None if _c in classifiers.CLASSIFIERS else f"classifier {_c!r} is not in pipelines.classifiers"
        register(f"{_b}-features-{_c}", family="transfer", features=f"{_b}", classifier=_c,
                 unavailable_reason=_missing)(_features_factory(_b, _c))
    register(f"{_b}-finetune", family="transfer", features=_b, classifier="softmax")(_finetune_factory(_b))
