"""Shared fixtures: every test gets its own results directory, tracking store and feature cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# One OpenMP / BLAS thread per process (this one, the CLI subprocesses and pool workers it starts, which
# inherit it): the tests fit tiny models, where a second thread mostly spin-waits, and on a busy machine
# (CI, or tests beside other work) it is several times slower: L-BFGS logistic regression on 300 × 1904
# features took 2.5 s with two OpenBLAS threads against 0.03 s with one, and the quick-suite test 99 CPU-s
# against 21. Set before numpy, torch or scikit-learn are imported (they read it when loaded); a value
# already in the environment wins. Numbers are unchanged: no test compares results across thread counts.
os.environ.setdefault("OMP_NUM_THREADS", "1")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _catalogue_loaded():
    """Import the whole catalogue once, before any test: a test that swaps in a copy of the registry to register
    into (``monkeypatch.setattr(registry, "_REGISTRY", dict(...))``) must copy it full, or the catalogue imported
    meanwhile registers into the copy alone and is missing from the real registry afterwards (a later test then
    fails with "unknown pipeline 'pixels-knn'" depending on which tests ran first)."""
    from pipelines import registry

    registry.list_pipelines()


@pytest.fixture(autouse=True)
def isolated_results(tmp_path, monkeypatch):
    """Point results, the tracking store and the caches at a fresh temporary directory."""
    from pipelines import cache

    res = tmp_path / "results"
    monkeypatch.setenv("CVBENCH_RESULTS", str(res))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CVBENCH_FEATURE_CACHE", raising=False)
    monkeypatch.setenv("CVBENCH_DATA", str(tmp_path / "data"))
    cache.set_cache_dir(None)
    yield res
    cache.set_cache_dir(None)


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory):
    """An empty tracking store whose schema MLflow created (and migrated) once for the whole session."""
    from bench.tracking import Tracker

    db = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    Tracker(f"sqlite:///{db}")
    assert not list(db.parent.glob("mlflow.db-*")), "the store keeps a journal: copying the file would lose it"
    return db


@pytest.fixture
def tracker(isolated_results, _empty_store):
    """A fresh store in the test's results directory: a copy of the session's empty one, because creating
    MLflow's schema takes seconds per test (it is the same empty schema every time)."""
    import shutil

    from bench.tracking import Tracker

    isolated_results.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_store, isolated_results / "mlflow.db")
    return Tracker()


@pytest.fixture(scope="session")
def digits_split():
    """The ``digits`` dataset through the split contract (no cache)."""
    from bench.datasets import SplitOptions, prepare

    return prepare("digits", SplitOptions())


@pytest.fixture
def one_torch_thread(monkeypatch):
    """Tiny models on tiny batches: one intra-op thread is faster, and far faster on a busy shared machine
    (OpenMP threads spin-wait for each other); ``OMP_NUM_THREADS`` stops ``use_all_cores`` overriding it."""
    import torch

    n = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def shared_zip(name: str) -> Path:
    """A dataset zip from ../shared/data, or skip the test when it is absent (a user's machine lacks it)."""
    p = SHARED_DATA / name
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p
