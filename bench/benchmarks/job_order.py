"""Does a job's cost depend on what ran before it? The same job first in a fresh process, and after other jobs
(some sharing its features, so it reads them from the cache), side by side.

    python -m bench.benchmarks.job_order [--dataset mnist5k] [--job hog-linsvm] [--before hog-logreg ...] [--repeat 5]
                                         [--isolate]

Each arm runs in its own fresh process with its own results directory and feature cache. Printed: the job's
fit time, its feature part, predict time, inference throughput, latency and peak memory (the job's own
footprint) in both arms, and their ratio (after / first). The measurement contract asks for memory within 10%.
With ``--repeat N`` each arm runs N times (fresh processes) and the medians are compared, with each arm's
min–max beside them: what varies between two processes in the same position is noise, not job order.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.benchmarks import run_fresh

COLUMNS = ["test_accuracy", "fit_time_s", "feature_time_s", "train_time_s", "predict_time_s",
           "inference_img_per_s", "latency_ms_per_img", "peak_alloc_mb", "peak_rss_mb"]
DEFAULT_BEFORE = ["pixels-knn", "pixels-logreg", "hog-logreg", "colorhist-chi2svm", "lenet5"]
SPARE = ["pixels-ridge", "hog-ridge"]  # stand in for the job itself when it is one of the defaults


def _child(dataset: str, jobs: list[str], params: dict, isolate: bool = False) -> None:
    from bench.datasets import SplitOptions
    from bench.executors import LocalExecutor
    from bench.jobs import Job
    from bench.runner import run_grid

    res = run_grid([Job(dataset, p, 0, params.get(p, {}), SplitOptions()) for p in jobs], log=lambda m: None,
                   executor=LocalExecutor(1, isolate=isolate))
    last = res[-1]
    print(json.dumps({k: last.metrics.get(k) for k in COLUMNS}))


def _arm(dataset: str, jobs: list[str], params: dict, isolate: bool = False) -> dict:
    return run_fresh("bench.benchmarks.job_order", "--child", dataset, json.dumps(jobs), json.dumps(params),
                     *(["--isolate"] if isolate else []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--job", default="hog-linsvm")
    ap.add_argument("--before", nargs="+", default=DEFAULT_BEFORE, help="jobs run first in the second arm")
    ap.add_argument("--repeat", type=int, default=1, help="fresh processes per arm (medians compared)")
    ap.add_argument("--isolate", action="store_true", help="run each job in a fresh process of its own (run --isolate)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child[0], json.loads(a.child[1]), json.loads(a.child[2]), a.isolate)
        return
    params = {"lenet5": {"epochs": 1}, "cnn-small": {"epochs": 2}, "efficientnet_lite0-features-logreg": {"resolution": 64}}
    before = [b for b in a.before if b != a.job]  # the job itself would be the same run (same identity)
    before += [s for s in SPARE if s != a.job][:len(a.before) - len(before)]
    firsts = [_arm(a.dataset, [a.job], params, a.isolate) for _ in range(a.repeat)]
    afters = [_arm(a.dataset, [*before, a.job], params, a.isolate) for _ in range(a.repeat)]
    print(f"{a.job} on {a.dataset}: first in a fresh process vs after {', '.join(before)}"
          + (" (--isolate: every job in its own fresh process)" if a.isolate else "")
          + (f" (medians of {a.repeat} processes per arm, min–max in brackets)" if a.repeat > 1 else ""))
    print(f"{'metric':22s} {'first':>12s} {'after':>12s} {'after/first':>12s}")
    for k in COLUMNS:
        xs = [r[k] for r in firsts if r.get(k) is not None]
        ys = [r[k] for r in afters if r.get(k) is not None]
        x = float(np.median(xs)) if xs else None
        y = float(np.median(ys)) if ys else None
        ratio = f"{y / x:12.3f}" if x and y is not None else f"{'—':>12s}"
        line = (f"{k:22s} {x if x is not None else float('nan'):12.4g} {y if y is not None else float('nan'):12.4g} "
                f"{ratio}")
        if a.repeat > 1 and xs and ys:
            line += f"   first [{min(xs):.4g}, {max(xs):.4g}]  after [{min(ys):.4g}, {max(ys):.4g}]"
        print(line)


if __name__ == "__main__":
    main()
