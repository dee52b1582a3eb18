"""Timing a short step as :mod:`timeit` does: one pass of a few milliseconds is mostly the first touch of fresh
memory and whatever the scheduler did meanwhile (see docs/measurements.md#execute)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

SHORT_S = 1.0  # a step faster than this is timed again (a longer one is timed once)


def passes_again(fn: Callable[[], Any], first_s: float, *, short_s: float = SHORT_S, min_passes: int = 4,
                 min_total_s: float = 0.2, max_passes: int = 200,
                 clock: Callable[[], float] = time.perf_counter) -> Iterator[float]:
    """Run ``fn`` again when its first pass took under ``short_s``: with the garbage collector paused, at least
    ``min_passes`` more passes and ``min_total_s`` seconds of them (at most ``max_passes``); yield each pass's
    wall seconds (the caller reads what else the pass left, then keeps the best). Nothing when ``first_s`` is
    ``short_s`` or more (``clock``: for tests). Written here rather than with :mod:`timeit`, which cannot hand
    back per-pass state."""
    passes, spent, gc_on = 0, 0.0, gc.isenabled()
    gc.disable()
    try:
        while first_s < short_s and passes < max_passes and (passes < min_passes or spent < min_total_s):
            t0 = clock()
            fn()
            dt = clock() - t0
            passes, spent = passes + 1, spent + dt
            yield dt
    finally:
        if gc_on:
            gc.enable()
