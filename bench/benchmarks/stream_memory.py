"""Benchmark: peak resident memory of one job on a dataset larger than its memory budget, streamed vs in memory.

    python -m bench.benchmarks.stream_memory [--dataset folder:PATH] [--budget-mb 64] [--pipeline pixels-knn]

Default dataset: CIFAR-10 from ../shared/data/cifar10-jpg.zip (60 000 images, 175.8 MiB decoded) when present,
else mnist5k at 64×64 (19.5 MiB). The decoded cache is built first, outside the measurement. Each mode then runs
the same job (``bench.execute.execute``: load, fit, predict, log) in a fresh process; ``bench.measure.PeakRSS``
samples that process's resident memory, and the script prints the peak above the resident memory just before
the job (imports excluded: the same job first runs on digits), next to the budget and the decoded size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpg.zip"


def _child(mode: str, spec: str, image_size: int | None, pipeline: str, params: dict, budget: float) -> None:
    from bench.datasets import SplitOptions
    from bench.execute import configure_caches, dataset_cache_dir, execute
    from bench.jobs import Job
    from bench.measure import PeakRSS
    from bench.tracking import Tracker

    configure_caches()
    tracker = Tracker()
    exp = tracker.experiment_id("stream-memory")
    # Warm-up: the same job on digits loads every library the job touches (catalogue, MLflow, matplotlib...),
    # so the measurement below is the job's data and model, not one-off imports.
    execute(Job("digits", pipeline, 0, params, SplitOptions()), tracker, exp, load_kw={"cache_dir": None})
    load_kw = {"cache_dir": dataset_cache_dir()}
    if mode == "stream":
        load_kw["memory_budget_mb"] = budget
    job = Job(spec, pipeline, 0, params, SplitOptions(), image_size)
    with PeakRSS(interval_s=0.01) as m:
        res = execute(job, tracker, exp, load_kw=load_kw)
    run = tracker.client.get_run(res.run_id)
    print(json.dumps({"base_mb": m.start_bytes / 2**20, "peak_mb": m.start_bytes / 2**20 + m.peak_mb, "delta_mb": m.peak_mb,
                      "test_accuracy": res.metrics["test_accuracy"], "seconds": res.seconds,
                      "streamed": run.data.tags.get("data.streamed", "")}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--budget-mb", type=float, default=64.0)
    ap.add_argument("--pipeline", default="pixels-knn")
    ap.add_argument("--params", default='{"size": 8, "grayscale": true}')
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    spec, image_size = a.dataset, a.image_size
    if spec is None:
        spec, image_size = (f"folder:{SHARED}", None) if SHARED.exists() else ("mnist5k", 64)
    params = json.loads(a.params)
    if a.child:
        _child(a.child, spec, image_size, a.pipeline, params, a.budget_mb)
        return
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("CVBENCH_MEMORY_BUDGET_MB", None)
    root = tempfile.mkdtemp(prefix="cvbench-streammem-")
    os.environ["CVBENCH_RESULTS"] = root
    from bench.datasets import load_dataset
    from bench.execute import dataset_cache_dir

    print(f"building the decoded cache of {spec} (image_size={image_size}) ...", flush=True)
    ds = load_dataset(spec, image_size=image_size, cache_dir=dataset_cache_dir(), mmap=True)
    decoded = sum(x.nbytes for x in (ds.X_train, ds.X_test) if x is not None) / 2**20
    n = len(ds.y_train) + (len(ds.y_test) if ds.y_test is not None else 0)
    del ds
    print(f"{spec}: {n} images, {decoded:.1f} MiB decoded; budget {a.budget_mb:g} MiB; job {a.pipeline} {params}")
    out = {}
    for mode in ("memory", "stream"):
        cmd = [sys.executable, "-m", "bench.benchmarks.stream_memory", "--child", mode, "--dataset", spec,
               "--budget-mb", str(a.budget_mb), "--pipeline", a.pipeline, "--params", a.params]
        if image_size:
            cmd += ["--image-size", str(image_size)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr[-4000:])
        out[mode] = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\n{'mode':8s} {'RSS before':>11s} {'peak RSS':>9s} {'peak - before':>14s} {'accuracy':>9s} {'job s':>6s}")
    for mode, o in out.items():
        print(f"{mode:8s} {o['base_mb']:9.1f}MB {o['peak_mb']:7.1f}MB {o['delta_mb']:12.1f}MB "
              f"{o['test_accuracy']:9.4f} {o['seconds']:6.1f}")
    s, m = out["stream"], out["memory"]
    print(f"\nstreamed: {s['streamed']}")
    print(f"streamed job's peak above its starting RSS: {s['delta_mb']:.1f} MiB vs budget {a.budget_mb:g} MiB "
          f"({s['delta_mb'] / a.budget_mb:.2f}x the budget; in memory: {m['delta_mb']:.1f} MiB, "
          f"{m['delta_mb'] / decoded:.2f}x the decoded size); identical accuracy: "
          f"{s['test_accuracy'] == m['test_accuracy']}")


if __name__ == "__main__":
    main()
