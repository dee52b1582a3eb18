"""Run a per-image extractor over a batch on all cores, in contiguous chunks.

OpenCV (HOG, SIFT, ORB, resize, colour conversion) and scikit-image's LBP release the GIL inside their
C/C++ loops, so threads scale without copying the batch into worker processes; ``bench/benchmarks/
classical_extract.py`` measures the speed-up against a bare single-threaded OpenCV loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import cv2
import joblib
import numpy as np
from joblib import Parallel, delayed

from cvbench_util.progress import progress


def effective_n_jobs(n_jobs: int | None = None) -> int:
    """``n_jobs`` as a positive worker count (``None``: ``CVBENCH_N_JOBS``, else ``CVBENCH_THREADS``, else -1;
    -1: every usable core, as joblib counts them: the CPU affinity, capped by a cgroup CPU quota).

    The worker count never changes a feature's value, so it is not a transformer parameter (and not part
    of any cache key).
    """
    if n_jobs is None:
        n_jobs = int(os.environ.get("CVBENCH_N_JOBS") or os.environ.get("CVBENCH_THREADS") or "-1")
    return joblib.effective_n_jobs(n_jobs) if n_jobs < 0 else max(1, n_jobs)


def map_chunks(fn: Callable[..., Any], X: np.ndarray, n_jobs: int | None = None, min_chunk: int = 256,
               backend: str = "threading", with_offset: bool = False) -> list[Any]:
    """``[fn(X[a:b]) for each chunk]`` in order, chunks spread over ``n_jobs`` workers.

    ``with_offset`` calls ``fn(X[a:b], a)`` instead, for extractors that record image indices.

    Each worker gets a few chunks (load balancing) and OpenCV's own thread pool is limited to one thread
    meanwhile, so the two levels of parallelism do not oversubscribe the cores.
    """
    n = len(X)
    workers = min(effective_n_jobs(n_jobs), max(1, n // min_chunk))
    prev = cv2.getNumThreads()
    cv2.setNumThreads(1)  # OpenCV's own pool only adds overhead on small images; we parallelise over images
    try:
        if workers <= 1:
            return [fn(X, 0) if with_offset else fn(X)]
        n_chunks = min(workers * 4, max(1, n // min_chunk))
        bounds = np.linspace(0, n, n_chunks + 1).astype(int)
        chunks = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        results = Parallel(n_jobs=workers, backend=backend, return_as="generator")(
            delayed(fn)(X[a:b], a) if with_offset else delayed(fn)(X[a:b]) for a, b in chunks)
        # a progress bar on a terminal only, silent in pipes and CI logs (cvbench_util.progress)
        name = getattr(fn, "__qualname__", "features")
        return list(progress(results, f"extract {name}", total=len(chunks), unit="chunk"))
    finally:
        cv2.setNumThreads(prev)


def map_rows(fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, **kw: Any) -> np.ndarray:
    """:func:`map_chunks` for extractors returning one row per image, stacked (no copy for one chunk)."""
    parts = map_chunks(fn, X, **kw)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
