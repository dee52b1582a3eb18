"""Classical recipes: hand-crafted features → classical classifier, tuned on the validation split.

Every pipeline is named ``<feature>-<classifier>``: one for each feature in ``FEATURES`` (what each feature is,
its kind and its default configuration) and each classifier registered in ``pipelines.classifiers`` that suits
the feature's kind (``register_classifier(..., suits=...)``; ``combos()`` lists them). For example
``hog-linsvm`` is HOG (``FEATURES["hog"]``) → standardised linear SVM
(``pipelines.classifiers`` documents every classifier and its validation grid), ``sift-bovw-rbfsvm`` is
SIFT bag of words → RBF SVM, ``colorhist-knn`` colour histograms → k-NN. ``python -m bench list 'hog-*'``
prints them; a pipeline's parameters are its feature's and its classifier's, plus ``tune``,
``tune_max_train`` and ``seed``.

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
sift-fv     dense SIFT (every 4 px, 16×16-px patches), RootSIFT, PCA to 64, + (x, y) → improved Fisher vectors
            over a 256-Gaussian diagonal GMM (2·256·66 = 33,792-d, power + L2 normalised; ``pyramid`` optional)
sift-vlad   the same descriptors → VLAD over 128 k-means centres, intra-normalised (8,192-d)
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
from pipelines.features.bovw import BoVWFeatures, surf_unavailable_reason
from pipelines.features.colorhist import ColorHistFeatures
from pipelines.features.concat import ConcatFeatures
from pipelines.features.encoding import DescriptorEncoding, FisherVectorFeatures, VLADFeatures, sift_size
from pipelines.features.hog import HOGFeatures
from pipelines.features.lbp import LBPFeatures
from pipelines.features.pixels import PixelFeatures
from pipelines.features.tiny import TinyImageFeatures
from pipelines.registry import register


def _hogcolor(cell: int | None = None, orientations: int = 9, bins: int = 8, grid: int = 2) -> ConcatFeatures:
    return ConcatFeatures([HOGFeatures(cell=cell, orientations=orientations),
                           ColorHistFeatures(bins=bins, space="rgb+hsv", grid=grid, sqrt=True)])


_BOVW_DENSE = {"detector": "both", "step": 4, "sizes": (6.0, 12.0), "min_size": 32, "max_keypoints": 100}
# 16×16-px SIFT patches (4-px bins, as Lazebnik et al. 2006) every 4 px: OpenCV sizes scale the patch
_DENSE_SIFT = {"detector": "dense", "step": 4, "sizes": (sift_size(4),), "min_size": 64, "max_keypoints": 100}
_BOVW_UPSCALED = {"detector": "both", "step": 8, "sizes": (16.0,), "min_size": 64, "max_keypoints": 100}

# feature name -> (builder, default parameters, kind, one-line description). The kind (see
# pipelines.classifiers.FEATURE_KINDS) says which classifiers it is offered with; "histogram" also turns on the
# χ² map of the kernel SVMs.
FEATURES: dict[str, tuple[Callable[..., Any], dict[str, Any], str, str]] = {
    "pixels": (PixelFeatures, {"size": None, "grayscale": False}, "vector", "Raw pixels"),
    "colorhist": (ColorHistFeatures, {"bins": 8, "space": "rgb+hsv", "gray_bins": 32, "grid": 1}, "histogram",
                  "RGB+HSV colour histograms"),
    "hog": (HOGFeatures, {"cell": None, "block_cells": 2, "orientations": 9, "signed": False,
                          "grayscale": False}, "vector", "HOG (OpenCV)"),
    "hogcolor": (_hogcolor, {"cell": None, "orientations": 9, "bins": 8, "grid": 2}, "vector",
                 "HOG + colour histograms"),
    "lbp": (LBPFeatures, {"radii": (1, 2), "grid": 2}, "histogram", "Uniform LBP histograms"),
    "sift-bovw": (BoVWFeatures, {"method": "sift", **_BOVW_DENSE, "vocab_size": 512, "encoding": "hellinger",
                                 "pyramid": (1, 2), "sample": 200_000}, "bovw", "SIFT bag of visual words"),
    "orb-bovw": (BoVWFeatures, {"method": "orb", **_BOVW_UPSCALED, "vocab_size": 512,
                                "encoding": "hellinger", "pyramid": (1, 2), "sample": 200_000}, "bovw",
                 "ORB bag of visual words"),
    "akaze-bovw": (BoVWFeatures, {"method": "akaze", **_BOVW_UPSCALED, "vocab_size": 512,
                                  "encoding": "hellinger", "pyramid": (1, 2), "sample": 200_000}, "bovw",
                   "AKAZE bag of visual words"),
    "surf-bovw": (BoVWFeatures, {"method": "surf", **_BOVW_UPSCALED, "vocab_size": 512,
                                 "encoding": "hellinger", "pyramid": (1, 2), "sample": 200_000}, "bovw",
                  "SURF bag of visual words"),
    "tiny": (TinyImageFeatures, {"size": 16, "grayscale": True}, "vector", "Tiny images (16×16, zero mean, unit norm)"),
    "sift-fv": (FisherVectorFeatures, {"method": "sift", **_DENSE_SIFT, "root": True, "pca_dim": 64,
                                       "spatial_xy": True, "n_gaussians": 256, "pyramid": (1,), "power": 0.5, "sample": 100_000},
                "encoding", "Dense SIFT Fisher vectors"),
    "sift-vlad": (VLADFeatures, {"method": "sift", **_DENSE_SIFT, "root": True, "pca_dim": 64,
                                 "n_clusters": 128, "pyramid": (1,), "power": 1.0, "sample": 100_000},
                  "encoding", "Dense SIFT VLAD (intra-normalised)"),
}

UNAVAILABLE: dict[str, Callable[[], str | None]] = {"surf-bovw": surf_unavailable_reason}


def combos() -> dict[str, tuple[str, ...]]:
    """Feature name -> the registered classifiers it is offered with (one pipeline each)."""
    return {f: tuple(c for c, spec in classifiers.CLASSIFIERS.items() if spec.suits_feature(f, FEATURES[f][2]))
            for f in FEATURES}


def build(feature: str, classifier: str, **params: Any) -> TunedFeatureClassifier:
    """The estimator for ``<feature>-<classifier>`` with ``params`` (feature's, classifier's, tuning)."""
    builder, fdefaults, kind, _ = FEATURES[feature]
    cdefaults = classifiers.get_classifier(classifier).defaults
    fkw = {k: params[k] for k in fdefaults}
    bovw = isinstance(builder, type) and issubclass(builder, DescriptorEncoding)
    if bovw:
        fkw["seed"] = params["seed"]
    ckw = {k: params[k] for k in cdefaults}
    # Hellinger bag-of-words, Fisher and VLAD vectors are normalised already: linear models use them unstandardised
    clf, grid = make_classifier(classifier, seed=params["seed"], tune=params["tune"], histogram=kind == "histogram",
                                standardise=not bovw, **ckw)
    return TunedFeatureClassifier(builder(**fkw), clf, grid, tune_max_train=params["tune_max_train"],
                                  seed=params["seed"])


def _factory(feature: str, clf: ClassifierSpec) -> Callable[..., TunedFeatureClassifier]:
    fdefaults = dict(FEATURES[feature][1])
    fdefaults.update({k: v for k, v in clf.feature_params.items() if k in fdefaults})  # e.g. chi2svm: L1 words
    defaults = {**fdefaults, **clf.defaults, "tune": True, "tune_max_train": clf.tune_max_train, "seed": 0}
    classifier = clf.name
    fallbacks = clf.fallbacks

    def factory(**params: Any) -> TunedFeatureClassifier:
        return build(feature, classifier, **{**defaults, **params})

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
    factory.__doc__ = f"{FEATURES[feature][3]} → {clf.description}."
    return factory


def _register_pipelines(clf: ClassifierSpec) -> None:
    """Register ``<feature>-<clf>`` for every feature the classifier suits (run for each registered classifier)."""
    for feature, (_, _, kind, _) in FEATURES.items():
        if clf.suits_feature(feature, kind):
            reason = UNAVAILABLE[feature]() if feature in UNAVAILABLE else None
            register(f"{feature}-{clf.name}", family="classical", features=feature, classifier=clf.name,
                     unavailable_reason=reason)(_factory(feature, clf))


on_register_classifier(_register_pipelines)
