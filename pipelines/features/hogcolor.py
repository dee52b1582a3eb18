"""HOG + colour: HOG (:mod:`pipelines.features.hog`) beside square-rooted RGB/HSV histograms on a grid
(:mod:`pipelines.features.colorhist`), each part scaled to unit norm
(:class:`~pipelines.features.concat.ConcatFeatures`)."""

from __future__ import annotations

from pipelines.features.colorhist import ColorHistFeatures
from pipelines.features.concat import ConcatFeatures
from pipelines.features.hog import HOGFeatures
from pipelines.features.registry import register_feature


@register_feature("hogcolor", kind="vector", description="HOG + colour histograms")
def hogcolor(cell: int | None = None, orientations: int = 9, bins: int = 8, grid: int = 2) -> ConcatFeatures:
    """HOG (``cell``, ``orientations``) and RGB+HSV histograms (``bins`` per channel, ``grid × grid`` cells)."""
    return ConcatFeatures([HOGFeatures(cell=cell, orientations=orientations),
                           ColorHistFeatures(bins=bins, space="rgb+hsv", grid=grid, sqrt=True)])
