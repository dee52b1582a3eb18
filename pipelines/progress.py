"""Moved to :mod:`cvbench_util.progress` (the data layer shows bars too, and must import no pipeline).

Kept only for ``pipelines/classifiers.py`` and ``bench/runner.py``, until they import ``cvbench_util.progress``
themselves; then delete it.
"""

from cvbench_util.progress import mode, progress, stage

__all__ = ["mode", "progress", "stage"]
