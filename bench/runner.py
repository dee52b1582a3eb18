"""Jobs and their execution: datasets × pipelines × seeds, each one MLflow run with an identity hash.

A job whose identity already has a FINISHED run is skipped (unless ``force``). ``execute`` is self-contained
(it reloads the dataset through the decoded cache), so other executors (process pools, Ray) can call it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from bench import CODE_VERSION  # bump it there when a change makes earlier results incomparable
from bench.datasets import SplitData, SplitOptions
from bench.datasets.stream import chunk_estimator, prepare_auto
from bench.errors import ConfigError, UserError
from bench.measure import PeakRSS, Timer, environment_tags, latency_ms, model_size_mb, release_memory
from bench.tracking import Tracker, results_dir
from pipelines import cache as feature_cache
from pipelines.cache import set_cache_dir
from pipelines.progress import mode as progress_mode
from pipelines.registry import get_spec


@dataclass(frozen=True)
class Job:
    """One (dataset, pipeline, seed) cell of the grid, with everything that determines its result."""

    dataset: str
    pipeline: str
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    split: SplitOptions = field(default_factory=SplitOptions)
    image_size: int | None = None
    split_hash: str | None = None  # the data this job sees (split indices + image content), once loaded

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed {self.seed!r}: a seed must be a non-negative integer")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size < 8):
            raise ConfigError(f"--image-size {self.image_size!r}: must be an integer ≥ 8 (pixels)")

    def resolved_params(self) -> dict[str, Any]:
        spec = get_spec(self.pipeline)
        params = spec.resolve_params(**self.params)
        if "seed" in params:
            params["seed"] = self.seed
        return params

    def for_data(self, data: SplitData) -> Job:
        """This job bound to the data it will see: the identity then covers the images themselves, so a
        changed ``folder:`` dataset is a new job."""
        if self.split_hash not in (None, data.split_hash):
            raise RuntimeError(f"{self.run_name}: the dataset changed since the job was planned "
                               f"(split hash {self.split_hash} → {data.split_hash}); rerun the command")
        return replace(self, split_hash=data.split_hash)

    def identity(self) -> str:
        blob = {"dataset": self.dataset, "split": self.split.as_params(), "image_size": self.image_size,
                "split_hash": self.split_hash, "pipeline": self.pipeline, "params": self.resolved_params(),
                "seed": self.seed, "code_version": CODE_VERSION}
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:20]

    @property
    def run_name(self) -> str:
        return f"{self.dataset}/{self.pipeline}/{self.seed}"

    def as_config(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolved_params"] = self.resolved_params()
        d["identity"] = self.identity()
        return d


@dataclass
class JobResult:
    job: Job
    status: str  # FINISHED | SKIPPED | FAILED | KILLED
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def experiment_name(dataset: str) -> str:
    return dataset


def _fit_kwargs(est: Any, data: SplitData, callback: Callable) -> dict[str, Any]:
    sig = inspect.signature(est.fit).parameters
    kw: dict[str, Any] = {}
    if "X_val" in sig and len(data.y_val):
        kw.update(X_val=data.X_val, y_val=data.y_val)
    if "callback" in sig:
        kw["callback"] = callback
    if "allow_hflip" in sig:  # label-preserving flips are a property of the dataset (never for digits)
        kw["allow_hflip"] = bool(data.meta.get("allow_hflip", False))
    return kw


def _readable(v: Any) -> str:
    """A number for a progress line: 15,960 rather than 1.596e+04; 2.9e-05 and 0.9731 as they are."""
    if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


def _warm_up(pipeline: str, params: dict[str, Any], data: SplitData, per_class: int = 4) -> None:
    """Fit and predict a throw-away copy of the job's estimator on a few images per class, with no feature
    cache, before anything is measured: the one-off costs of a process (imports, BLAS and oneDNN buffers,
    thread pools, a backbone's weights) are then paid outside the job's time and memory, which no longer
    depend on what ran before it in the same process."""
    from pipelines.registry import create

    def few(y: np.ndarray, n: int) -> np.ndarray:
        return np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)] or [np.zeros(0, int)])

    tr, va = few(data.y_train, per_class), few(data.y_val, max(1, per_class // 2))
    est = create(pipeline, **params)
    kw = {"X_val": data.X_val[va], "y_val": data.y_val[va]} if len(va) and "X_val" in inspect.signature(
        est.fit).parameters else {}
    try:
        with feature_cache.disabled():
            est.fit(data.X_train[tr], data.y_train[tr], **kw)
            est.predict(data.X_test[:2])
    except Exception:  # noqa: BLE001 - best effort: a recipe may need more images; the real fit reports errors
        pass
    del est
    release_memory()


def _confusion_png(cm: np.ndarray, names: list[str], title: str) -> bytes:
    from bench.report.plots import figure_png, pyplot

    plt = pyplot()
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * n, 1.0 + 0.45 * n), dpi=100)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    if n <= 20:
        thr = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > thr else "black")
    fig.tight_layout()
    return figure_png(fig, dpi=100)


def _artifacts(job: Job, data: SplitData, y_pred: np.ndarray, info: dict[str, Any]) -> dict[str, bytes | str]:
    import pandas as pd
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(len(data.class_names)))
    cm = confusion_matrix(data.y_test, y_pred, labels=labels)
    cm_df = pd.DataFrame(cm, index=data.class_names, columns=data.class_names)
    rep = classification_report(data.y_test, y_pred, labels=labels, target_names=data.class_names,
                                output_dict=True, zero_division=0)
    files: dict[str, bytes | str] = {
        "confusion_matrix.csv": cm_df.to_csv(),
        "confusion_matrix.png": _confusion_png(cm, data.class_names, job.run_name),
        "per_class.csv": pd.DataFrame(rep).T.to_csv(),
        "job_config.json": json.dumps(job.as_config(), indent=2, default=str),
        "predictions.csv": pd.DataFrame({"test_index": data.split.test, "y_true": data.y_test,
                                         "y_pred": y_pred}).to_csv(index=False),
    }
    if info.get("tuning"):
        files["tuning.json"] = json.dumps(info["tuning"], indent=2, default=str)
    skipped = data.meta.get("skipped") or []
    if skipped:
        files["skipped_files.csv"] = pd.DataFrame(skipped, columns=["file", "reason"]).to_csv(index=False)
    return files


def execute(job: Job, tracker: Tracker, experiment_id: str, parent_id: str | None = None,
            data: SplitData | None = None, load_kw: dict[str, Any] | None = None,
            progress: Callable[[str], None] | None = None, concurrency: int = 1) -> JobResult:
    """Run one job as one MLflow run; the run ends FINISHED only if every step succeeded.

    The data is loaded before the run is created, so a load that fails leaves no run behind. ``concurrency``
    is how many jobs may share the hardware meanwhile (1: exclusive); it is recorded, and reports never mix
    contended timings with exclusive ones.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from pipelines.registry import create

    t_start = time.perf_counter()
    with Timer() as t_load:
        if data is None:
            data = prepare_auto(job.dataset, job.split, image_size=job.image_size, **(load_kw or {}))
    job = job.for_data(data)
    spec = get_spec(job.pipeline)
    params = job.resolved_params()
    tags = {"cvbench.kind": "job", "cvbench.job_id": job.identity(), "cvbench.code_version": CODE_VERSION,
            "cvbench.concurrency": str(concurrency), "dataset": job.dataset, "pipeline": job.pipeline,
            "seed": str(job.seed), "family": spec.family, "features": spec.features, "classifier": spec.classifier,
            **environment_tags()}
    with tracker.run(experiment_id, job.run_name, tags, parent_id) as run_id:
        tracker.log_params(run_id, {
            **{f"pipeline.{k}": v for k, v in params.items()},
            "dataset": job.dataset, "pipeline": job.pipeline, "seed": job.seed,
            **{f"split.{k}": v for k, v in job.split.as_params().items()},
            "image_size": job.image_size if job.image_size else "x".join(map(str, data.X_train.shape[1:3])),
            "size_policy": data.meta.get("size_policy", "native"),
            "n_train": len(data.y_train), "n_val": len(data.y_val), "n_test": len(data.y_test),
            "n_classes": len(data.class_names), "n_channels": int(data.X_train.shape[-1]) if data.X_train.ndim == 4
            else 1, "split_hash": data.split_hash,
            "data_digest": data.meta.get("digest", ""), "n_skipped_files": len(data.meta.get("skipped") or []),
        })
        est = create(job.pipeline, **params)
        if data.meta.get("streamed"):  # larger than the memory budget: memory-mapped splits, chunked features
            est = chunk_estimator(est, data.meta["chunk_rows"])
            tracker.set_tags(run_id, {"data.streamed": f"{data.meta['decoded_mb']:.1f} MB decoded > budget "
                                      f"{data.meta['memory_budget_mb']:g} MB; chunks of {data.meta['chunk_rows']}"})

        def on_epoch(epoch: int, rec: dict[str, float]) -> None:
            tracker.log_metrics(run_id, {k: v for k, v in rec.items() if isinstance(v, int | float)}, step=epoch)
            if progress:
                n_ep = [params.get(k) for k in ("warmup_epochs", "epochs")]  # a fine-tune's probe epochs come first
                n_ep = [v for v in n_ep if isinstance(v, (int, float)) and not isinstance(v, bool)]
                of = f"/{sum(math.ceil(v) for v in n_ep)}" if n_ep else ""
                progress(f"  epoch {epoch + 1}{of}: " + ", ".join(f"{k}={_readable(v)}" for k, v in rec.items()))

        if progress:
            progress(f"  fit   {len(data.y_train)} train / {len(data.y_val)} val images")
        # the job's own footprint (see PeakRSS): what earlier jobs freed is handed back first, and features read
        # from the cache are charged the peak their computation recorded, as their time is (_cost_metrics)
        _warm_up(job.pipeline, params, data)
        release_memory()
        with PeakRSS() as mem_fit, feature_cache.charging() as charged_fit, Timer() as t_fit:
            est.fit(data.X_train, data.y_train, **_fit_kwargs(est, data, on_epoch))
        info = dict(getattr(est, "fit_info_", {}) or {})
        release_memory()
        with PeakRSS() as mem_pred, feature_cache.charging() as charged_pred, Timer() as t_pred:
            y_pred = np.asarray(est.predict(data.X_test))
        fit_peak = max(mem_fit.peak_mb + charged_fit.residue_mb, charged_fit.peak_mb)
        pred_peak = max(mem_pred.peak_mb + charged_pred.residue_mb, charged_pred.peak_mb)
        # the same footprint in malloc-allocated bytes: the allocator's retention left out, so order-independent
        alloc = {f"{part}_peak_alloc_mb": max(m.alloc_peak_mb, c.alloc_peak_mb) for part, m, c in (
            ("fit", mem_fit, charged_fit), ("predict", mem_pred, charged_pred)) if m.alloc_peak_mb is not None}
        if alloc:
            alloc["peak_alloc_mb"] = max(alloc.values())
        metrics = {
            "test_accuracy": accuracy_score(data.y_test, y_pred),
            "test_balanced_accuracy": balanced_accuracy_score(data.y_test, y_pred),  # mean per-class accuracy
            "test_macro_f1": f1_score(data.y_test, y_pred, average="macro", zero_division=0),
            **_cost_metrics(est, info, t_fit.seconds, t_pred.seconds, len(y_pred)),
            "fit_peak_rss_mb": fit_peak, "predict_peak_rss_mb": pred_peak, "peak_rss_mb": max(fit_peak, pred_peak),
            **alloc,
            "model_size_mb": model_size_mb(est),
            # the dataset's own load time (decode or cache read), even when the grid loaded it once for many jobs
            "load_time_s": data.meta.get("load_time_s", t_load.seconds),
        }
        # one image through the ready model: no feature cache, no copy or compilation per call
        with feature_cache.disabled():
            metrics["latency_ms_per_img"] = latency_ms(est.predict, data.X_test)
        if len(data.y_val):
            metrics["val_accuracy"] = float(np.mean(np.asarray(est.predict(data.X_val)) == data.y_val))
        for k in ("n_params", "n_features", "n_empty_images", "epochs_run", "best_epoch"):
            if isinstance(info.get(k), int | float | np.integer | np.floating):
                metrics[k] = float(info[k])
        tracker.log_metrics(run_id, metrics, step=len(getattr(est, "history_", []) or []))
        extra_tags = {"features_cached": str(bool(info.get("features_cached", False))).lower(),
                      "dataset_cache": data.meta.get("cache", "none")}
        if "tuned" in info:  # false: no validation split (or every tuned value fixed), constructor values used
            extra_tags["tuned"] = str(bool(info["tuned"])).lower()
        if info.get("svm_mode"):  # exact SVC or a kernel approximation, chosen by training-set size
            extra_tags["svm_mode"] = str(info["svm_mode"])
        if info.get("device"):
            extra_tags["train_device"] = info["device"]
        if "stopped_by_budget" in info:  # true: time_budget_s cut training short, not the converged recipe
            extra_tags["budget_stopped"] = str(bool(info["stopped_by_budget"])).lower()
            if info["stopped_by_budget"] and progress:
                progress(f"  time budget reached after {info.get('epochs_run')} epoch(s): tagged budget_stopped=true")
        tracker.set_tags(run_id, extra_tags)
        if info.get("chosen_params"):
            tracker.log_params(run_id, {f"tuned.{k}": v for k, v in info["chosen_params"].items()})
        tracker.log_artifacts(run_id, _artifacts(job, data, y_pred, info))
    return JobResult(job, "FINISHED", run_id, metrics, seconds=time.perf_counter() - t_start)


def _cost_metrics(est: Any, info: dict[str, Any], fit_wall: float, predict_wall: float, n_test: int
                  ) -> dict[str, float]:
    """What fitting and predicting cost from raw images, whatever the feature cache held.

    Feature time is charged at its computed cost (the cache's recorded time when read from it) in place of the
    wall time actually spent reading it, so a job reports the same costs first in a grid or after another job
    that shared its features. The parts are logged too: ``feature_time_s`` (train + val features),
    ``train_time_s`` (tuning and training), ``predict_feature_time_s`` + ``predict_classifier_time_s``.
    """
    out: dict[str, float] = {}
    feat, feat_wall = info.get("feature_time_s"), info.get("feature_wall_s")
    if feat is not None:
        train = max(0.0, fit_wall - float(feat_wall if feat_wall is not None else 0.0))
        out.update(feature_time_s=float(feat), train_time_s=train, fit_time_s=float(feat) + train)
    else:
        out.update(train_time_s=fit_wall, fit_time_s=fit_wall)
    p_feat, p_wall = getattr(est, "last_feature_time_s_", None), getattr(est, "last_feature_wall_s_", None)
    if p_feat is not None and p_wall is not None:
        clf = max(0.0, predict_wall - float(p_wall))
        out.update(predict_feature_time_s=float(p_feat), predict_classifier_time_s=clf)
        predict = float(p_feat) + clf
    else:
        predict = predict_wall
    out.update(predict_time_s=predict, inference_img_per_s=n_test / max(predict, 1e-9))
    return out


def configure_caches() -> None:
    """Point the feature cache at ``<results>/cache/features`` unless the user set one."""
    if not os.environ.get("CVBENCH_FEATURE_CACHE"):
        set_cache_dir(results_dir() / "cache" / "features")


def dataset_cache_dir() -> str:
    return str(results_dir() / "cache" / "datasets")


def _load(dataset: str, split: SplitOptions, image_size: int | None, load_kw: dict[str, Any],
          log: Callable[[str], None]) -> SplitData:
    opts = ", ".join(f"{k}={v}" for k, v in split.as_params().items() if v is not None and v is not False)
    log(f"load  {dataset} ({opts})" + (f" image_size={image_size}" if image_size else ""))
    data = prepare_auto(dataset, split, image_size=image_size, **load_kw)
    if skipped := data.meta.get("skipped"):
        log(f"warning: {dataset}: skipped {len(skipped)} file(s), listed with their reasons in each run's "
            "skipped_files.csv: " + "; ".join(f"{f} ({why})" for f, why in skipped[:3])
            + ("; …" if len(skipped) > 3 else ""))
    return data


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
            loaded[dataset, split, image_size] = data = _load(dataset, split, image_size, load_kw, log)
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
    if executor is not None and not getattr(executor, "in_process", False):
        loaded.clear()
        results += _run_distributed(todo_by_dataset, tracker, executor, load_kw, log)
        return results
    retries = getattr(executor, "retries", 0)
    n_todo, done_s, t_grid = sum(len(t) for _, t in todo_by_dataset.values()), [], time.perf_counter()
    for dataset, (exp_id, todo) in todo_by_dataset.items():
        with tracker.run(exp_id, f"{dataset}/invocation", {"cvbench.kind": "parent", "cvbench.concurrency": "1",
                                                          **environment_tags()}) as parent_id:
            for j in todo:
                key = (dataset, j.split, j.image_size)
                for attempt in range(1, retries + 2):
                    t0 = time.perf_counter()
                    try:
                        if key not in loaded:
                            loaded.clear()  # keep one dataset in memory at a time
                            loaded[key] = _load(dataset, j.split, j.image_size, load_kw, log)
                        elapsed = time.perf_counter() - t_grid
                        eta = (f", ETA {_clock(sum(done_s) / len(done_s) * (n_todo - len(done_s)))}"
                               if done_s else "")
                        log(f"[{len(done_s) + 1}/{n_todo}] run   {j.run_name}"
                            + (f" (attempt {attempt})" if attempt > 1 else "")
                            + f"  (elapsed {_clock(elapsed)}{eta})")
                        res = execute(j, tracker, exp_id, parent_id, data=loaded[key], progress=log)
                        acc = res.metrics.get("test_accuracy", float("nan"))
                        log(f"done  {j.run_name}: test_accuracy={acc:.4f} in {res.seconds:.1f}s")
                    except KeyboardInterrupt:
                        results.append(JobResult(j, "KILLED", seconds=time.perf_counter() - t0))
                        raise
                    except UserError:
                        raise  # a problem with the request itself (bad dataset, bad params): stop and say so
                    except Exception as e:
                        if not keep_going:
                            raise
                        msg = f"{type(e).__name__}: {e}"
                        log(f"FAIL  {j.run_name}: {msg}")
                        if attempt <= retries:
                            continue
                        results.append(JobResult(j, "FAILED", error=msg, seconds=time.perf_counter() - t0))
                        done_s.append(time.perf_counter() - t0)
                        break
                    results.append(res)
                    done_s.append(res.seconds)
                    break
    return results


def _run_distributed(todo_by_dataset: dict[str, tuple[str, list[Job]]], tracker: Tracker, executor: Any,
                     load_kw: dict[str, Any], log: Callable[[str], None]) -> list[JobResult]:
    """Open every dataset's parent run, hand all jobs to ``executor`` at once, close the parents."""
    import contextlib

    from bench.executors import Context, Task
    from pipelines.cache import get_cache_dir

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
                  concurrency=getattr(executor, "concurrency", 1))
    try:
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
