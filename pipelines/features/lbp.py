"""Uniform local binary pattern histograms (Ojala et al. 2002) with scikit-image, optionally per grid cell."""

from __future__ import annotations

import warnings

import numpy as np
from skimage.feature import local_binary_pattern

from pipelines.base import ImageFeatures
from pipelines.features.colorhist import joint_histograms
from pipelines.features.parallel import map_rows
from pipelines.features.pixels import to_gray
from pipelines.features.registry import register_feature


@register_feature("lbp", kind="histogram", description="Uniform LBP histograms")
class LBPFeatures(ImageFeatures):
    """Rotation-invariant uniform LBP codes (``P + 2`` values) of the grayscale image, histogrammed per cell.

    ``radii`` lists the circle radii (``P = 8 × radius`` neighbours each); the histograms of every radius
    and every cell of a ``grid × grid`` partition are concatenated, each L1-normalised.
    """

    def __init__(self, radii: tuple[int, ...] = (1, 2), grid: int = 2):
        self.radii = radii
        self.grid = grid

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        G = to_gray(X)[..., 0]
        outs = []
        for r in self.radii:
            p = 8 * int(r)
            codes = np.empty(G.shape, dtype=np.int64)
            with warnings.catch_warnings():  # skimage warns about float-free integer input; uint8 is intended
                warnings.simplefilter("ignore")
                for i, g in enumerate(G):
                    codes[i] = local_binary_pattern(g, p, r, method="uniform")
            outs.append(joint_histograms(codes, p + 2, self.grid))
        return np.concatenate(outs, axis=1)

    def _extract(self, X: np.ndarray) -> np.ndarray:
        return map_rows(self._chunk, X)
