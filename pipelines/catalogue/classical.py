"""Classical recipes: hand-crafted features → classical classifier, tuned on the validation split."""

from __future__ import annotations

from pipelines.base import FeatureClassifier
from pipelines.classifiers import make_classifier
from pipelines.features.pixels import PixelFeatures
from pipelines.registry import register


@register("pixels-knn", family="classical", features="pixels", classifier="knn")
def pixels_knn(size: int | None = None, grayscale: bool = False, tune: bool = True,
               seed: int = 0) -> FeatureClassifier:
    """Raw pixels → k-nearest neighbours (k chosen on validation from 1, 3, 5, 7)."""
    clf, grid = make_classifier("knn", seed=seed, tune=tune)
    return FeatureClassifier(PixelFeatures(size=size, grayscale=grayscale), clf, grid)


@register("pixels-logreg", family="classical", features="pixels", classifier="logreg")
def pixels_logreg(size: int | None = None, grayscale: bool = False, tune: bool = True,
                  max_iter: int = 200, seed: int = 0) -> FeatureClassifier:
    """Raw pixels → standardised multinomial logistic regression (C chosen on validation)."""
    clf, grid = make_classifier("logreg", seed=seed, tune=tune, max_iter=max_iter)
    return FeatureClassifier(PixelFeatures(size=size, grayscale=grayscale), clf, grid)
