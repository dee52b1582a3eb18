"""The grid: datasets × pipelines × seeds expanded into jobs, each with an identity hash, checked and planned here
and handed to an executor (:mod:`bench.executors`: in this process, a process pool or Ray — one engine).

A job whose identity already has a FINISHED run is skipped (unless ``force``). Measuring and recording one job
is :mod:`bench.execute`; the job itself is :mod:`bench.jobs`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from bench.datasets import SplitData
from bench.execute import configure_caches, dataset_cache_dir, load_data
from bench.executors import Context, LocalExecutor, Task
from bench.jobs import Job, JobResult, experiment_name  # noqa: F401  (Job re-exported: run_grid takes them)
from bench.measure import environment_tags
from bench.tracking import Tracker, results_dir
from cvbench_util.progress import mode as progress_mode
from pipelines.cache import get_cache_dir


def run_grid(jobs: Iterable[Job], *, tracker: Tracker | None = None, force: bool = False,
             data_dir: str | None = None, log: Callable[[str], None] = print,
             keep_going: bool = True, executor: Any = None, dry_run: bool = False) -> list[JobResult]:
    """Run ``jobs``: one parent run per dataset, one child run per job.

    ``dry_run`` checks and loads as usual, then only says which jobs would run (status ``PLANNED``) and which
    would be skipped as done, creating no experiment and no run.

    Every job's parameters are checked, and every dataset is loaded (its split hash joins the job identity),
    before any experiment or run is created: a bad request or a dataset that cannot be loaded leaves nothing
    behind. ``executor`` (:mod:`bench.executors`) decides where jobs run; ``None`` or a one-process local
    executor runs them here, in order, keeping one dataset in memory between jobs. Other executors get
    self-contained tasks.
    """
    tracker = tracker or Tracker()
    configure_caches()
    load_kw = {"data_dir": data_dir, "cache_dir": dataset_cache_dir()}
    jobs = list(jobs)
    for j in jobs:
        j.resolved_params()  # unknown or invalid parameters fail here, before anything is loaded or logged
    results: list[JobResult] = []
    by_dataset: dict[str, list[Job]] = {}
    for j in jobs:
        by_dataset.setdefault(j.dataset, []).append(j)
    loaded: dict[tuple, SplitData] = {}  # the last protocol loaded, reused by the first jobs that need it
    hashes: dict[tuple, str] = {}
    for dataset, djobs in by_dataset.items():
        for split, image_size in dict.fromkeys((j.split, j.image_size) for j in djobs):
            loaded.clear()
            loaded[dataset, split, image_size] = data = load_data(dataset, split, image_size, load_kw, log)
            hashes[dataset, split, image_size] = data.split_hash
    todo_by_dataset: dict[str, tuple[str, list[Job]]] = {}
    for dataset, djobs in by_dataset.items():
        exp_id = tracker.existing_experiment_id(experiment_name(dataset)) if dry_run else \
            tracker.experiment_id(experiment_name(dataset))
        todo = []
        for j in djobs:
            j = replace(j, split_hash=hashes[dataset, j.split, j.image_size])
            done = [] if force or exp_id is None else tracker.finished_runs(exp_id, j.identity())
            if done:
                results.append(JobResult(j, "SKIPPED", done[0]))
                log(f"skip  {j.run_name} (FINISHED run {done[0][:8]} exists; --force to redo)")
            else:
                todo.append(j)
                if dry_run:
                    results.append(JobResult(j, "PLANNED"))
                    log(f"plan  {j.run_name} " + json.dumps(j.resolved_params(), default=str))
        if todo and exp_id is not None:
            todo_by_dataset[dataset] = (exp_id, todo)
    if dry_run:
        return results
    executor = executor if executor is not None else LocalExecutor(1)
    if not executor.in_process:
        loaded.clear()  # workers load through the decoded cache, which the planning above filled
    results += _dispatch(todo_by_dataset, tracker, executor, load_kw, log, loaded, keep_going)
    return results


def _dispatch(todo_by_dataset: dict[str, tuple[str, list[Job]]], tracker: Tracker, executor: Any,
              load_kw: dict[str, Any], log: Callable[[str], None], loaded: dict[tuple, SplitData],
              keep_going: bool) -> list[JobResult]:
    """Open every dataset's parent run, hand all jobs to ``executor`` at once, close the parents."""
    if not todo_by_dataset:
        return []
    # run_grid decoded each dataset once already, so workers hit the decoded cache instead of racing to build it
    remote = bool(getattr(executor, "address", None))
    if remote and tracker.is_local_sqlite:
        log(f"warning: workers on other machines cannot write {tracker.uri}; start `make server` and set "
            "MLFLOW_TRACKING_URI=http://HOST:PORT")
    # Local workers share this machine's results directory and caches; remote ones use their own.
    env = {} if remote else {"CVBENCH_RESULTS": str(results_dir()), "CVBENCH_FEATURE_CACHE": str(get_cache_dir())}
    for var in ("CVBENCH_MEMORY_BUDGET_MB", "CVBENCH_PLUGINS", "CVBENCH_THREADS", "CVBENCH_PROGRESS"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    if getattr(executor, "concurrency", 1) > 1 and progress_mode() is not True:
        env["CVBENCH_PROGRESS"] = "0"  # parallel workers would draw their bars over each other on one terminal
    executor.start()
    ctx = Context(tracker.uri, {"data_dir": load_kw.get("data_dir")} if remote else dict(load_kw), env,
                  concurrency=getattr(executor, "concurrency", 1), tracker=tracker, data=loaded,
                  raise_errors=not keep_going)
    try:
        if not executor.in_process:
            log(f"executor: {executor.describe()}")
        with contextlib.ExitStack() as parents:
            tasks = []
            for dataset, (exp_id, todo) in todo_by_dataset.items():
                parent_id = parents.enter_context(tracker.run(
                    exp_id, f"{dataset}/invocation", {"cvbench.kind": "parent", "cvbench.executor": executor.name,
                                                     "cvbench.concurrency": str(ctx.concurrency),
                                                     **environment_tags()}))
                tasks += [Task(j, exp_id, parent_id) for j in todo]
            try:
                return executor.run(tasks, ctx, log)
            except KeyboardInterrupt:  # cancelled tasks cannot close their runs: close them here
                for t in tasks:
                    with contextlib.suppress(Exception):
                        for r in tracker.client.search_runs(
                                [t.experiment_id], f"tags.`mlflow.parentRunId` = '{t.parent_id}' "
                                "and attributes.status = 'RUNNING'"):
                            tracker.end_run(r.info.run_id, "KILLED")
                raise
    finally:
        executor.stop()
