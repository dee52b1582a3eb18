"""Building blocks shared by every pipeline family.

* :class:`ImageFeatures` — base for stateless feature transformers over ``uint8`` image batches; results are
  cached on disk (see :mod:`pipelines.cache`) keyed by the images and the transformer's parameters.
* :class:`FeatureClassifier` — features → classifier, with hyper-parameters chosen on a validation split.

Estimators report what the harness should record in ``fit_info_`` (a dict): ``feature_time_s``,
``features_cached``, ``chosen_params``, ``val_accuracy``, ``n_params``, ``history`` … The harness reads it
from outside; nothing here knows about MLflow.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.model_selection import ParameterGrid

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
    changes. ``last_time_s_`` / ``last_cached_`` describe the latest ``transform`` call.
    """

    version = "1"

    def fit(self, X: Any, y: Any = None) -> ImageFeatures:
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = check_images(X)
        res = cached_array(type(self).__name__, self.get_params(), X, lambda: self._extract(X), self.version)
        self.last_time_s_, self.last_cached_ = res.compute_time_s, res.cached
        return res.value

    def _extract(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class FeatureClassifier(ClassifierMixin, BaseEstimator):
    """Images → ``features`` → ``classifier``; ``param_grid`` is searched on the validation split only.

    The grid's models are fitted on the training split and scored on the validation split; the best one is
    kept (ties go to the first in grid order, so the choice is deterministic). Without validation data the
    classifier's own parameters are used.
    """

    def __init__(self, features: Any, classifier: Any, param_grid: dict[str, list] | None = None):
        self.features = features
        self.classifier = classifier
        self.param_grid = param_grid

    def _featurize(self, est: Any, X: np.ndarray) -> tuple[np.ndarray, float, bool]:
        t0 = time.perf_counter()
        F = est.transform(X)
        dt = time.perf_counter() - t0
        cached = bool(getattr(est, "last_cached_", False))
        # A cache hit reports the original extraction time, so timings stay comparable across runs.
        return F, float(getattr(est, "last_time_s_", dt)) if cached else dt, cached

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> FeatureClassifier:
        X = check_images(X)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.features_ = clone(self.features)
        t0 = time.perf_counter()
        self.features_.fit(X, y)
        fit_feat = time.perf_counter() - t0
        F, t_train, cached = self._featurize(self.features_, X)
        info: dict[str, Any] = {"features_cached": cached, "n_features": int(F.shape[1])}
        feature_time = fit_feat + t_train
        grid = list(ParameterGrid(self.param_grid)) if self.param_grid else [{}]
        best, best_score, scores = None, -1.0, []
        if X_val is not None and len(grid) > 1:
            Fv, t_val, cached_v = self._featurize(self.features_, check_images(X_val))
            feature_time += t_val
            info["features_cached"] = cached and cached_v
            for params in grid:
                model = clone(self.classifier).set_params(**params).fit(F, y)
                score = float(np.mean(model.predict(Fv) == np.asarray(y_val)))
                scores.append({"params": params, "val_accuracy": score})
                if score > best_score:
                    best, best_score, best_params = model, score, params
            info["chosen_params"] = best_params
            info["tuning"] = scores
        else:
            best = clone(self.classifier).set_params(**grid[0]).fit(F, y)
            if grid[0]:
                info["chosen_params"] = grid[0]
        self.classifier_ = best
        info["feature_time_s"] = feature_time
        self.fit_info_ = info
        return self

    def transform(self, X: Any) -> np.ndarray:
        return self.features_.transform(check_images(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classifier_.predict(self.transform(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        if not hasattr(self.classifier_, "predict_proba"):
            raise AttributeError("the fitted classifier has no predict_proba")
        return self.classifier_.predict_proba(self.transform(X))
