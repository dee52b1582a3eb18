"""Benchmark: a grid of classical jobs on mnist5k, sequential in-process vs Ray locally with N workers.

    python -m bench.benchmarks.ray_grid [--workers 2] [--pipelines a,b,...]

Each mode gets its own empty results directory (cold feature caches in both). Printed side by side: wall time of
the grid, Ray start-up, the speed-up, and what Ray adds per job: the round trip of an empty task, and the
worker-slot time not spent inside a job ((workers × wall − Σ in-job seconds) / jobs: scheduling, worker
start-up and imports, reloading the dataset from the decoded cache, idle tail). Results must agree.
Timings on a shared machine vary with its load: the script prints the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

DEFAULT = ("pixels-knn,pixels-ridge,pixels-logreg,hog-knn,hog-ridge,hog-logreg,lbp-knn,lbp-ridge")


def _grid(pipelines: list[str], dataset: str):
    from bench.datasets import SplitOptions
    from bench.jobs import Job
    from pipelines.registry import list_pipelines

    avail = set(list_pipelines("*"))
    missing = [p for p in pipelines if p not in avail]
    if missing:
        raise SystemExit(f"unavailable pipelines: {missing}")
    return [Job(dataset, p, 0, {}, SplitOptions()) for p in pipelines]


def _run(jobs, executor, root: str) -> tuple[float, list]:
    from bench.runner import run_grid
    from bench.tracking import Tracker
    from pipelines.cache import set_cache_dir

    os.environ["CVBENCH_RESULTS"] = root
    os.environ.pop("CVBENCH_FEATURE_CACHE", None)
    set_cache_dir(None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # mlflow.set_tracking_uri exports it; each mode has its own store
    tracker = Tracker(f"sqlite:///{root}/mlflow.db")
    t0 = time.perf_counter()
    res = run_grid(jobs, tracker=tracker, executor=executor, force=True,
                   log=lambda m: print("   ", m, flush=True))
    return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pipelines", default=DEFAULT)
    ap.add_argument("--dataset", default="mnist5k")
    a = ap.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    jobs = _grid(a.pipelines.split(","), a.dataset)
    print(f"{len(jobs)} jobs on {a.dataset}; {os.cpu_count()} CPU cores; load average {os.getloadavg()}")
    base = tempfile.mkdtemp(prefix="cvbench-raybench-")

    # Decode the dataset once into both results dirs' caches so neither mode pays for it inside the timing.
    from bench.datasets import load_dataset

    for mode in ("seq", "seq1", "ray"):
        load_dataset(a.dataset, cache_dir=os.path.join(base, mode, "cache", "datasets"))

    print("sequential (in-process, datasets kept in memory, every core per job):", flush=True)
    t_seq, r_seq = _run(jobs, None, os.path.join(base, "seq"))
    # The same with one thread per job, as each Ray worker runs: separates parallelism from threading effects.
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    print("sequential, 1 thread per job:", flush=True)
    os.environ.update(CVBENCH_N_JOBS="1", LOKY_MAX_CPU_COUNT="1")
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with threadpool_limits(1):
        t_seq1, r_seq1 = _run(jobs, None, os.path.join(base, "seq1"))
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv_threads)
    for k in ("CVBENCH_N_JOBS", "LOKY_MAX_CPU_COUNT"):
        os.environ.pop(k)

    import ray

    from bench.executors import RayExecutor

    t0 = time.perf_counter()
    ray.init(num_cpus=a.workers, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False,
             logging_level="WARNING")
    t_init = time.perf_counter() - t0

    @ray.remote(num_cpus=1)
    def _noop(x: int) -> int:
        return x

    ray.get([_noop.remote(i) for i in range(a.workers)])  # start the workers
    rtts = []
    for i in range(20):
        t = time.perf_counter()
        ray.get(_noop.remote(i))
        rtts.append(time.perf_counter() - t)
    print(f"ray ({a.workers} workers, 1 CPU per job):", flush=True)
    t_ray, r_ray = _run(jobs, RayExecutor(jobs=a.workers), os.path.join(base, "ray"))
    ray.shutdown()

    ok_seq = {r.job.pipeline: r for r in r_seq if r.status == "FINISHED"}
    ok_ray = {r.job.pipeline: r for r in r_ray if r.status == "FINISHED"}
    ok_seq1 = {r.job.pipeline: r for r in r_seq1 if r.status == "FINISHED"}
    s_seq1 = sum(r.seconds for r in r_seq1)
    n = len(jobs)
    s_seq, s_ray = sum(r.seconds for r in r_seq), sum(r.seconds for r in r_ray)
    nan = float("nan")

    def sec(d, p):
        return d[p].seconds if p in d else nan

    def acc(d, p):
        return d[p].metrics["test_accuracy"] if p in d else nan

    print(f"\n{'pipeline':16s} {'seq s':>7s} {'seq1 s':>7s} {'ray s':>7s}  {'acc seq':>8s} {'acc seq1':>8s} "
          f"{'acc ray':>8s}")
    for j in jobs:
        p = j.pipeline
        print(f"{p:16s} {sec(ok_seq, p):7.1f} {sec(ok_seq1, p):7.1f} {sec(ok_ray, p):7.1f}  {acc(ok_seq, p):8.4f} "
              f"{acc(ok_seq1, p):8.4f} {acc(ok_ray, p):8.4f}")
    same1 = all(acc(ok_seq1, p) == acc(ok_ray, p) for p in ok_ray)
    print(f"\nfinished: sequential {len(ok_seq)}/{n}, seq1 {len(ok_seq1)}/{n}, ray {len(ok_ray)}/{n}; "
          f"ray accuracies identical to the 1-thread sequential run: {same1} (thread counts can change lbfgs "
          "rounding, hence the all-core run may differ in the last digit)")
    print(f"grid wall time     sequential {t_seq:7.1f} s | sequential 1 thread {t_seq1:7.1f} s | "
          f"ray {t_ray:7.1f} s (+ ray.init {t_init:.1f} s)")
    print(f"speed-up of ray    vs sequential {t_seq / t_ray:.2f}x ({t_seq / (t_ray + t_init):.2f}x incl. init) | "
          f"vs sequential 1 thread {t_seq1 / t_ray:.2f}x ({t_seq1 / (t_ray + t_init):.2f}x incl. init)")
    print(f"Σ in-job seconds   sequential {s_seq:7.1f} s | sequential 1 thread {s_seq1:7.1f} s | ray {s_ray:7.1f} s")
    print(f"ray per-job overhead: empty-task round trip {1000 * statistics.median(rtts):.1f} ms; "
          f"worker-slot time outside jobs {(a.workers * t_ray - s_ray) / n:.2f} s/job; "
          f"in-job time vs sequential 1 thread {(s_ray - s_seq1) / n:+.2f} s/job (dataset reload from the "
          "cache, 2 jobs sharing the cores)")
    print(f"load average after: {os.getloadavg()}; results under {base}")


if __name__ == "__main__":
    main()
