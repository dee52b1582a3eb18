"""Histogram-intersection kernel SVM (Swain & Ballard 1991; the kernel of spatial pyramid matching, Lazebnik,
Schmid & Ponce 2006): ``k(x, z) = Σ_d min(x_d, z_d)`` on non-negative histograms.

Exact on small training sets (libsvm's ``SVC`` on the precomputed Gram matrix); above ``exact_max_n`` images
the additive kernel is approximated by scikit-learn's explicit additive χ² feature map
(``AdditiveChi2Sampler``, Vedaldi & Zisserman 2012: χ² and intersection are both additive kernels and rank
histograms alike) followed by a linear SVM, linear in n.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.kernel_approximation import AdditiveChi2Sampler
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC, LinearSVC

from cvbench_util.digest import array_digest
from pipelines.features.parallel import effective_n_jobs

_BLOCK_ELEMENTS = 1 << 23  # temporaries of at most 8M floats (32 MB) per worker
# The last few Gram matrices, keyed by the digests of both operands: a validation grid over C fits the same
# training Gram matrix (and predicts the same validation one) once per value; kept small and bounded.
_GRAMS: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_GRAMS_MAX = 3


def intersection_kernel(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``K[i, j] = Σ_d min(A[i, d], B[j, d])`` (float64), in row blocks on all cores (numpy releases the GIL).

    Written by hand: scikit-learn has no intersection kernel (``pairwise_kernels`` would call a Python
    function per pair)."""
    A = np.ascontiguousarray(A, dtype=np.float32)
    B = np.ascontiguousarray(B, dtype=np.float32)
    rows = max(1, _BLOCK_ELEMENTS // max(1, B.size))
    out = np.empty((len(A), len(B)), np.float64)

    def block(a: int) -> None:
        out[a:a + rows] = np.minimum(A[a:a + rows, None, :], B[None, :, :]).sum(axis=2, dtype=np.float64)

    starts = range(0, len(A), rows)
    Parallel(n_jobs=min(effective_n_jobs(), len(starts)), backend="threading")(delayed(block)(a) for a in starts)
    return out


def _gram(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    key = (array_digest(np.asarray(A)), array_digest(np.asarray(B)))
    if key in _GRAMS:
        _GRAMS.move_to_end(key)
        return _GRAMS[key]
    K = intersection_kernel(A, B)
    _GRAMS[key] = K
    while len(_GRAMS) > _GRAMS_MAX:
        _GRAMS.popitem(last=False)
    return K


class IntersectionSVM(ClassifierMixin, BaseEstimator):
    """SVM with the histogram-intersection kernel: exact (``SVC`` on the precomputed kernel) up to
    ``exact_max_n`` training images, else additive χ² map + ``linear`` (a linear classifier with a ``C``
    parameter; ``None``: scikit-learn's ``LinearSVC``) with the same ``C``. ``size_hint`` makes that choice as if training on that many images (a grid searched on a subset uses the
    same model as the final fit). ``mode_`` says which one was used."""

    def __init__(self, C: float = 10.0, exact_max_n: int = 5_000, linear: Any = None,
                 size_hint: int | None = None):
        self.C = C
        self.exact_max_n = exact_max_n
        self.linear = linear
        self.size_hint = size_hint

    def fit(self, X: np.ndarray, y: np.ndarray) -> IntersectionSVM:
        X = np.asarray(X, dtype=np.float32)
        if (X < 0).any():
            raise ValueError("the intersection kernel needs non-negative (histogram) features")
        if max(len(X), self.size_hint or 0) <= self.exact_max_n:
            self.mode_ = "exact"
            self.X_fit_ = X
            self.model_ = SVC(C=self.C, kernel="precomputed").fit(_gram(X, X), y)
        else:
            self.mode_ = "chi2map"
            linear = clone(self.linear).set_params(C=self.C) if self.linear is not None else LinearSVC(C=self.C)
            self.model_ = make_pipeline(AdditiveChi2Sampler(sample_steps=2), linear).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        return self.model_.decision_function(_gram(X, self.X_fit_) if self.mode_ == "exact" else X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        return self.model_.predict(_gram(X, self.X_fit_) if self.mode_ == "exact" else X)
