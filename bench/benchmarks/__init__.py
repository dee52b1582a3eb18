"""Benchmark scripts: run with ``python -m bench.benchmarks.NAME``; they print measured ratios side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np


def run_fresh(module: str, *args: str) -> Any:
    """``python -m module *args`` in a fresh process with its own empty results directory and feature cache;
    the JSON on the last line of its output."""
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "CVBENCH_RESULTS": d}
        env.pop("CVBENCH_FEATURE_CACHE", None)
        out = subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True,
                             check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sample_images(spec: str | None, n: int) -> np.ndarray:
    """``n`` training images of dataset ``spec``, or ``n`` random 32×32×3 ``uint8`` images without one."""
    if spec:
        from bench.datasets import SplitOptions, prepare

        return prepare(spec, SplitOptions(max_train=n)).X_train[:n]
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
