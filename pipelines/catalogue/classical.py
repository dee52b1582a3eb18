"""Classical recipes: hand-crafted features → classical classifier, tuned on the validation split.

Every pipeline is named ``<feature>-<classifier>`` and registered from the two tables below: ``FEATURES``
(what each feature is and its default configuration) and ``COMBOS`` (which classifiers each feature is
offered with). For example ``hog-linsvm`` is HOG (``FEATURES["hog"]``) → standardised linear SVM
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

from pipelines.classifiers import TUNE_MAX_TRAIN, TUNED, TunedFeatureClassifier, make_classifier
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

# feature name -> (builder, default parameters, is a histogram (χ² map for kernels), one-line description)
FEATURES: dict[str, tuple[Callable[..., Any], dict[str, Any], bool, str]] = {
    "pixels": (PixelFeatures, {"size": None, "grayscale": False}, False, "Raw pixels"),
    "colorhist": (ColorHistFeatures, {"bins": 8, "space": "rgb+hsv", "gray_bins": 32, "grid": 1}, True,
                  "RGB+HSV colour histograms"),
    "hog": (HOGFeatures, {"cell": None, "block_cells": 2, "orientations": 9, "signed": False,
                          "grayscale": False}, False, "HOG (OpenCV)"),
    "hogcolor": (_hogcolor, {"cell": None, "orientations": 9, "bins": 8, "grid": 2}, False,
                 "HOG + colour histograms"),
    "lbp": (LBPFeatures, {"radii": (1, 2), "grid": 2}, True, "Uniform LBP histograms"),
    "sift-bovw": (BoVWFeatures, {"method": "sift", **_BOVW_DENSE, "vocab_size": 512, "encoding": "hellinger",
                                 "pyramid": (1, 2), "sample": 200_000}, False, "SIFT bag of visual words"),
    "orb-bovw": (BoVWFeatures, {"method": "orb", **_BOVW_UPSCALED, "vocab_size": 512,
                                "encoding": "hellinger", "pyramid": (1, 2), "sample": 200_000}, False,
                 "ORB bag of visual words"),
    "akaze-bovw": (BoVWFeatures, {"method": "akaze", **_BOVW_UPSCALED, "vocab_size": 512,
                                  "encoding": "hellinger", "pyramid": (1, 2), "sample": 200_000}, False,
                   "AKAZE bag of visual words"),
    "surf-bovw": (BoVWFeatures, {"method": "surf", **_BOVW_UPSCALED, "vocab_size": 512,
                                 "encoding": "hellinger", "pyramid": (1, 2), "sample": 200_000}, False,
                  "SURF bag of visual words"),
    "tiny": (TinyImageFeatures, {"size": 16, "grayscale": True}, False, "Tiny images (16×16, zero mean, unit norm)"),
    "sift-fv": (FisherVectorFeatures, {"method": "sift", **_DENSE_SIFT, "root": True, "pca_dim": 64,
                                       "spatial_xy": True, "n_gaussians": 256, "pyramid": (1,), "power": 0.5, "sample": 100_000},
                False, "Dense SIFT Fisher vectors"),
    "sift-vlad": (VLADFeatures, {"method": "sift", **_DENSE_SIFT, "root": True, "pca_dim": 64,
                                 "n_clusters": 128, "pyramid": (1,), "power": 1.0, "sample": 100_000},
                  False, "Dense SIFT VLAD (intra-normalised)"),
}

_ALL = ("knn", "logreg", "ridge", "linsvm", "rbfsvm")
_HIST = (*_ALL, "chi2svm")
_ENCODED = ("knn", "logreg", "ridge", "linsvm")  # Fisher vectors / VLAD: tens of thousands of dimensions
# feature name -> the classifiers it is offered with (one registered pipeline each)
COMBOS: dict[str, tuple[str, ...]] = {
    "pixels": _ALL, "colorhist": _HIST, "hog": _ALL, "hogcolor": _ALL, "lbp": _HIST,
    "sift-bovw": (*_HIST, "hiksvm"), "orb-bovw": _HIST, "akaze-bovw": _HIST, "surf-bovw": _HIST,
    "tiny": _ALL, "sift-fv": _ENCODED, "sift-vlad": _ENCODED,
}

# classifier name -> (its parameters with defaults, description). The tuned ones (pipelines.classifiers.TUNED:
# k, C, alpha, gamma_scale) default to None, "tuned on validation"; a value given fixes it (no search).
CLASSIFIER_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "knn": ({"k": None, "metric": "euclidean"}, "k-nearest neighbours, Euclidean or manhattan (L1) (k tuned)"),
    "logreg": ({"C": None, "max_iter": 200}, "standardised multinomial logistic regression (C tuned)"),
    "ridge": ({"alpha": None}, "standardised RidgeClassifier, linear regression (alpha tuned)"),
    "linsvm": ({"C": None, "max_iter": 300}, "standardised linear SVM (C tuned)"),
    "rbfsvm": ({"C": None, "gamma_scale": None, "exact_max_n": 10_000, "n_components": 3000},
               "RBF SVM, exact up to 10k images else Nyström (C, gamma tuned)"),
    "chi2svm": ({"C": None, "max_iter": 300}, "additive chi2 map + linear SVM (C tuned)"),
    "hiksvm": ({"C": None, "exact_max_n": 5_000, "max_iter": 300},
               "histogram-intersection kernel SVM, exact up to 5k images else additive chi2 map + linear SVM "
               "(C tuned)"),
}

UNAVAILABLE: dict[str, Callable[[], str | None]] = {"surf-bovw": surf_unavailable_reason}


def build(feature: str, classifier: str, **params: Any) -> TunedFeatureClassifier:
    """The estimator for ``<feature>-<classifier>`` with ``params`` (feature's, classifier's, tuning)."""
    builder, fdefaults, histogram, _ = FEATURES[feature]
    cdefaults, _ = CLASSIFIER_PARAMS[classifier]
    fkw = {k: params[k] for k in fdefaults}
    bovw = isinstance(builder, type) and issubclass(builder, DescriptorEncoding)
    if bovw:
        fkw["seed"] = params["seed"]
    ckw = {k: params[k] for k in cdefaults}
    # Hellinger bag-of-words, Fisher and VLAD vectors are normalised already: linear models use them unstandardised
    clf, grid = make_classifier(classifier, seed=params["seed"], tune=params["tune"], histogram=histogram,
                                standardise=not bovw, **ckw)
    return TunedFeatureClassifier(builder(**fkw), clf, grid, tune_max_train=params["tune_max_train"],
                                  seed=params["seed"])


def _factory(feature: str, classifier: str) -> Callable[..., TunedFeatureClassifier]:
    fdefaults = dict(FEATURES[feature][1])
    if classifier in ("chi2svm", "hiksvm") and FEATURES[feature][0] is BoVWFeatures:
        fdefaults["encoding"] = "l1"  # the χ² map and the intersection want plain frequencies, not square roots
    defaults = {**fdefaults, **CLASSIFIER_PARAMS[classifier][0], "tune": True,
                "tune_max_train": TUNE_MAX_TRAIN[classifier], "seed": 0}

    def factory(**params: Any) -> TunedFeatureClassifier:
        return build(feature, classifier, **{**defaults, **params})

    def annotation(k: str, v: Any) -> Any:  # what the parameter accepts, for pipelines.params' checks
        if k in TUNED[classifier]:
            return type(TUNED[classifier][k][1]) | None
        if isinstance(v, tuple | list):
            return list | tuple
        return Any if v is None else type(v)

    factory.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v, annotation=annotation(k, v))
         for k, v in defaults.items()])
    factory.__name__ = f"{feature}_{classifier}".replace("-", "_")
    factory.__doc__ = f"{FEATURES[feature][3]} → {CLASSIFIER_PARAMS[classifier][1]}."
    return factory


def _register_all() -> None:
    for feature, classifiers in COMBOS.items():
        reason = UNAVAILABLE[feature]() if feature in UNAVAILABLE else None
        for classifier in classifiers:
            register(f"{feature}-{classifier}", family="classical", features=feature, classifier=classifier,
                     unavailable_reason=reason)(_factory(feature, classifier))


_register_all()
