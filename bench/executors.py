"""Where jobs run: in this process, in a local process pool (``--jobs N``), or as Ray tasks (``--executor ray``).
All three are one engine: :meth:`Executor.run` schedules, retries, handles Ctrl-C and reports for each of them.

Every executor runs the same self-contained :func:`run_job` (it reloads the dataset through the decoded cache
and logs to the tracking URI it is given, under the parent run it is given), so a result is the same wherever
it ran. A job that raises ends as a FAILED run and a FAILED :class:`~bench.jobs.JobResult`; it never stops
the grid. Failed jobs are resubmitted up to ``retries`` times (each attempt is its own MLflow run); user errors
(a dataset that does not exist) are not retried. The grid's results come back in completion order.

Ray: ``ray.init()`` on this machine (``num_cpus = jobs``, small object store, no dashboard) or
``ray.init(address=...)`` for an existing cluster. Each job is a task asking for ``cpus_per_job`` CPUs, plus one
GPU for network families (scratch / transfer) when the cluster has GPUs. Workers on other machines must have
cvbench installed and must reach the tracking store: use ``make server`` and an ``http://`` tracking URI.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.errors import UserError
from bench.execute import dataset_cache_dir, execute, load_data
from bench.jobs import Job, JobResult

GPU_FAMILIES = ("scratch", "transfer")
Log = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """One job plus where it must log: the experiment and the dataset's parent run."""

    job: Job
    experiment_id: str
    parent_id: str | None = None


@dataclass
class Context:
    """What a worker needs besides the job: the store, how to load data, the environment to apply."""

    tracking_uri: str
    load_kw: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    threads: int | None = None
    concurrency: int = 1  # jobs that may run at once on the hardware: recorded on every run (contended timings)
    # in this process only (never sent to a worker): the grid's tracker, the datasets it already loaded, and
    # whether an exception stops the grid (``keep_going=False``) rather than becoming a FAILED result
    tracker: Any = field(default=None, repr=False, compare=False)
    data: dict[tuple, Any] | None = field(default=None, repr=False, compare=False)
    raise_errors: bool = False

    def for_worker(self, **kw: Any) -> Context:
        """This context as sent to another process: no in-process objects."""
        return replace(self, tracker=None, data=None, **kw)


_TRACKERS: dict[str, Any] = {}


def _tracker(uri: str) -> Any:
    from bench.tracking import Tracker

    if uri not in _TRACKERS:  # one per worker process: the store check and schema lock run once
        _TRACKERS[uri] = Tracker(uri)
    return _TRACKERS[uri]


