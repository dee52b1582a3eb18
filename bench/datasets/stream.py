"""Datasets larger than a memory budget: memory-mapped splits and chunked feature extraction.

When the decoded images of a dataset exceed the budget (``--memory-budget-mb`` or ``CVBENCH_MEMORY_BUDGET_MB``),
:func:`prepare_auto` serves it from the decoded ``.npy`` cache through ``np.load(mmap_mode="r")``: the split's
images are copied chunk by chunk into per-split ``.npy`` files next to the cache (keyed by the split hash) and
handed to the pipeline as read-only memory maps. :func:`chunk_estimator` makes a feature pipeline read them in
chunks of ``chunk_rows`` images; after each chunk the mapped pages are dropped (``madvise(MADV_DONTNEED)``), so
the images never become resident all at once.

Limits: the *features* of a split are still assembled in memory (the classifier needs them; they are usually far
smaller than the images, except raw pixels, which grow 4x as float32); networks (``NetClassifier``) copy their
training images into one tensor, so streaming bounds their memory only up to that copy; the first decode of a
folder dataset (building the cache) holds its decoded images in memory once.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone

from bench.datasets import SplitData, SplitOptions, load_dataset, prepare
from bench.datasets.splits import make_split, split_hash
from cvbench_util.files import atomic_write

BUDGET_ENV = "CVBENCH_MEMORY_BUDGET_MB"
CHUNK_SHARE = 8  # a chunk of images takes at most budget / CHUNK_SHARE (room for its float32 intermediates)


def resolve_budget_mb(value: float | None = None) -> float | None:
    """The memory budget in MiB: ``value``, else ``CVBENCH_MEMORY_BUDGET_MB``, else ``None`` (unlimited)."""
    if value is not None:
        return float(value)
    env = os.environ.get(BUDGET_ENV)
    return float(env) if env else None


def chunk_rows_for(X: np.ndarray, budget_mb: float) -> int:
    """How many images of ``X`` one chunk may hold under ``budget_mb``."""
    per_image = max(1, int(np.prod(X.shape[1:])) * X.dtype.itemsize)
    return max(1, int(budget_mb * 2**20 / CHUNK_SHARE) // per_image)


def _mapping(X: Any) -> mmap.mmap | None:
    b = X
    while b is not None:
        if isinstance(b, mmap.mmap):
            return b
        b = getattr(b, "base", None)
    return None


def release(X: Any) -> None:
    """Drop the resident pages of the memory map behind ``X`` (no-op for in-memory arrays).

    Hand-written because neither numpy nor the standard library offers it for ``np.memmap``: pages read through
    a map stay in the process's resident set until the kernel needs them, which is what a budget must prevent.
    """
    m = _mapping(X)
    if m is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


def iter_chunks(X: np.ndarray, rows: int) -> Iterator[np.ndarray]:
    """In-memory copies of ``X[i:i + rows]``, releasing the mapped pages after each one."""
    for i in range(0, len(X), rows):
        chunk = np.array(X[i:i + rows])
        release(X)
        yield chunk


class ChunkedFeatures(TransformerMixin, BaseEstimator):
    """Apply the image transformer ``features`` to ``chunk_rows`` images at a time and stack the results.

    Identical output to ``features.transform(X)`` for per-image features (every extractor in the catalogue).
    ``max_chunk_bytes_`` records the largest chunk of images actually held, to check the budget.
    """

    def __init__(self, features: Any, chunk_rows: int = 1024):
        self.features = features
        self.chunk_rows = chunk_rows

    def fit(self, X: Any, y: Any = None) -> ChunkedFeatures:
        self.features_ = clone(self.features).fit(X, y)
        return self

    def transform(self, X: Any) -> np.ndarray:
        feats = getattr(self, "features_", self.features)
        parts, total_t, all_cached, self.max_chunk_bytes_ = [], 0.0, True, 0
        for chunk in iter_chunks(X, int(self.chunk_rows)):
            self.max_chunk_bytes_ = max(self.max_chunk_bytes_, chunk.nbytes)
            parts.append(np.asarray(feats.transform(chunk)))
            total_t += float(getattr(feats, "last_time_s_", 0.0))
            all_cached &= bool(getattr(feats, "last_cached_", False))
        self.last_time_s_, self.last_cached_ = total_t, all_cached
        return np.concatenate(parts) if parts else np.asarray(feats.transform(np.asarray(X)))


def chunk_estimator(est: Any, rows: int) -> Any:
    """Make ``est`` extract features in chunks when it is a features → classifier pipeline (else unchanged)."""
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    feats = params.get("features")
    if feats is not None and hasattr(feats, "transform") and not isinstance(feats, ChunkedFeatures):
        est.set_params(features=ChunkedFeatures(feats, rows))
    return est


def _gather(src: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``src[idx]`` read with ``pread``-style file reads when ``src`` is a memory-mapped ``.npy``.

    Fancy indexing through the map would fault in (and, with the kernel's fault-around, keep resident)
    neighbouring pages of every scattered image; plain reads only fill the output buffer.
    """
    fname = getattr(src, "filename", None)
    if not (isinstance(src, np.memmap) and fname and src.flags.c_contiguous):
        return np.asarray(src[idx])
    out = np.empty((len(idx), *src.shape[1:]), src.dtype)
    item = out[0].nbytes if len(idx) else 0
    flat = out.reshape(len(idx), -1).view(np.uint8)
    with open(fname, "rb", buffering=0) as f:
        for k, i in enumerate(idx):
            f.seek(src.offset + int(i) * item)
            if f.readinto(memoryview(flat[k])) != item:
                raise OSError(f"short read from {fname}")
    return out


