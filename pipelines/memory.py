"""Resident-memory probes, shared by the feature cache (which records what a computation it stores cost) and
the harness (which measures a job's footprint)."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

_libc: Any = None


def _glibc() -> Any:
    """glibc (``None`` elsewhere)."""
    # glibc's mmap threshold is not pinned (it would slow training): see docs/measurements.md#memory
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim  # noqa: B018 - present in glibc only
        except (OSError, AttributeError):  # not glibc: RSS may then include memory freed by earlier jobs
            _libc = False
    return _libc or None


def numpy_hugepages(enabled: bool | None = None) -> bool | None:
    """numpy's transparent-hugepage advice for large arrays (``madvise(MADV_HUGEPAGE)`` on allocations of 4 MiB
    and more; numpy reads ``NUMPY_MADVISE_HUGEPAGE`` only at import): set it when ``enabled`` is given; return the
    setting in force (``None`` where this numpy has no such switch)."""
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    ma = getattr(core, "multiarray", None)
    get, set_ = getattr(ma, "_get_madvise_hugepage", None), getattr(ma, "_set_madvise_hugepage", None)
    if get is None or set_ is None:
        return None
    if enabled is not None:
        set_(bool(enabled))
    return bool(get())


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so that the resident size measured next
    starts from what is live, not from what earlier jobs freed but the allocator kept."""
    # No gc.collect() here: a Ctrl-C arriving while collection runs finalizers (SQLAlchemy's weakref callbacks)
    # is swallowed as "Exception ignored", and the job would not stop.
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


_mallinfo2: Any = None


def allocated_bytes() -> int | None:
    """Bytes this process holds from ``malloc`` right now (glibc >= 2.33 ``mallinfo2``: in-use heap chunks of all
    arenas plus mmap'd blocks), or ``None`` elsewhere. Unlike the resident size it does not count what the
    allocator keeps after a free (fragmented arenas of worker threads), so it varies far less from one process
    to the next (see docs/measurements.md#memory)."""
    global _mallinfo2
    if _mallinfo2 is None:
        libc = _glibc()
        fn = getattr(libc, "mallinfo2", None) if libc is not None else None
        if fn is not None:
            fn.restype, fn.argtypes = _MallInfo2, []
        _mallinfo2 = fn or False
    if not _mallinfo2:
        return None
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd)


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

    def __init__(self, interval_s: float = 0.02, rss: Callable[[], int] = process_rss,
                 allocated: Callable[[], int | None] = allocated_bytes, alloc_interval_s: float = 0.005):
        self.interval_s = interval_s
        self.rss = rss
        self.allocated = allocated
        self.alloc_interval_s = alloc_interval_s
        self.start_bytes = self.peak_bytes = 0
        self.own_start = self.own_peak = 0  # this process alone: what VmHWM measures (children excluded)
        self.alloc_start = self.alloc_peak = None
        self._stop = threading.Event()
        self._hwm = False

    def _sample_alloc(self) -> None:
        if self.alloc_peak is not None and (a := self.allocated()) is not None:
            self.alloc_peak = max(self.alloc_peak, a)

    def _loop(self) -> None:
        next_rss = 0.0
        while not self._stop.is_set():
            self._sample_alloc()
            if (now := time.perf_counter()) >= next_rss:
                self.peak_bytes = max(self.peak_bytes, self.rss())
                next_rss = now + self.interval_s
            if self.alloc_peak is None:
                wait = self.interval_s
            else:  # a short block's whole peak may last a few ms: sample it 50x finer for its first 0.1 s
                wait = self.alloc_interval_s / (50 if now - self._t0 < 0.1 else 1)
            self._stop.wait(wait)

    def _fold_hwm(self) -> None:
        if self._hwm and (hwm := _high_water_mark()) is not None:
            self.own_peak = max(self.own_peak, hwm)

    def __enter__(self) -> PeakRSS:
        if self.rss is process_rss:
            for outer in _active:  # a reset would lose the outer blocks' peaks so far
                outer._fold_hwm()
            self._hwm = _reset_high_water_mark()
            _active.append(self)
            self.own_start = self.own_peak = psutil.Process().memory_info().rss
        self.start_bytes = self.peak_bytes = self.rss()
        self.alloc_start = self.alloc_peak = self.allocated()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.rss())
        self._sample_alloc()
        self._fold_hwm()
        if self in _active:
            _active.remove(self)

    @property
    def peak_mb(self) -> float:
        """Highest resident size above the size at entry, in MiB: the larger of this process's exact growth
        (its high-water mark above its own size at entry) and the sampled growth of it and its children. (The
        high-water mark covers this process only: compared with an entry size that counts the children, it
        came out short by their resident size.)"""
        own = self.own_peak - self.own_start if self._hwm else 0
        return max(0, self.peak_bytes - self.start_bytes, own) / 2**20

    @property
    def alloc_peak_mb(self) -> float | None:
        """Highest ``malloc``-allocated size above the size at entry (sampled every ``alloc_interval_s``), in MiB;
        ``None`` where :func:`allocated_bytes` is unavailable. A peak held for less than one interval can be missed;
        it is then at most what the job could write in 5 ms (tens of MB; 0.1 ms during a block's first 0.1 s, so that
        a short block's peak is seen). The job's own footprint without the allocator's
        retention, so the same block gives the same figure whatever ran before it."""
        if self.alloc_peak is None or self.alloc_start is None:
            return None
        return max(0, self.alloc_peak - self.alloc_start) / 2**20
