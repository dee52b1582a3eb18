"""Larger-than-memory path: memory-mapped splits and chunked features give the in-memory results, within budget."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bench.datasets import SplitOptions, prepare
from bench.datasets.stream import ChunkedFeatures, chunk_estimator, prepare_auto, release
from pipelines.features.pixels import PixelFeatures
from pipelines.registry import create

DIGITS_MB = 1797 * 64 / 2**20  # decoded size of sklearn digits (8×8×1 uint8): 0.11 MiB
BUDGET_MB = 0.05  # below it, so digits must stream


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "datasets")


def test_small_datasets_stay_in_memory(cache_dir):
    data = prepare_auto("digits", SplitOptions(), memory_budget_mb=1.0, cache_dir=cache_dir)
    assert not data.meta.get("streamed") and not isinstance(data.X_train, np.memmap)


def test_streamed_split_is_the_in_memory_split(cache_dir, monkeypatch):
    monkeypatch.setenv("CVBENCH_MEMORY_BUDGET_MB", str(BUDGET_MB))
    opts = SplitOptions(val_fraction=0.2)
    ref = prepare("digits", opts, cache_dir=cache_dir)
    data = prepare_auto("digits", opts, cache_dir=cache_dir)  # the budget comes from the environment
    assert data.meta["streamed"] and data.meta["decoded_mb"] == pytest.approx(DIGITS_MB)
    assert data.split_hash == ref.split_hash
    for k in ("X_train", "X_val", "X_test"):
        assert isinstance(getattr(data, k), np.memmap)
        np.testing.assert_array_equal(getattr(data, k), getattr(ref, k))
    for k in ("y_train", "y_val", "y_test"):
        np.testing.assert_array_equal(getattr(data, k), getattr(ref, k))
    rows = data.meta["chunk_rows"]
    assert rows * 64 <= BUDGET_MB * 2**20 / 8 < (rows + 1) * 64


def test_chunked_features_and_accuracy_match_in_memory(cache_dir):
    ref = prepare("digits", SplitOptions(), cache_dir=cache_dir)
    data = prepare_auto("digits", SplitOptions(), memory_budget_mb=BUDGET_MB, cache_dir=cache_dir)
    rows = data.meta["chunk_rows"]
    F_ref = PixelFeatures(size=6).transform(ref.X_train)
    cf = ChunkedFeatures(PixelFeatures(size=6), rows)
    np.testing.assert_array_equal(cf.transform(data.X_train), F_ref)
    assert 0 < cf.max_chunk_bytes_ <= BUDGET_MB * 2**20 / 8
    for name, kw in (("pixels-knn", {}), ("pixels-logreg", {"tune": False, "max_iter": 60})):
        a = create(name, **kw).fit(ref.X_train, ref.y_train, X_val=ref.X_val, y_val=ref.y_val)
        b = chunk_estimator(create(name, **kw), rows).fit(data.X_train, data.y_train, X_val=data.X_val,
                                                           y_val=data.y_val)
        assert isinstance(b.features_, ChunkedFeatures) and b.features_.max_chunk_bytes_ <= rows * 64
        assert b.fit_info_.get("chosen_params") == a.fit_info_.get("chosen_params")
        np.testing.assert_array_equal(b.predict(data.X_test), a.predict(ref.X_test))


def test_streamed_job_logs_the_same_result(tracker, monkeypatch):
    from bench.runner import Job, run_grid

    job = Job("digits", "pixels-knn", 0, {}, SplitOptions())
    (mem,) = run_grid([job], tracker=tracker, log=lambda m: None)
    monkeypatch.setenv("CVBENCH_MEMORY_BUDGET_MB", str(BUDGET_MB))
    (st,) = run_grid([job], tracker=tracker, force=True, log=lambda m: None)
    assert mem.status == st.status == "FINISHED"
    for k in ("test_accuracy", "val_accuracy", "test_macro_f1", "n_features"):
        assert st.metrics[k] == mem.metrics[k]
    run = tracker.client.get_run(st.run_id)
    assert "budget 0.05 MB" in run.data.tags["data.streamed"]
    assert "data.streamed" not in tracker.client.get_run(mem.run_id).data.tags


def _mapped_resident_kb(path) -> int:
    """Resident kB of this process's mappings of ``path`` (/proc/self/smaps): the map's own pages, unaffected by
    whatever else the process allocates or frees meanwhile."""
    kb, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:  # a mapping's header line
                inside = line.rstrip("\n").endswith(str(path))
            elif inside and head[0] == "Rss:":
                kb += int(head[1])
    return kb


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/smaps"), reason="no /proc/self/smaps (not Linux)")
def test_release_drops_mapped_pages(tmp_path):
    """The mechanism the budget rests on: pages read through a map leave the resident set after release."""
    p = tmp_path / "big.npy"
    np.save(p, np.ones((16, 2**20), np.uint8))  # 16 MiB
    X = np.load(p, mmap_mode="r")
    assert _mapped_resident_kb(p) < 16 * 1024  # not read yet
    assert int(X.sum(dtype=np.int64)) == 16 * 2**20  # touches every page
    assert _mapped_resident_kb(p) >= 16 * 1024  # every page of the data is mapped in
    release(X)
    assert _mapped_resident_kb(p) == 0


def _numpy_peak_mb(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Peak of the memory allocated inside ``fn`` (numpy reports its buffers to ``tracemalloc``; memory-mapped
    pages are not allocations), in MiB: the mechanism, not the process's resident size, which moves with
    allocator thresholds and sampling."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20, out
    finally:
        tracemalloc.stop()


def test_streamed_path_allocates_within_budget(tmp_path):
    """mnist5k at 64×64 decodes to 19.5 MiB; under an 8 MiB budget the streamed path allocates less than the
    budget plus the features it returns (the images stay memory-mapped), while the in-memory path holds them."""
    from bench.datasets import load_dataset

    cache = str(tmp_path / "datasets")
    ds = load_dataset("mnist5k", image_size=64, cache_dir=cache)  # build the decoded cache once, here
    decoded = (ds.X_train.nbytes + (ds.X_test.nbytes if ds.X_test is not None else 0)) / 2**20
    del ds
    budget = 8.0

    def in_memory() -> tuple[Any, np.ndarray]:
        d = prepare("mnist5k", SplitOptions(), image_size=64, cache_dir=cache)
        return d, PixelFeatures(size=8).transform(d.X_train)

    def streamed() -> tuple[Any, np.ndarray]:
        d = prepare_auto("mnist5k", SplitOptions(), image_size=64, cache_dir=cache, memory_budget_mb=budget)
        return d, ChunkedFeatures(PixelFeatures(size=8), d.meta["chunk_rows"]).transform(d.X_train)

    peak_memory, (d_memory, _) = _numpy_peak_mb(in_memory)
    peak_stream, (d_stream, F) = _numpy_peak_mb(streamed)
    assert decoded > 2 * budget
    assert d_stream.meta.get("streamed") and not d_memory.meta.get("streamed")
    assert isinstance(d_stream.X_train, np.memmap)
    assert peak_memory > 0.8 * decoded  # the measurement sees the images when they are held
    assert peak_stream < budget + F.nbytes / 2**20, (peak_stream, F.nbytes / 2**20)