def _write_subset(path: Path, src: np.ndarray, idx: np.ndarray, rows: int) -> None:
    """Write ``src[idx]`` to a new ``.npy`` at ``path``, ``rows`` images at a time (plain writes, no map)."""
    header = np.lib.format.open_memmap(path, mode="w+", dtype=src.dtype, shape=(len(idx), *src.shape[1:]))
    offset = header.offset
    del header
    with open(path, "r+b") as f:
        f.seek(offset)
        for a in range(0, len(idx), rows):
            f.write(memoryview(np.ascontiguousarray(_gather(src, idx[a:a + rows]))).cast("B"))


def prepare_streamed(spec: str, opts: SplitOptions | None = None, *, budget_mb: float,
                     image_size: int | None = None, data_dir: str | None = None,
                     cache_dir: str | os.PathLike) -> SplitData:
    """The split contract over the memory-mapped decoded cache: same indices and split hash as
    :func:`bench.datasets.prepare`, images as read-only ``np.memmap`` written chunk-wise per split."""
    opts = opts or SplitOptions()
    t0 = time.perf_counter()
    ds = load_dataset(spec, data_dir=data_dir, image_size=image_size, cache_dir=cache_dir, mmap=True)
    sp = make_split(ds.y_train, ds.y_test, opts, ds.class_names)
    Xt, yt = (ds.X_train, ds.y_train) if sp.test_from_pool else (ds.X_test, ds.y_test)
    data_hash = split_hash(sp, ds.meta.get("digest", ""))
    rows = chunk_rows_for(ds.X_train, budget_mb)
    root = Path(ds.X_train.filename).parent / "splits" / data_hash
    if not (root / "done").exists():
        # keep_existing: written concurrently by another worker, theirs is identical
        with atomic_write(root, directory=True, keep_existing=True) as tmp:
            for name, src, idx in (("X_train", ds.X_train, sp.train), ("X_val", ds.X_train, sp.val),
                                   ("X_test", Xt, sp.test)):
                _write_subset(tmp / f"{name}.npy", src, np.asarray(idx), rows)
            (tmp / "done").touch()
    X = {k: np.load(root / f"{k}.npy", mmap_mode="r") for k in ("X_train", "X_val", "X_test")}
    meta = dict(ds.meta)
    meta.update(load_time_s=time.perf_counter() - t0, n_classes=ds.n_classes, split_hash=data_hash,
                streamed=True, memory_budget_mb=budget_mb,
                chunk_rows=rows, decoded_mb=decoded_mb(ds))
    return SplitData(X["X_train"], ds.y_train[sp.train], X["X_val"], ds.y_train[sp.val], X["X_test"],
                     yt[sp.test], ds.class_names, sp, meta)


def decoded_mb(ds: Any) -> float:
    return sum(x.nbytes for x in (ds.X_train, ds.X_test) if x is not None) / 2**20


def prepare_auto(spec: str, opts: SplitOptions | None = None, *, memory_budget_mb: float | None = None,
                 **load_kw: Any) -> SplitData:
    """:func:`prepare`, or :func:`prepare_streamed` when the decoded dataset exceeds the memory budget.

    Streaming needs the decoded cache (``cache_dir``); without a budget or a cache this is plain ``prepare``.
    """
    budget = resolve_budget_mb(memory_budget_mb)
    if budget is None or load_kw.get("cache_dir") is None:
        return prepare(spec, opts, **load_kw)
    ds = load_dataset(spec, mmap=True, **load_kw)  # builds the cache when missing; maps it otherwise
    size = decoded_mb(ds)
    del ds
    if size <= budget:
        return prepare(spec, opts, **load_kw)
    return prepare_streamed(spec, opts, budget_mb=budget, **load_kw)
