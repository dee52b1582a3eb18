"""Fit a pipeline exactly as the runner would (same split contract, registry, parameters, seed) and keep it.

The runner does not persist fitted models, so studies that need one (robustness, gallery) fit it here once and
cache it on disk under ``<results>/cache/models/<job identity>.joblib``; the identity is the runner's
:meth:`bench.jobs.Job.identity`, so any change of data, split, parameters, seed or code version refits.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.datasets import SplitData, prepare
from cvbench_util.files import atomic_write


def model_cache_dir() -> Path:
    from bench.tracking import results_dir

    return Path(os.environ.get("CVBENCH_MODEL_CACHE", results_dir() / "cache" / "models"))


def load_split(job: Any, data_dir: str | None = None) -> SplitData:
    from bench.execute import configure_caches, dataset_cache_dir

    configure_caches()
    return prepare(job.dataset, job.split, image_size=job.image_size, data_dir=data_dir,
                   cache_dir=dataset_cache_dir())


def model_path(job: Any, data: SplitData) -> Path:
    """Where :func:`fit_or_load` keeps the fitted estimator of ``job`` on ``data``."""
    return model_cache_dir() / f"{job.for_data(data).identity()}.joblib"


def fit_or_load(job: Any, data: SplitData, use_cache: bool = True, log: Any = None) -> tuple[Any, dict[str, Any]]:
    """The fitted estimator of ``job`` on ``data`` and ``{"fit_time_s", "cached"}``."""
    import joblib

    from bench.execute import _fit_kwargs, configure_caches
    from pipelines.registry import create

    configure_caches()
    job = job.for_data(data)  # the cache key covers the images: a changed dataset refits
    path = model_path(job, data)
    if use_cache and path.exists():
        try:
            est, fit_time = joblib.load(path)  # trusted: written by cvbench (model cache)
            return est, {"fit_time_s": fit_time, "cached": True}
        except Exception:  # a truncated or incompatible file: refit
            path.unlink(missing_ok=True)
    if log:
        log(f"fit   {job.run_name} ({len(data.y_train)} training images)")
    est = create(job.pipeline, **job.resolved_params())
    t0 = time.perf_counter()
    est.fit(data.X_train, data.y_train, **_fit_kwargs(est, data, lambda epoch, rec: None))
    fit_time = time.perf_counter() - t0
    if use_cache:
        with atomic_write(path) as tmp:
            joblib.dump((est, fit_time), tmp)
    return est, {"fit_time_s": fit_time, "cached": False}
