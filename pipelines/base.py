"""Building blocks shared by every pipeline family.

* :class:`ImageFeatures` — base for stateless feature transformers over ``uint8`` image batches; results are
  cached on disk (see :mod:`pipelines.cache`) keyed by the images and the transformer's parameters.
* :class:`FeatureClassifier` — a fitted features → classifier pair (fitting: ``pipelines.classifiers``).

Estimators report what the harness should record in ``fit_info_`` (a dict): ``feature_time_s``,
``features_cached``, ``chosen_params``, ``val_accuracy``, ``n_params``, ``history`` … The harness reads it
from outside; nothing here knows about MLflow.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from pipelines.cache import cached_array


def check_images(X: Any) -> np.ndarray:
    """Validate an image batch: ``uint8`` array shaped ``(N, H, W, C)``."""
    X = np.asarray(X)
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4:
        raise ValueError(f"expected images shaped (N, H, W, C), got shape {X.shape}")
    if X.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got dtype {X.dtype}")
    return X


class ImageFeatures(TransformerMixin, BaseEstimator):
    """Stateless image → feature-vector transformer with on-disk caching.

    Subclasses implement ``_extract(X) -> (N, D) float32`` and may bump ``version`` when their output
    changes; parameters in ``cache_exclude`` only change how the result is computed (batch size, compilation),
    not the result, so they are left out of the cache key. ``last_time_s_`` / ``last_cached_`` describe the
    latest ``transform`` call.
    """

    version = "1"
    cache_exclude: tuple[str, ...] = ()

    def fit(self, X: Any, y: Any = None) -> ImageFeatures:
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = check_images(X)
        params = {k: v for k, v in self.get_params().items() if k not in self.cache_exclude}
        res = cached_array(type(self).__name__, params, X, lambda: self._extract(X), self.version,
                           pure=True)
        self.last_time_s_, self.last_cached_ = res.compute_time_s, res.cached
        return res.value

    def _extract(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class FeatureClassifier(ClassifierMixin, BaseEstimator):
    """Images → ``features`` → ``classifier``: the fitted pair's ``transform`` / ``predict``.

    Fitting (``param_grid`` searched on the validation split only) lives in
    :class:`pipelines.classifiers.TunedFeatureClassifier`, which every feature pipeline uses.
    """

    def __init__(self, features: Any, classifier: Any, param_grid: dict[str, list] | None = None):
        self.features = features
        self.classifier = classifier
        self.param_grid = param_grid

    def transform(self, X: Any) -> np.ndarray:
        """Features of ``X``; ``last_feature_wall_s_`` is the time this call took, ``last_feature_time_s_`` the
        time the features cost to compute (the cache's recorded time when they were read from it)."""
        t0 = time.perf_counter()
        F = self.features_.transform(check_images(X))
        self.last_feature_wall_s_ = time.perf_counter() - t0
        self.last_feature_time_s_ = float(getattr(self.features_, "last_time_s_", self.last_feature_wall_s_))
        return F

    def predict(self, X: Any) -> np.ndarray:
        return self.classifier_.predict(self.transform(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        if not hasattr(self.classifier_, "predict_proba"):
            raise AttributeError("the fitted classifier has no predict_proba")
        return self.classifier_.predict_proba(self.transform(X))