def run_job(task: Task, ctx: Context) -> JobResult:
    """Run one job in whatever process calls it; exceptions become a FAILED result (never raised)."""
    from bench.tracking import results_dir
    from pipelines.cache import set_cache_dir

    t0 = time.perf_counter()
    env = dict(ctx.env)
    if ctx.threads:  # the job's CPU share also caps joblib workers (feature extraction, k-NN)
        env.update(CVBENCH_N_JOBS=str(ctx.threads), LOKY_MAX_CPU_COUNT=str(ctx.threads))
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    limits = contextlib.ExitStack()
    try:
        from bench.plugins import load_plugins

        load_plugins()  # the user's own pipelines (CVBENCH_PLUGINS), before the job is built
        # Worker processes are reused across tasks: set the feature cache for this task explicitly.
        set_cache_dir(os.environ.get("CVBENCH_FEATURE_CACHE") or results_dir() / "cache" / "features")
        if ctx.threads:
            import torch
            from threadpoolctl import threadpool_limits

            limits.enter_context(threadpool_limits(ctx.threads))
            torch.set_num_threads(ctx.threads)
            with contextlib.suppress(ImportError):
                import cv2

                cv2.setNumThreads(ctx.threads)
        load_kw = dict(ctx.load_kw)
        load_kw.setdefault("cache_dir", dataset_cache_dir())
        tracker = _tracker(ctx.tracking_uri)
        res = execute(task.job, tracker, task.experiment_id, task.parent_id, load_kw=load_kw,
                      concurrency=ctx.concurrency)
        with contextlib.suppress(Exception):  # which machine and process ran it (the run is already FINISHED)
            tracker.set_tags(res.run_id, {"cvbench.worker": f"{socket.gethostname()}:{os.getpid()}"})
        return res
    except Exception as e:
        res = JobResult(task.job, "FAILED", error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
        if isinstance(e, UserError):
            res.error = "UserError: " + res.error  # not retried: the request itself is wrong
        else:
            res.error += "\n" + "".join(traceback.format_exception(e)[-3:]).rstrip()
        return res
    finally:
        limits.close()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _first_line(msg: str | None) -> str:
    return (msg or "").splitlines()[0] if msg else ""


class Executor:
    """Submit tasks, collect results as they complete, resubmit failures up to ``retries`` times."""

    name = "local"
    in_process = False
    concurrency = 1  # how many jobs may run at once (recorded on each run: timings under contention)

    def __init__(self, retries: int = 0):
        if retries < 0:
            from bench.errors import ConfigError

            raise ConfigError("--retries must be ≥ 0")
        self.retries = retries

    # subclasses: start / submit / next completed / cancel / stop
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def _submit(self, task: Task, ctx: Context) -> Any:
        raise NotImplementedError

    def _next(self, handles: list[Any]) -> tuple[Any, JobResult]:
        raise NotImplementedError

    def _cancel(self, handles: list[Any]) -> None: ...

    def describe(self) -> str:
        return self.name

    def _announce(self, task: Task, log: Log) -> None:
        log(f"run   {task.job.run_name} (submitted to {self.name})")

    def _completed(self, res: JobResult) -> None: ...

    def run(self, tasks: list[Task], ctx: Context, log: Log = print) -> list[JobResult]:
        """Run ``tasks``; each failure is resubmitted up to ``retries`` times (user errors never); results in
        completion order. Ctrl-C cancels what is pending, counts it KILLED and re-raises."""
        results: list[JobResult] = []
        pending: dict[Any, tuple[Task, int]] = {}
        self._log, self._n_tasks = log, len(tasks)
        for t in tasks:
            self._announce(t, log)
            pending[self._submit(t, ctx)] = (t, 1)
        try:
            while pending:
                handle, res = self._next(list(pending))
                task, attempt = pending.pop(handle)
                if res.job is None:  # a crash reported by the executor, not by run_job
                    res.job = task.job
                if res.status == "FINISHED":
                    acc = res.metrics.get("test_accuracy", float("nan"))
                    log(f"done  {task.job.run_name}: test_accuracy={acc:.4f} in {res.seconds:.1f}s"
                        + (f" (attempt {attempt})" if attempt > 1 else ""))
                    results.append(res)
                    self._completed(res)
                    continue
                log(f"FAIL  {task.job.run_name}: {_first_line(res.error)}")
                if attempt <= self.retries and not (res.error or "").startswith("UserError"):
                    log(f"retry {task.job.run_name} (attempt {attempt + 1} of {self.retries + 1})")
                    pending[self._submit(task, ctx)] = (task, attempt + 1)
                else:
                    if attempt > 1:
                        res.error = f"{res.error} [after {attempt} attempts]"
                    results.append(res)
                    self._completed(res)
        except KeyboardInterrupt:
            self._cancel(list(pending))
            results.extend(JobResult(t.job, "KILLED") for t, _ in pending.values())
            raise
        return results


class _Deferred:
    """A task the in-process executor runs when the engine asks for the next result (in submission order; a
    retry keeps its task's place)."""

    def __init__(self, order: int, task: Task, ctx: Context):
        self.order, self.task, self.ctx = order, task, ctx


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


class LocalExecutor(Executor):
    """``jobs == 1``: in this process (the runner's own loop, datasets kept in memory between jobs).
    ``jobs > 1``: a pool of ``jobs`` spawned processes, each running :func:`run_job`.
    ``isolate``: one job at a time, each in a fresh spawned process of its own, so that nothing a process carries
    from job to job (the allocator's heap, warm thread pools, library state) is left by the jobs before it; each
    job then loads its dataset from the decoded-dataset cache. (Machine-level effects remain:
    docs/measurements.md#execute.)"""

    def __init__(self, jobs: int = 1, retries: int = 0, isolate: bool = False):
        super().__init__(retries)
        if jobs < 1:
            from bench.errors import ConfigError

            raise ConfigError("--jobs must be ≥ 1")
        if isolate and jobs > 1:
            from bench.errors import ConfigError

            raise ConfigError("--isolate runs one job at a time, each in a fresh process: drop --jobs (or use "
                              "--jobs N without --isolate: a pool's workers are reused across jobs)")
        self.jobs = jobs
        self.isolate = isolate
        self.concurrency = jobs
        self.in_process = jobs == 1 and not isolate
        self.name = "local, a fresh process per job" if isolate else "local" if jobs == 1 else f"local pool ×{jobs}"
        self._pool: Any = None
        self._order: dict[int, int] = {}  # in process: id(task) -> its place in the grid
        self._durations: list[float] = []
        self._t0 = time.perf_counter()

    def start(self) -> None:
        if (self.jobs > 1 or self.isolate) and self._pool is None:  # --isolate: one worker, a new pool per job
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("spawn"))

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _announce(self, task: Task, log: Log) -> None:
        if not (self.in_process or self.isolate):  # one at a time: announced when it starts (elapsed, ETA)
            super()._announce(task, log)

    def _completed(self, res: JobResult) -> None:
        self._durations.append(res.seconds)

    def run(self, tasks: list[Task], ctx: Context, log: Log = print) -> list[JobResult]:
        self._order, self._durations, self._t0 = {}, [], time.perf_counter()
        return super().run(tasks, ctx, log)

    def _submit(self, task: Task, ctx: Context) -> Any:
        if self.in_process or self.isolate:
            return _Deferred(self._order.setdefault(id(task), len(self._order)), task, ctx)
        if self._pool is None:
            self.start()
        threads = max(1, (os.cpu_count() or 1) // self.jobs)  # no oversubscription: cores shared by the pool
        return self._pool.submit(run_job, task, ctx.for_worker(threads=threads, concurrency=self.concurrency))

    def _log_start(self, job: Any) -> None:
        done = self._durations
        eta = f", ETA {_clock(sum(done) / len(done) * (self._n_tasks - len(done)))}" if done else ""
        self._log(f"[{len(done) + 1}/{self._n_tasks}] run   {job.run_name}"
                  f"  (elapsed {_clock(time.perf_counter() - self._t0)}{eta})")

    def _run_isolated(self, d: _Deferred) -> JobResult:
        """Run one task in a fresh spawned process: a new one-worker pool per task (not ``max_tasks_per_child=1``,
        which deadlocks on Python 3.11–3.13 when the worker exits: CPython gh-115634)."""
        from concurrent.futures.process import BrokenProcessPool

        self._log_start(d.task.job)
        self.start()
        threads = d.ctx.threads or os.cpu_count() or 1
        try:
            return self._pool.submit(run_job, d.task, d.ctx.for_worker(threads=threads, concurrency=1)).result()
        except BrokenProcessPool as e:  # the worker died (out of memory, segfault)
            return JobResult(None, "FAILED", error=f"worker process died: {e}")  # type: ignore[arg-type]
        finally:
            self.stop()

    def _run_here(self, d: _Deferred) -> JobResult:
        """Run one task in this process: the dataset stays in memory between jobs (one at a time), progress
        lines go to the grid's log, and a user error (or any error when ``raise_errors``) stops the grid."""
        job, ctx, log = d.task.job, d.ctx, self._log
        self._log_start(job)
        t0 = time.perf_counter()
        try:
            key = (job.dataset, job.split, job.image_size)
            loaded = ctx.data if ctx.data is not None else {}
            if key not in loaded:
                loaded.clear()  # keep one dataset in memory at a time
                loaded[key] = load_data(job.dataset, job.split, job.image_size, ctx.load_kw, log)
            return execute(job, ctx.tracker, d.task.experiment_id, d.task.parent_id, data=loaded[key],
                           progress=log)
        except (KeyboardInterrupt, UserError):
            raise  # UserError: a problem with the request itself (bad dataset, bad params): stop and say so
        except Exception as e:
            if ctx.raise_errors:
                raise
            return JobResult(job, "FAILED", error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)

    def _next(self, handles: list[Any]) -> tuple[Any, JobResult]:
        if self.in_process or self.isolate:
            d = min(handles, key=lambda h: h.order)
            return d, self._run_isolated(d) if self.isolate else self._run_here(d)
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        fut = next(iter(done))
        try:
            return fut, fut.result()
        except BrokenProcessPool as e:  # a worker died (out of memory, segfault): the next submit starts a new pool
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            return fut, JobResult(None, "FAILED", error=f"worker process died: {e}")  # type: ignore[arg-type]

    def _cancel(self, handles: list[Any]) -> None:
        if self.in_process:
            return
        if self.isolate:  # the running job's pool; the others were never started
            self.stop()
            return
        for h in handles:
            h.cancel()
        self.stop()


class RayExecutor(Executor):
    """Jobs as Ray tasks: local ``ray.init()`` or an existing cluster at ``address``."""

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int | None = None, cpus_per_job: float = 1,
                 retries: int = 0, object_store_mb: int = 256):
        super().__init__(retries)
        self.address = address
        self.jobs = jobs
        self.cpus_per_job = cpus_per_job
        self.object_store_mb = object_store_mb
        self._owns = False
        self._remote: Any = None
        self._gpus = 0.0

    def start(self) -> None:
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is a declared dependency
            from bench.errors import ConfigError

            raise ConfigError("--executor ray needs the 'ray' package: run `make setup`") from None
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING",
                                  "log_to_driver": False}
            if self.address:
                kw["address"] = self.address
            else:  # a local cluster sized to the requested parallelism, with a small object store
                kw.update(num_cpus=self.jobs or os.cpu_count() or 1,
                          object_store_memory=self.object_store_mb * 2**20)
            ray.init(**kw)
            self._owns = True
        res = ray.cluster_resources()
        self._gpus = float(res.get("GPU", 0))
        # tasks at once on this cluster: what its CPUs allow at cpus_per_job each (a cluster spans machines, and
        # each run also records its worker's hardware)
        self.concurrency = max(1, int(float(res.get("CPU", 1)) // max(self.cpus_per_job, 1e-9)))
        # Ray's own retries cover worker crashes (system failures); exceptions are retried by Executor.run.
        self._remote = ray.remote(max_retries=self.retries)(run_job)

    def stop(self) -> None:
        if self._owns:
            import ray

            ray.shutdown()
            self._owns = False

    def describe(self) -> str:
        import ray

        res = ray.cluster_resources()
        return (f"ray ({self.address or 'local'}: {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU; "
                f"{self.cpus_per_job:g} CPU per job)")

    def _submit(self, task: Task, ctx: Context) -> Any:
        if self._remote is None:
            self.start()
        spec_family = _family(task.job.pipeline)
        gpus = 1 if (self._gpus >= 1 and spec_family in GPU_FAMILIES) else 0
        threads = max(1, int(self.cpus_per_job))
        ctx = ctx.for_worker(threads=threads, concurrency=self.concurrency)
        return self._remote.options(num_cpus=self.cpus_per_job, num_gpus=gpus).remote(task, ctx)

    def _next(self, handles: list[Any]) -> tuple[Any, JobResult]:
        import ray

        ready, _ = ray.wait(handles, num_returns=1)
        ref = ready[0]
        try:
            return ref, ray.get(ref)
        except ray.exceptions.RayError as e:  # the worker died or the task could not run
            return ref, JobResult(None, "FAILED", error=f"{type(e).__name__}: {_first_line(str(e))}")  # type: ignore[arg-type]

    def _cancel(self, handles: list[Any]) -> None:
        import ray

        for h in handles:
            with contextlib.suppress(Exception):
                ray.cancel(h, force=True)


def _family(pipeline: str) -> str:
    from pipelines.registry import get_spec

    return get_spec(pipeline).family


def make_executor(name: str = "local", *, jobs: int | None = None, address: str | None = None,
                  retries: int = 0, cpus_per_job: float = 1, isolate: bool = False) -> Executor:
    """The executor for ``--executor NAME --jobs N --ray-address A --retries R [--isolate]``."""
    from bench.errors import ConfigError

    if name == "local":
        return LocalExecutor(1 if jobs is None else jobs, retries, isolate)
    if name == "ray":
        if isolate:
            raise ConfigError("--isolate is for the local executor (Ray reuses its worker processes)")
        return RayExecutor(address, jobs, cpus_per_job, retries)

    raise ConfigError(f"unknown executor {name!r}: choose local or ray")
