"""Measuring from outside a pipeline: wall time, peak memory, latency, model size, environment."""

from __future__ import annotations

import os
import pickle
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np

from pipelines.memory import PeakRSS, numpy_hugepages, process_rss, release_memory  # noqa: F401  (the harness's probes)

# Off unless the user chose (bench/__init__.py sets the default), applied here once per process because numpy
# reads the variable only at import, which may have come first (a user's script, a worker).
numpy_hugepages(os.environ.get("NUMPY_MADVISE_HUGEPAGE", "0").strip() != "0")


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0


def latency_ms(predict: Callable[[np.ndarray], Any], X: np.ndarray, n: int = 20,
               budget_s: float = 10.0) -> float:
    """Median wall time of ``predict`` on single images (batch of 1) over up to ``n`` fixed images."""
    times = []
    predict(X[:1])  # warm-up
    start = time.perf_counter()
    for i in range(min(n, len(X))):
        t0 = time.perf_counter()
        predict(X[i:i + 1])
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s and len(times) >= 3:
            break
    return 1000.0 * statistics.median(times)


def model_size_mb(est: Any) -> float:
    """Serialized size: ``est.model_size_bytes()`` when defined (networks), else the pickled size."""
    if hasattr(est, "model_size_bytes"):
        return est.model_size_bytes() / 2**20
    try:
        return len(pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20
    except Exception:
        return float("nan")


CPUINFO = "/proc/cpuinfo"


def _cpuinfo_value(*keys: str) -> str | None:
    """The value of the first line of :data:`CPUINFO` whose key is one of ``keys``; None when absent or unreadable."""
    try:
        with open(CPUINFO) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    return value.strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    model = _cpuinfo_value("model name")
    return model if model is not None else platform.processor() or platform.machine()


# Instruction-set extensions that change how fast the same code runs (bf16 autocast is native only with
# avx512_bf16 / amx_bf16 on x86, bf16 on ARM). The model name alone does not tell machines apart: two machines
# here both read "Intel(R) Xeon(R) Processor", one with AVX512-BF16 only, one with AMX as well, and the deep-cpu
# suite's networks trained 1.2-1.8x apart on them.
CPU_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "asimd", "sve", "bf16")


def _cpu_isa() -> str:
    """The extensions of :data:`CPU_ISA_FLAGS` this CPU has, from the first ``flags`` (x86) or ``Features``
    (ARM) line of :data:`CPUINFO`, in that order; ``""`` when it cannot be read."""
    have = set((_cpuinfo_value("flags", "Features") or "").split())
    return " ".join(flag for flag in CPU_ISA_FLAGS if flag in have)


def _git_commit() -> str:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


KEY_PACKAGES = ("cvbench", "numpy", "scikit-learn", "scikit-image", "opencv-contrib-python-headless", "torch",
                "torchvision", "timm", "mlflow")

_ENV: dict[str, str] | None = None


def environment_tags() -> dict[str, str]:
    """Hardware and software tags recorded on every run (computed once per process)."""
    global _ENV
    if _ENV is None:
        import torch

        tags = {"env.cpu": _cpu_model(), "env.cores": str(os.cpu_count()), "env.platform": platform.platform(),
                "env.python": platform.python_version(), "env.torch_threads": str(torch.get_num_threads()),
                "env.gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
                "env.git_commit": _git_commit()}
        for pkg in KEY_PACKAGES:
            try:
                tags[f"env.pkg.{pkg}"] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                pass
        tags["env.cpu_isa"] = _cpu_isa()
        isa = f" [{tags['env.cpu_isa']}]" if tags["env.cpu_isa"] else ""
        tags["env.hardware"] = f"{tags['env.cpu']}{isa} ×{tags['env.cores']} | gpu: {tags['env.gpu']}"
        hp = numpy_hugepages()
        tags["env.numpy_hugepages"] = "unknown" if hp is None else "on" if hp else "off"
        if threads := os.environ.get("CVBENCH_THREADS"):  # --threads: timings comparable only at equal counts
            tags["env.threads"] = threads
            tags["env.hardware"] += f" | threads: {threads}"
        _ENV = tags
    return dict(_ENV)
