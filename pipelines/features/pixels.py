"""Raw pixels: optional resize and grayscale, flattened and scaled to [0, 1]."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.base import ImageFeatures
from pipelines.features.registry import register_feature


def resize_batch(X: np.ndarray, size: int | None) -> np.ndarray:
    """Resize a ``(N, H, W, C)`` uint8 batch to ``size × size`` with area interpolation (OpenCV)."""
    if size is None or (X.shape[1] == size and X.shape[2] == size):
        return X
    out = np.empty((len(X), size, size, X.shape[3]), dtype=X.dtype)
    for i, img in enumerate(X):
        r = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out[i] = r.reshape(size, size, X.shape[3])
    return out


def to_gray(X: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of an RGB batch, kept ``(N, H, W, 1)`` uint8; grayscale input is returned as is."""
    if X.shape[3] == 1:
        return X
    g = X[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)[..., None]


@register_feature("pixels", kind="vector", description="Raw pixels")
class PixelFeatures(ImageFeatures):
    """Flattened intensities in [0, 1] (float32), after an optional resize and grayscale conversion."""

    def __init__(self, size: int | None = None, grayscale: bool = False):
        self.size = size
        self.grayscale = grayscale

    def _extract(self, X: np.ndarray) -> np.ndarray:
        X = resize_batch(X, self.size)
        if self.grayscale:
            X = to_gray(X)
        return X.reshape(len(X), -1).astype(np.float32) / 255.0
