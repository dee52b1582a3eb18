"""Histograms of oriented gradients with OpenCV's ``HOGDescriptor`` (Dalal & Triggs 2005).

OpenCV is used rather than ``skimage.feature.hog`` (much faster for the same layout; see
docs/measurements.md#hog), so scikit-image's version is only for visualisation.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.base import ImageFeatures
from pipelines.features.parallel import map_rows
from pipelines.features.registry import register_feature


def hog_layout(h: int, w: int, cell: int | None = None, block_cells: int = 2,
               min_size: int = 16) -> tuple[tuple[int, int], int]:
    """Window size ``(width, height)`` and cell size for images of ``h × w`` pixels.

    The cell defaults to an eighth of the shorter side (at least 4 px: 28×28 → 4, 32×32 → 4, 64×64 → 8);
    the window is the image size rounded to whole cells, and never smaller than one block. Images whose
    shorter side is under ``min_size`` are upscaled to it first (8×8 ``digits`` → 16×16), so even tiny images
    get several blocks.
    """
    s = min(h, w)
    if s < min_size:
        h, w = int(round(h * min_size / s)), int(round(w * min_size / s))
        s = min(h, w)
    if cell is None:
        cell = max(4, int(round(s / 8)))
    ny = max(block_cells, int(round(h / cell)))
    nx = max(block_cells, int(round(w / cell)))
    return (nx * cell, ny * cell), cell


@register_feature("hog", kind="vector", description="HOG (OpenCV)")
class HOGFeatures(ImageFeatures):
    """HOG descriptor of each image (blocks of ``block_cells²`` cells, stride one cell, L2-Hys).

    ``cell=None`` derives the cell size from the image size (see :func:`hog_layout`); images are resized to
    the window when it differs from their size. Colour images use OpenCV's per-pixel dominant-channel
    gradient unless ``grayscale``. ``signed`` uses 0–360° orientations instead of 0–180°.
    """

    version = "2"

    def __init__(self, cell: int | None = None, block_cells: int = 2, orientations: int = 9,
                 signed: bool = False, grayscale: bool = False, min_size: int = 16):
        self.cell = cell
        self.block_cells = block_cells
        self.orientations = orientations
        self.signed = signed
        self.grayscale = grayscale
        self.min_size = min_size

    def typical_norm(self, dim: int) -> float:
        """L2 norm of a descriptor: each L2-Hys block is a unit vector (used when concatenating features)."""
        return float(np.sqrt(dim / (self.block_cells ** 2 * self.orientations)))

    def descriptor(self, h: int, w: int) -> tuple[cv2.HOGDescriptor, tuple[int, int]]:
        win, cell = hog_layout(h, w, self.cell, self.block_cells, self.min_size)
        block = self.block_cells * cell
        hog = cv2.HOGDescriptor(win, (block, block), (cell, cell), (cell, cell), self.orientations,
                                1, -1.0, cv2.HOGDESCRIPTOR_L2HYS, 0.2, False,
                                cv2.HOGDESCRIPTOR_DEFAULT_NLEVELS, self.signed)
        return hog, win

    def _chunk(self, X: np.ndarray, tile: int = 256) -> np.ndarray:
        hog, win = self.descriptor(X.shape[1], X.shape[2])
        if (X.shape[2], X.shape[1]) != win:
            X = np.stack([cv2.resize(img, win, interpolation=cv2.INTER_LINEAR).reshape(win[1], win[0], -1)
                          for img in X])
        out = np.empty((len(X), hog.getDescriptorSize()), dtype=np.float32)
        for a in range(0, len(X), tile):
            out[a:a + tile] = self._mosaic(hog, X[a:a + tile])
        return out

    def _mosaic(self, hog: cv2.HOGDescriptor, X: np.ndarray, cols: int = 16) -> np.ndarray:
        """HOG of every image from one ``compute`` call over a mosaic of them.

        Written by hand because ``HOGDescriptor`` has no batch API and a per-image Python loop costs more than
        the descriptor itself on 32×32 images (and serialises threads on the GIL). Each tile is the image with
        a 1-pixel reflect-101 border — the border OpenCV uses for gradients at an image's edge — and one window
        is placed on each tile's interior, so the result equals per-image ``compute`` exactly (tested).
        """
        n, h, w, _ = X.shape
        P = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")  # numpy "reflect" = BORDER_REFLECT_101
        rows = -(-n // cols)
        if rows * cols != n:
            P = np.concatenate([P, np.zeros((rows * cols - n, *P.shape[1:]), P.dtype)])
        M = P.reshape(rows, cols, h + 2, w + 2, -1).transpose(0, 2, 1, 3, 4).reshape(rows * (h + 2), cols * (w + 2), -1)
        if self.grayscale and M.shape[2] >= 3:
            M = cv2.cvtColor(np.ascontiguousarray(M[..., :3]), cv2.COLOR_RGB2GRAY)  # per pixel: commutes with tiling
        elif M.shape[2] == 1:
            M = M[..., 0]
        locations = [(1 + (i % cols) * (w + 2), 1 + (i // cols) * (h + 2)) for i in range(n)]
        return hog.compute(np.ascontiguousarray(M), (w, h), (0, 0), locations).reshape(n, -1)

    def _extract(self, X: np.ndarray) -> np.ndarray:
        return map_rows(self._chunk, X)
