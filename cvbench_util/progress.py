"""Progress bars for the long loops: decoding, feature extraction, vocabulary fitting, tuning, training.

One helper, so every bar behaves the same way:

* on a terminal (``stderr`` is a tty): a tqdm bar, drawn once a loop has run ``DELAY_S`` seconds (short loops,
  such as the harness's warm-up fit, never flicker) and cleared when it ends (``leave=False``), so the log lines
  printed between bars stay readable;
* off a terminal (CI, log files, pipes): nothing at all, no carriage return and no escape code;
* ``CVBENCH_PROGRESS=0`` turns every bar off (``python -m bench run --quiet`` sets it); ``CVBENCH_PROGRESS=1``
  forces them on, even off a terminal and without the delay.

An environment variable rather than an argument, because pipelines never import the harness: a pipeline in a
notebook shows the same bars, and the harness only sets the variable.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

ENV = "CVBENCH_PROGRESS"
DELAY_S = 0.5  # on a terminal, a bar appears only once its loop has run this long
MININTERVAL_S = 0.1  # and is redrawn at most this often (tqdm's default)


def mode() -> bool | None:
    """``False``: bars off; ``True``: forced on; ``None``: on a terminal only (the default)."""
    v = os.environ.get(ENV, "").strip().lower()
    if v in ("0", "false", "no", "off"):
        return False
    if v in ("1", "true", "yes", "on"):
        return True
    return None


def progress(iterable: Iterable | None = None, desc: str | None = None, total: float | None = None,
             unit: str = "it", **kw: Any) -> tqdm:
    """``tqdm(iterable, …)`` that follows :func:`mode` (tqdm's ``disable=None``: a terminal only).

    Use it as the iterable of a loop, or with ``total`` and ``update()`` by hand; a disabled bar costs nothing
    and changes nothing (iterating it walks ``iterable`` as is)."""
    m = mode()
    kw.setdefault("leave", False)
    kw.setdefault("delay", 0.0 if m else DELAY_S)
    kw.setdefault("mininterval", MININTERVAL_S)
    kw.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=None if m is None else not m, **kw)


@contextmanager
def stage(desc: str) -> Iterator[None]:
    """``desc: 0:42`` (elapsed, refreshed every second) while one long call that cannot report its own steps
    runs inside the block: a k-means or GMM fit, say."""
    bar = progress(total=None, desc=desc, bar_format="{desc}: {elapsed}")
    if bar.disable:
        yield
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1.0):
            bar.update(0)  # redraws the elapsed time, once the delay has passed (and then close() clears it)

    t = threading.Thread(target=tick, name="cvbench-progress", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        bar.close()
