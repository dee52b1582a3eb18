"""Classifiers for feature vectors, each with the small validation grid it is tuned over.

``make_classifier(name, **params)`` returns ``(estimator, param_grid)``; the grid keys are the estimator's
``get_params`` names so :class:`pipelines.base.FeatureClassifier` can search them on the validation split.
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CLASSIFIERS = ("knn", "logreg")


def make_classifier(name: str, *, seed: int = 0, tune: bool = True, n_jobs: int = -1,
                    **params: Any) -> tuple[Any, dict[str, list] | None]:
    """Estimator and validation grid for classifier ``name`` (see ``CLASSIFIERS``)."""
    if name == "knn":
        est = KNeighborsClassifier(n_neighbors=params.get("k", 3), n_jobs=n_jobs)
        grid = {"n_neighbors": [1, 3, 5, 7]}
    elif name == "logreg":
        est = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=params.get("C", 1.0), max_iter=params.get("max_iter", 200), random_state=seed),
        )
        grid = {"logisticregression__C": [0.01, 0.1, 1.0]}
    else:
        raise ValueError(f"unknown classifier {name!r}; choose from {CLASSIFIERS}")
    return est, (grid if tune else None)
