"""Benchmark scripts: run with ``python -m bench.benchmarks.NAME``; they print measured ratios side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any


def run_fresh(module: str, *args: str) -> Any:
    """``python -m module *args`` in a fresh process with its own empty results directory and feature cache;
    the JSON on the last line of its output."""
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "CVBENCH_RESULTS": d}
        env.pop("CVBENCH_FEATURE_CACHE", None)
        out = subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True,
                             check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
