"""Executors: a Ray grid (one shared local Ray session), a local process pool, failures, retries, resume."""

from __future__ import annotations

import os

import pytest

from bench.datasets import SplitOptions
from bench.executors import LocalExecutor, RayExecutor
from bench.runner import Job, run_grid

ray = pytest.importorskip("ray")  # a declared dependency; importorskip only guards a broken install

# k far above the training-set size passes the parameter checks (k ≥ 1) but makes k-NN's fit raise: the
# deliberately failing job.
BAD = {"k": 10**9}


def _grid() -> list[Job]:
    sp = SplitOptions()
    return [Job("digits", "pixels-knn", 0, {}, sp), Job("digits", "pixels-knn", 1, {}, sp),
            Job("digits", "pixels-logreg", 0, {"max_iter": 100}, sp), Job("digits", "pixels-knn", 2, BAD, sp)]


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    """One local Ray cluster (2 CPUs = 2 concurrent workers) shared by this module's tests: start-up is slow."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False,
             logging_level="WARNING")
    barrier = str(tmp_path_factory.mktemp("barrier"))

    def _warm_worker(barrier: str) -> int:
        """Import the job code, then wait until the other worker has too: both workers exist and are warm."""
        import os
        import time
        from pathlib import Path

        import bench.runner  # noqa: F401

        Path(barrier, str(os.getpid())).touch()
        deadline = time.time() + 90
        while len(list(Path(barrier).iterdir())) < 2 and time.time() < deadline:
            time.sleep(0.05)
        return os.getpid()

    warm = ray.remote(num_cpus=1)(_warm_worker)
    assert len(set(ray.get([warm.remote(barrier), warm.remote(barrier)], timeout=120))) == 2
    yield ray
    ray.shutdown()


def _job_runs(tracker, exp_id):
    return [r for r in tracker.client.search_runs([exp_id], max_results=100)
            if r.data.tags.get("cvbench.kind") == "job"]


@pytest.mark.timeout(180)
def test_ray_grid_finishes_every_job_and_reports_the_failure(ray_session, tracker):
    logs: list[str] = []
    ex = RayExecutor(retries=1)
    results = run_grid(_grid(), tracker=tracker, log=logs.append, executor=ex)
    assert ray_session.is_initialized(), "an executor must not shut down a Ray session it did not start"
    assert ray_session.cluster_resources()["CPU"] == 2
    by = {(r.job.pipeline, r.job.seed): r for r in results}
    assert len(results) == 4
    for key in [("pixels-knn", 0), ("pixels-knn", 1), ("pixels-logreg", 0)]:
        r = by[key]
        assert r.status == "FINISHED", r.error
        assert r.metrics["test_accuracy"] > 0.9 and r.run_id
    bad = by[("pixels-knn", 2)]
    assert bad.status == "FAILED" and "n_neighbors" in bad.error and "after 2 attempts" in bad.error
    assert any(m.startswith("retry digits/pixels-knn/2") for m in logs)

    # The store: every good job FINISHED with its metrics under the one parent run; two FAILED attempts.
    exp_id = tracker.experiment_id("digits")
    runs = _job_runs(tracker, exp_id)
    parents = [r for r in tracker.client.search_runs([exp_id]) if r.data.tags.get("cvbench.kind") == "parent"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.tags["cvbench.executor"] == "ray"
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(finished) == 3 and len(failed) == 2
    for r in finished:
        res = next(x for x in results if x.run_id == r.info.run_id)
        assert r.data.metrics["test_accuracy"] == pytest.approx(res.metrics["test_accuracy"])
        assert {"val_accuracy", "fit_time_s", "peak_rss_mb"} <= set(r.data.metrics)
    assert all("n_neighbors" in r.data.tags["cvbench.error"] for r in failed)
    # Finished runs say which worker process ran them: the grid was spread over both workers.
    workers = {r.data.tags["cvbench.worker"] for r in finished}
    assert len(workers) == 2, workers

    # Same result as in-process execution (classical pipelines are deterministic).
    local = run_grid([Job("digits", "pixels-knn", 0, {}, SplitOptions())], tracker=tracker, force=True,
                     log=logs.append)
    assert local[0].metrics["test_accuracy"] == by[("pixels-knn", 0)].metrics["test_accuracy"]

    # Rerunning the grid skips FINISHED jobs and only resubmits the failed one.
    again = run_grid(_grid(), tracker=tracker, log=logs.append, executor=RayExecutor(retries=0))
    assert sorted(r.status for r in again) == ["FAILED", "SKIPPED", "SKIPPED", "SKIPPED"]


@pytest.mark.timeout(120)
def test_cli_run_with_ray_executor(ray_session, tracker, capsys):  # tracker: the store exists already
    from bench.cli import main

    rc = main(["run", "-d", "digits", "-p", "pixels-knn", "-s", "0", "-s", "2", "--executor", "ray",
               "--retries", "1", "--no-table"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "executor: ray" in out and "2 job(s)" in out and "2 finished" in out


@pytest.mark.timeout(180)
def test_local_process_pool(tracker):
    grid = [j for j in _grid() if not (j.pipeline == "pixels-logreg" and j.seed == 0)]
    logs: list[str] = []
    results = run_grid(grid, tracker=tracker, log=logs.append, executor=LocalExecutor(jobs=2))
    st = {(r.job.pipeline, r.job.seed): r.status for r in results}
    assert st == {("pixels-knn", 0): "FINISHED", ("pixels-knn", 1): "FINISHED", ("pixels-knn", 2): "FAILED"}
    assert any(m.startswith("executor: local pool ×2") for m in logs)
    runs = _job_runs(tracker, tracker.experiment_id("digits"))
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED", "FINISHED"]


@pytest.mark.timeout(180)
def test_isolate_runs_each_job_in_a_fresh_process_of_its_own(tracker):
    """``run --isolate``: no job runs in a process an earlier job ran in (nothing the process carries from job to
    job can move its costs), and every run records how many jobs its process ran before it."""
    logs: list[str] = []
    grid = [Job("digits", "pixels-knn", s, {}, SplitOptions()) for s in (0, 1)]
    results = run_grid(grid, tracker=tracker, log=logs.append, force=True,
                       executor=LocalExecutor(jobs=1, isolate=True))
    assert [r.status for r in results] == ["FINISHED", "FINISHED"]
    assert any(m.startswith("executor: local, a fresh process per job") for m in logs)
    ids = {r.run_id for r in results}
    runs = [r for r in _job_runs(tracker, tracker.experiment_id("digits")) if r.info.run_id in ids]
    pids = {r.data.tags["cvbench.worker"].rsplit(":", 1)[1] for r in runs}
    assert len(runs) == 2 and len(pids) == 2 and str(os.getpid()) not in pids
    assert {r.data.tags["cvbench.concurrency"] for r in runs} == {"1"}  # sequential: timings are exclusive
    assert {r.data.tags["cvbench.jobs_before"] for r in runs} == {"0"}
    # In one process, the second job records that one ran before it there.
    shared = run_grid(grid, tracker=tracker, log=logs.append, force=True)
    before = [int(tracker.client.get_run(r.run_id).data.tags["cvbench.jobs_before"]) for r in shared]
    assert before[1] == before[0] + 1


def test_in_process_retries_then_reports(tracker):
    logs: list[str] = []
    results = run_grid([Job("digits", "pixels-knn", 2, BAD, SplitOptions())], tracker=tracker,
                       log=logs.append, executor=LocalExecutor(jobs=1, retries=2))
    assert [r.status for r in results] == ["FAILED"]
    assert sum(m.startswith("FAIL  digits/pixels-knn/2") for m in logs) == 3


def test_bad_executor_options():
    from bench.errors import ConfigError
    from bench.executors import make_executor

    with pytest.raises(ConfigError):
        make_executor("spark")
    with pytest.raises(ConfigError):
        make_executor("local", jobs=0)
    with pytest.raises(ConfigError):
        make_executor("ray", retries=-1)
    with pytest.raises(ConfigError, match="--isolate"):
        make_executor("ray", isolate=True)
