"""On-disk cache for deterministic array computations (feature extraction, frozen embeddings).

Entries are keyed by a hash of the input array's bytes, the producer's name, its parameters and its code
version, stored as ``.npy`` (never pickle) and written atomically (:func:`cvbench_util.files.atomic_write`),
so an interrupted write can never leave an entry a later run trusts. The cache is off until a directory is set with
:func:`set_cache_dir` or the ``CVBENCH_FEATURE_CACHE`` environment variable.

Each entry records what computing it cost (time, the best of a few passes when one takes under a second, and peak
resident memory), so that a job that reads it is
charged the same as the job that computed it: :func:`charging` collects the memory charge of the hits in a
block.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from cvbench_util.digest import array_digest
from cvbench_util.files import atomic_write
from cvbench_util.timing import SHORT_S, passes_again
from pipelines.memory import PeakRSS, allocated_bytes, process_rss, release_memory

_cache_dir: Path | None = None


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Enable the cache under ``path`` (``None`` disables it)."""
    global _cache_dir
    _cache_dir = Path(path) if path is not None else None


@contextmanager
def disabled() -> Iterator[None]:
    """No feature cache inside the block (e.g. to time a real extraction); the previous setting after it."""
    global _cache_dir
    prev_dir, prev_env = _cache_dir, os.environ.pop("CVBENCH_FEATURE_CACHE", None)
    _cache_dir = None
    try:
        yield
    finally:
        _cache_dir = prev_dir
        if prev_env is not None:
            os.environ["CVBENCH_FEATURE_CACHE"] = prev_env


def get_cache_dir() -> Path | None:
    if _cache_dir is not None:
        return _cache_dir
    env = os.environ.get("CVBENCH_FEATURE_CACHE")
    return Path(env) if env else None


def _params_digest(params: dict[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(params, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


class CacheResult:
    """The value plus how it was obtained: ``compute_time_s`` is the original computation's time."""

    __slots__ = ("value", "cached", "compute_time_s")

    def __init__(self, value: np.ndarray, cached: bool, compute_time_s: float):
        self.value, self.cached, self.compute_time_s = value, cached, compute_time_s


class Charge:
    """Memory that the cache hits inside a :func:`charging` block would have cost to compute: ``peak_mb`` is
    the highest, over the hits, of the resident memory above the block's start when the hit happened plus the
    entry's recorded computation peak (what the block would have peaked at, had it computed the entry);
    ``residue_mb`` adds up what the computations left resident beyond their result (the allocator's arenas of
    the extraction threads), which a block that computed them would carry to its end."""

    def __init__(self) -> None:
        self.start_bytes = process_rss()
        self.alloc_start = allocated_bytes()
        self.peak_mb = self.residue_mb = self.alloc_peak_mb = 0.0

    def hit(self, entry_peak_mb: float, entry_residue_mb: float, entry_alloc_peak_mb: float | None = None) -> None:
        held_mb = max(0, process_rss() - self.start_bytes) / 2**20
        self.peak_mb = max(self.peak_mb, held_mb + entry_peak_mb)
        self.residue_mb += entry_residue_mb
        if entry_alloc_peak_mb is not None and self.alloc_start is not None:  # same, in malloc-allocated bytes
            held = max(0, (allocated_bytes() or 0) - self.alloc_start) / 2**20
            self.alloc_peak_mb = max(self.alloc_peak_mb, held + entry_alloc_peak_mb)


_charges: list[Charge] = []


@contextmanager
def charging() -> Iterator[Charge]:
    """Collect the memory charge of the cache hits inside the block (nested blocks each get their own)."""
    charge = Charge()
    _charges.append(charge)
    try:
        yield charge
    finally:
        _charges.remove(charge)


def cached_array(producer: str, params: dict[str, Any], X: np.ndarray,
                 compute: Callable[[], np.ndarray], version: str = "1", pure: bool = False) -> CacheResult:
    """Return ``compute()`` for input ``X``, from the cache when an entry with the same key exists. ``pure``:
    ``compute`` has no side effects, so a short one may run a few more times to time it."""
    root = get_cache_dir()
    if root is None:
        t0 = time.perf_counter()
        value = compute()
        return CacheResult(value, False, time.perf_counter() - t0)
    key = f"{producer}-v{version}-{_params_digest(params)}-{array_digest(X)}"
    path = root / producer / f"{key}.npy"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        try:
            info = json.loads(meta.read_text())
            compute_s, peak_mb = float(info["compute_time_s"]), float(info["compute_peak_mb"])
            residue_mb = float(info["compute_residue_mb"])
            if pure and compute_s < SHORT_S and "compute_passes" not in info:
                raise KeyError("compute_passes")  # a short one timed by a single pass (before CODE_VERSION 10)
            alloc_mb = info.get("compute_alloc_peak_mb")
            for charge in _charges:  # before the load: what was held when the computation would have started
                charge.hit(peak_mb, residue_mb, None if alloc_mb is None else float(alloc_mb))
            return CacheResult(np.load(path, allow_pickle=False), True, compute_s)
        except (ValueError, OSError, KeyError, EOFError):
            pass  # unreadable entry, or one that predates the recorded peak: recompute and overwrite it
    release_memory()  # the computation's own peak, not what the allocator kept from earlier work
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        value = np.asarray(compute())
        dt = time.perf_counter() - t0
    release_memory()
    residue_mb = max(0, process_rss() - mem.start_bytes - value.nbytes) / 2**20
    # the time recorded (and charged to every job that reads the entry) is a short computation's best pass, as a
    # short prediction's is (bench.execute): a single pass of a few ms is mostly first-touch page faults and the
    # memory probe's sampling beside it (mnist5k pixels: 12-16 ms in one pass, 0.9 ms at best; more late in a
    # process than early; docs/measurements.md#execute)
    times = [dt]
    if pure:
        held = [value]

        def again() -> None:  # one result alive at a time: the passes add nothing to the job's peak memory
            held[0] = None
            held[0] = np.asarray(compute())

        del value
        times += passes_again(again, dt)
        value = held[0]
    dt = min(times)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.save(f, value, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    with atomic_write(meta) as tmp:
        tmp.write_text(json.dumps({"producer": producer, "params": params, "compute_time_s": dt,
                                   "compute_peak_mb": mem.peak_mb, "compute_residue_mb": residue_mb,
                                   "compute_alloc_peak_mb": mem.alloc_peak_mb, "compute_passes": len(times),
                                   "shape": list(np.shape(value))}, default=str))
    return CacheResult(value, False, dt)
