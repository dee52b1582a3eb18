"""Resident-memory probes, shared by the feature cache (which records what a computation it stores cost) and
the harness (which measures a job's footprint)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psutil

_M_MMAP_THRESHOLD = -3  # mallopt parameter (glibc malloc.h)
_libc: Any = None


def _glibc() -> Any:
    """glibc, with large blocks pinned to ``mmap`` (``None`` elsewhere).

    By default glibc raises its mmap threshold each time a large block is freed, so later large arrays (numpy
    buffers, OpenCV images) land in the heaps of the threads that allocated them, and once freed stay
    resident, fragmented, where ``malloc_trim`` cannot return them: a job that extracted features in worker
    threads then carried some 20 MB more than the same job reading them from the cache. A fixed threshold
    (glibc's initial 128 KiB) keeps every large block in its own mapping, returned to the OS when freed.
    """
    global _libc
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        except (OSError, AttributeError):  # not glibc: RSS may then include memory freed by earlier jobs
            _libc = False
    return _libc or None


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so that the resident size measured next
    starts from what is live, not from what earlier jobs freed but the allocator kept."""
    # No gc.collect() here: a Ctrl-C arriving while collection runs finalizers (SQLAlchemy's weakref callbacks)
    # is swallowed as "Exception ignored", and the job would not stop.
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def process_rss() -> int:
    """Resident bytes of this process and its children (joblib / loky workers)."""
    proc = psutil.Process()
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakRSS:
    """Context manager sampling resident memory every ``interval_s``: ``peak_mb`` is the highest sample
    *above the size at entry*, i.e. the block's own footprint, not the process's history (``rss`` is the
    sampling function, :func:`process_rss` by default). Call :func:`release_memory` before entering so that
    memory freed earlier but still held by the allocator does not hide the block's allocations."""

    def __init__(self, interval_s: float = 0.02, rss: Callable[[], int] = process_rss):
        self.interval_s = interval_s
        self.rss = rss
        self.start_bytes = self.peak_bytes = 0
        self._stop = threading.Event()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.rss())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.start_bytes = self.peak_bytes = self.rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.rss())

    @property
    def peak_mb(self) -> float:
        """Highest resident size above the size at entry, in MiB."""
        return max(0, self.peak_bytes - self.start_bytes) / 2**20
