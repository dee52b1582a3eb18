"""Tiny images (Torralba, Fergus & Freeman 2008): each image shrunk to ``size × size``, zero mean, unit norm.

The raw-pixel baseline for photos: a 16×16 thumbnail keeps the scene's coarse layout in 256 numbers
instead of feeding a 65,536-d pixel vector to k-NN.
"""

from __future__ import annotations

import numpy as np

from pipelines.base import ImageFeatures
from pipelines.features.parallel import map_rows
from pipelines.features.pixels import resize_batch, to_gray
from pipelines.features.registry import register_feature


@register_feature("tiny", kind="vector", description="Tiny images (16×16, zero mean, unit norm)")
class TinyImageFeatures(ImageFeatures):
    """Area-downsampled ``size × size`` thumbnail (grayscale when ``grayscale``), each image's vector centred
    on its mean and scaled to unit L2 norm (a flat image becomes all zeros)."""

    def __init__(self, size: int = 16, grayscale: bool = True):
        self.size = size
        self.grayscale = grayscale

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        X = to_gray(X) if self.grayscale else X
        F = resize_batch(X, self.size).reshape(len(X), -1).astype(np.float32)
        F -= F.mean(axis=1, keepdims=True)
        return F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-6)

    def _extract(self, X: np.ndarray) -> np.ndarray:
        return map_rows(self._chunk, X)
