"""Classical recipes: hand-crafted features → classical classifier, tuned on the validation split.

Every pipeline is named ``<feature>-<classifier>``: one for each feature in ``FEATURES`` (what each feature is,
its kind and the recipe's values where they differ from its class's defaults) and each classifier registered in ``pipelines.classifiers`` that suits
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
from dataclasses import dataclass, field
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
from pipelines.features.encoding import DescriptorEncoding, FisherVectorFeatures, VLADFeatures
from pipelines.features.hog import HOGFeatures
from pipelines.features.lbp import LBPFeatures
from pipelines.features.pixels import PixelFeatures
from pipelines.features.tiny import TinyImageFeatures
from pipelines.registry import register


def _hogcolor(cell: int | None = None, orientations: int = 9, bins: int = 8, grid: int = 2) -> ConcatFeatures:
    return ConcatFeatures([HOGFeatures(cell=cell, orientations=orientations),
                           ColorHistFeatures(bins=bins, space="rgb+hsv", grid=grid, sqrt=True)])


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the catalogue. Its pipeline parameters are the builder's constructor arguments, at the
    builder's own defaults except ``recipe`` (this catalogue's configuration); ``seed`` is the pipeline's, and
    arguments that do not change the features (the class's ``cache_exclude``) or are ``hidden`` stay at their
    default. ``kind`` (``pipelines.classifiers.FEATURE_KINDS``) says which classifiers it is offered with;
    ``"histogram"`` also turns on the kernel SVMs' χ² map."""

    builder: Callable[..., Any]
    kind: str
    description: str
    recipe: dict[str, Any] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()  # e.g. a name a classifier's parameter also uses

    @property
    def defaults(self) -> dict[str, Any]:
        """The feature's parameters and their defaults, in the constructor's order."""
        skip = {"seed", *self.hidden, *getattr(self.builder, "cache_exclude", ())}
        out = {k: p.default for k, p in inspect.signature(self.builder).parameters.items()
               if p.default is not inspect.Parameter.empty and k not in skip}
        unknown = set(self.recipe) - set(out)
        if unknown:
            raise ValueError(f"{self.builder.__name__} has no parameter(s) {sorted(unknown)}")
        return {**out, **self.recipe}


# bag of words: SIFT every 4 px at two sizes on images of at least 32 px; ORB, AKAZE and SURF at the class's
# step on images of at least 64 px, one keypoint size
_UPSCALED = {"sizes": (16.0,)}

FEATURES: dict[str, FeatureSpec] = {
    "pixels": FeatureSpec(PixelFeatures, "vector", "Raw pixels"),
    "colorhist": FeatureSpec(ColorHistFeatures, "histogram", "RGB+HSV colour histograms", {"space": "rgb+hsv"}),
    "hog": FeatureSpec(HOGFeatures, "vector", "HOG (OpenCV)"),
    "hogcolor": FeatureSpec(_hogcolor, "vector", "HOG + colour histograms"),
    "lbp": FeatureSpec(LBPFeatures, "histogram", "Uniform LBP histograms"),
    "sift-bovw": FeatureSpec(BoVWFeatures, "bovw", "SIFT bag of visual words",
                             {"method": "sift", "step": 4, "sizes": (6.0, 12.0), "min_size": 32}),
    "orb-bovw": FeatureSpec(BoVWFeatures, "bovw", "ORB bag of visual words", {"method": "orb", **_UPSCALED}),
    "akaze-bovw": FeatureSpec(BoVWFeatures, "bovw", "AKAZE bag of visual words", {"method": "akaze", **_UPSCALED}),
    "surf-bovw": FeatureSpec(BoVWFeatures, "bovw", "SURF bag of visual words", {"method": "surf", **_UPSCALED}),
    "tiny": FeatureSpec(TinyImageFeatures, "vector", "Tiny images (16×16, zero mean, unit norm)"),
    # the GMM's max_iter stays at its default: logreg, linsvm and chi2svm have a max_iter of their own
    "sift-fv": FeatureSpec(FisherVectorFeatures, "encoding", "Dense SIFT Fisher vectors", hidden=("max_iter",)),
    "sift-vlad": FeatureSpec(VLADFeatures, "encoding", "Dense SIFT VLAD (intra-normalised)"),
}

UNAVAILABLE: dict[str, Callable[[], str | None]] = {"surf-bovw": surf_unavailable_reason}


def combos() -> dict[str, tuple[str, ...]]:
    """Feature name -> the registered classifiers it is offered with (one pipeline each)."""
    return {f: tuple(c for c, spec in classifiers.CLASSIFIERS.items() if spec.suits_feature(f, FEATURES[f].kind))
            for f in FEATURES}


def build(feature: str, classifier: str, **params: Any) -> TunedFeatureClassifier:
    """The estimator for ``<feature>-<classifier>`` with ``params`` (feature's, classifier's, tuning)."""
    fspec = FEATURES[feature]
    builder = fspec.builder
    cdefaults = classifiers.get_classifier(classifier).defaults
    fkw = {k: params[k] for k in fspec.defaults}
    bovw = isinstance(builder, type) and issubclass(builder, DescriptorEncoding)
    if bovw:
        fkw["seed"] = params["seed"]
    ckw = {k: params[k] for k in cdefaults}
    # Hellinger bag-of-words, Fisher and VLAD vectors are normalised already: linear models use them unstandardised
    clf, grid = make_classifier(classifier, seed=params["seed"], tune=params["tune"],
                                histogram=fspec.kind == "histogram", standardise=not bovw, **ckw)
    return TunedFeatureClassifier(builder(**fkw), clf, grid, tune_max_train=params["tune_max_train"],
                                  seed=params["seed"])


def _factory(feature: str, clf: ClassifierSpec) -> Callable[..., TunedFeatureClassifier]:
    fdefaults = FEATURES[feature].defaults
    fdefaults.update({k: v for k, v in clf.feature_params.items() if k in fdefaults})  # e.g. chi2svm: L1 words
    clash = set(fdefaults) & {*clf.defaults, "tune", "tune_max_train", "seed"}
    if clash:
        raise ValueError(f"{feature}-{clf.name}: feature and classifier both have parameter(s) {sorted(clash)}")
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
    factory.__doc__ = f"{FEATURES[feature].description} → {clf.description}."
    return factory


def _register_pipelines(clf: ClassifierSpec) -> None:
    """Register ``<feature>-<clf>`` for every feature the classifier suits (run for each registered classifier)."""
    for feature, fspec in FEATURES.items():
        if clf.suits_feature(feature, fspec.kind):
            reason = UNAVAILABLE[feature]() if feature in UNAVAILABLE else None
            register(f"{feature}-{clf.name}", family="classical", features=feature, classifier=clf.name,
                     unavailable_reason=reason)(_factory(feature, clf))


on_register_classifier(_register_pipelines)
