"""Does a suite's table depend on its job order? The suite in its own order and reversed, side by side.

    python -m bench.benchmarks.suite_order [--suite quick] [--dataset mnist5k] [--isolate] [--repeat 5]
        [--raw runs.json]

Each order runs in its own fresh process with its own results directory and feature cache (seed 0, default
split). Printed per pipeline: each cost column as "own order / reversed". The measurement contract asks for the
same figures whatever the order (memory within 10%); accuracy must be identical. With ``--repeat N`` each order
runs N times (fresh processes, alternating) and each cell is the two orders' medians: what moves between two
processes in the same order is noise, not order. A cell is marked ``!`` when the two orders' ranges (min–max over
their processes) do not overlap and their medians differ by more than 10%: an order effect larger than the spread
between processes; the last line lists those cells (none: the table does not depend on its order). With no order
effect at all, two samples of N are disjoint by chance with probability 2 / C(2N, N): 10% per cell at N = 3,
0.8% at N = 5, so use ``--repeat 5`` for a verdict over a whole table.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.benchmarks import run_fresh

COLUMNS = ["test_accuracy", "fit_time_s", "feature_time_s", "predict_time_s", "inference_img_per_s",
           "peak_alloc_mb", "peak_rss_mb"]
PARTS = ["train_time_s", "predict_feature_time_s", "predict_classifier_time_s"]  # in --raw only


def _child(suite: str, dataset: str, reverse: bool, isolate: bool) -> None:
    from bench.datasets import SplitOptions
    from bench.executors import LocalExecutor
    from bench.jobs import Job
    from bench.runner import run_grid
    from bench.suites import load_suite
    from pipelines.registry import expand

    items = [(name, params) for pattern, params in load_suite(suite).pipelines for name in expand([pattern])]
    if reverse:
        items = items[::-1]
    res = run_grid([Job(dataset, p, 0, kw, SplitOptions()) for p, kw in items], log=lambda m: None,
                   executor=LocalExecutor(1, isolate=isolate))
    print(json.dumps({r.job.pipeline: {k: r.metrics.get(k) for k in COLUMNS + PARTS} for r in res}))


def _order(suite: str, dataset: str, reverse: bool, isolate: bool) -> dict:
    return run_fresh("bench.benchmarks.suite_order", "--child", suite, dataset, "rev" if reverse else "fwd",
                     *(["--isolate"] if isolate else []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="quick")
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--isolate", action="store_true", help="each job in a fresh process of its own (run --isolate)")
    ap.add_argument("--repeat", type=int, default=1, help="fresh processes per order (medians compared)")
    ap.add_argument("--raw", help="also write every process's figures, with the time columns' parts, to this JSON "
                    "file ({order: [per process]})")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child[0], a.child[1], a.child[2] == "rev", a.isolate)
        return
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(a.repeat):  # alternate, so that a slow spell of the machine does not fall on one order
        for reverse in (False, True):
            runs[reverse].append(_order(a.suite, a.dataset, reverse, a.isolate))

    def median(rs: list[dict]) -> dict:
        return {p: {c: (float(np.median(v)) if (v := _samples(rs, p, c)) else None) for c in COLUMNS}
                for p in rs[0]}

    if a.raw:
        with open(a.raw, "w") as f:
            json.dump({"own": runs[False], "reversed": runs[True]}, f, indent=1)
    fwd, rev = median(runs[False]), median(runs[True])
    beyond = order_effects(runs[False], runs[True])
    print(f"suite {a.suite} on {a.dataset}: own order / reversed, each in a fresh process"
          + (" (--isolate: and each job in a fresh process of its own)" if a.isolate else "")
          + (f" (medians of {a.repeat} processes per order)" if a.repeat > 1 else ""))
    print(f"{'pipeline':36s} " + " ".join(f"{c:>24s}" for c in COLUMNS))
    for name, x in fwd.items():
        y = rev[name]
        cells = [f"{x[c]:.4g} / {y[c]:.4g}" + ("!" if (name, c) in beyond else " ")
                 if x.get(c) is not None and y.get(c) is not None else "— " for c in COLUMNS]
        print(f"{name:36s} " + " ".join(f"{cell:>24s}" for cell in cells))
    if a.repeat > 1:
        print("order effects beyond the spread between processes (!): "
              + (", ".join(f"{p} {c}" for p, c in beyond) if beyond else "none"))


def _samples(runs: list[dict], pipeline: str, column: str) -> list[float]:
    """One cell's figure in each process that recorded it."""
    return [r[pipeline][column] for r in runs if r[pipeline].get(column) is not None]


def order_effects(fwd: list[dict], rev: list[dict], tol: float = 0.10) -> list[tuple[str, str]]:
    """(pipeline, column) cells where the two orders' ranges are disjoint and their medians differ by more than
    ``tol``: a shift that the spread between fresh processes of the same order does not explain."""
    out = []
    for p in fwd[0]:
        for c in COLUMNS:
            a, b = _samples(fwd, p, c), _samples(rev, p, c)
            if not a or not b:
                continue
            ma, mb = float(np.median(a)), float(np.median(b))
            disjoint = min(a) > max(b) or min(b) > max(a)
            if disjoint and abs(ma - mb) > tol * max(abs(ma), abs(mb)):
                out.append((p, c))
    return out


if __name__ == "__main__":
    main()
