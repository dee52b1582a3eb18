"""Resident-memory probes, shared by the feature cache (which records what a computation it stores cost) and
the harness (which measures a job's footprint)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psutil

_libc: Any = None


def _glibc() -> Any:
    """glibc (``None`` elsewhere)."""
    # Pinning glibc's mmap threshold (so that every large block is returned on free) would make the measured
    # footprint steadier, but doubled a CNN's training time on this machine (every tensor fresh pages): not done.
    global _libc
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim  # noqa: B018 - present in glibc only
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


def _high_water_mark() -> int | None:
    """This process's peak resident bytes since the last reset (Linux ``VmHWM``), or ``None``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_high_water_mark() -> bool:
    """Start ``VmHWM`` again from the current resident size (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_active: list[PeakRSS] = []  # open probes: each folds in the high-water mark before a nested one resets it


class PeakRSS:
    """Context manager for a block's peak resident memory: ``peak_mb`` is the highest size *above the size at
    entry*, i.e. the block's own footprint, not the process's history. With the default ``rss``
    (:func:`process_rss`) the kernel's exact high-water mark of this process (``VmHWM``, reset at entry) is
    used, so a transient allocation between samples is never missed; samples every ``interval_s`` add the
    children (loky workers). Call :func:`release_memory` before entering so that memory freed earlier but still
    held by the allocator does not hide the block's allocations."""

    def __init__(self, interval_s: float = 0.02, rss: Callable[[], int] = process_rss):
        self.interval_s = interval_s
        self.rss = rss
        self.start_bytes = self.peak_bytes = 0
        self._stop = threading.Event()
        self._hwm = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.rss())
            self._stop.wait(self.interval_s)

    def _fold_hwm(self) -> None:
        if self._hwm and (hwm := _high_water_mark()) is not None:
            self.peak_bytes = max(self.peak_bytes, hwm)

    def __enter__(self) -> PeakRSS:
        if self.rss is process_rss:
            for outer in _active:  # a reset would lose the outer blocks' peaks so far
                outer._fold_hwm()
            self._hwm = _reset_high_water_mark()
            _active.append(self)
        self.start_bytes = self.peak_bytes = self.rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.rss())
        self._fold_hwm()
        if self in _active:
            _active.remove(self)

    @property
    def peak_mb(self) -> float:
        """Highest resident size above the size at entry, in MiB."""
        return max(0, self.peak_bytes - self.start_bytes) / 2**20
