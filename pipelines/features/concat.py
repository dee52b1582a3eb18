"""Concatenation of several feature transformers (e.g. HOG + colour histogram), each part cached on its own."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone


class ConcatFeatures(TransformerMixin, BaseEstimator):
    """``[f(X) for f in parts]`` side by side; ``normalize`` scales each part to unit mean L2 norm so that no
    part dominates distances merely by its scale (HOG blocks are unit vectors, histograms sum to one)."""

    def __init__(self, parts: list[Any], normalize: bool = True):
        self.parts = parts
        self.normalize = normalize

    def fit(self, X: Any, y: Any = None) -> ConcatFeatures:
        self.parts_ = [clone(p).fit(X, y) for p in self.parts]
        return self

    def transform(self, X: Any) -> np.ndarray:
        parts = getattr(self, "parts_", None) or [clone(p) for p in self.parts]
        outs, t, cached = [], 0.0, True
        for p in parts:
            F = np.asarray(p.transform(X), dtype=np.float32)
            t += float(getattr(p, "last_time_s_", 0.0))
            cached = cached and bool(getattr(p, "last_cached_", False))
            if self.normalize:
                # a fixed per-part scale (the feature's typical norm), identical for every image set
                F = F / np.float32(max(_typical_norm(p, F.shape[1]), 1e-12))
            outs.append(F)
        self.last_time_s_, self.last_cached_ = t, cached
        return np.concatenate(outs, axis=1)


def _typical_norm(part: Any, dim: int) -> float:
    """Expected L2 norm of one image's vector for ``part``, known from how the feature is normalised."""
    norm = getattr(part, "typical_norm", None)
    return float(norm(dim)) if callable(norm) else 1.0
