"""One job, measured and recorded: :func:`measure` fits and predicts a built estimator on loaded data and returns
what the measurement contract defines (accuracy, costs, memory); :func:`execute` wraps it in one MLflow run
(parameters before, metrics, tags and artifacts after). Every executor calls :func:`execute`."""

from __future__ import annotations

import inspect
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import CODE_VERSION
from bench.datasets import SplitData
from bench.datasets.stream import chunk_estimator, prepare_auto
from bench.jobs import Job, JobResult
from bench.measure import PeakRSS, Timer, environment_tags, latency_ms, model_size_mb, release_memory
from bench.tracking import Tracker, results_dir
from cvbench_util.timing import passes_again
from pipelines import cache as feature_cache
from pipelines.cache import set_cache_dir
from pipelines.registry import get_spec


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


def _artifacts(job: Job, data: SplitData, y_pred: np.ndarray, info: dict[str, Any]) -> dict[str, bytes | str]:
    import pandas as pd
    from sklearn.metrics import classification_report, confusion_matrix

    from bench.report.plots import confusion_png

    labels = list(range(len(data.class_names)))
    cm = confusion_matrix(data.y_test, y_pred, labels=labels)
    cm_df = pd.DataFrame(cm, index=data.class_names, columns=data.class_names)
    rep = classification_report(data.y_test, y_pred, labels=labels, target_names=data.class_names,
                                output_dict=True, zero_division=0)
    files: dict[str, bytes | str] = {
        "confusion_matrix.csv": cm_df.to_csv(),
        "confusion_matrix.png": confusion_png(cm, data.class_names, job.run_name),
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


@dataclass
class Measurement:
    """What :func:`measure` found: the metrics of the measurement contract, the fitted estimator's report
    (``fit_info_``), the test predictions and the estimator itself."""

    metrics: dict[str, float]
    info: dict[str, Any]
    y_pred: np.ndarray
    estimator: Any


def measure(est: Any, data: SplitData, pipeline: str, params: dict[str, Any],
            on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Measurement:
    """Fit ``est`` on the training split (validation passed when it takes one), predict the test split, and
    measure both from outside: time and the block's own peak memory (features read from the feature cache are
    charged what their computation cost), latency, model size, accuracy. Nothing is recorded here."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    # the job's own footprint (see PeakRSS): what earlier jobs freed is handed back first, and features read
    # from the cache are charged the peak their computation recorded, as their time is (_cost_metrics)
    _warm_up(pipeline, params, data)
    release_memory()
    with PeakRSS() as mem_fit, feature_cache.charging() as charged_fit, Timer() as t_fit:
        est.fit(data.X_train, data.y_train, **_fit_kwargs(est, data, on_epoch or (lambda e, r: None)))
    info = dict(getattr(est, "fit_info_", {}) or {})
    release_memory()
    with PeakRSS() as mem_pred, feature_cache.charging() as charged_pred, Timer() as t_pred:
        y_pred = np.asarray(est.predict(data.X_test))
    costs = _cost_metrics(est, info, t_fit.seconds, t_pred.seconds, len(y_pred))
    # a prediction under a second is timed again, as timeit does: the garbage collector paused, at least 4 more
    # passes and 0.2 s of them (a 5-ms prediction: 40), best of all; one pass at that scale is mostly noise
    # (why: see docs/measurements.md#execute)
    for dt in passes_again(lambda: est.predict(data.X_test), t_pred.seconds):
        again = _cost_metrics(est, info, t_fit.seconds, dt, len(y_pred))
        if again["predict_time_s"] < costs["predict_time_s"]:
            costs.update({k: v for k, v in again.items() if k.startswith(("predict", "inference"))})
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
        **costs,
        "fit_peak_rss_mb": fit_peak, "predict_peak_rss_mb": pred_peak, "peak_rss_mb": max(fit_peak, pred_peak),
        **alloc,
        "model_size_mb": model_size_mb(est),
    }
    # one image through the ready model: no feature cache, no copy or compilation per call
    with feature_cache.disabled():
        metrics["latency_ms_per_img"] = latency_ms(est.predict, data.X_test)
    if len(data.y_val):
        metrics["val_accuracy"] = float(np.mean(np.asarray(est.predict(data.X_val)) == data.y_val))
    for k in ("n_params", "n_features", "n_empty_images", "epochs_run", "best_epoch", "cache_time_s"):
        if isinstance(info.get(k), int | float | np.integer | np.floating):
            metrics[k] = float(info[k])
    return Measurement(metrics, info, y_pred, est)


_JOBS_IN_PROCESS = 0  # jobs this process has started: what ran before a job can move its costs (run --isolate)


def execute(job: Job, tracker: Tracker, experiment_id: str, parent_id: str | None = None,
            data: SplitData | None = None, load_kw: dict[str, Any] | None = None,
            progress: Callable[[str], None] | None = None, concurrency: int = 1) -> JobResult:
    """Run one job as one MLflow run: parameters logged, :func:`measure`, then metrics, tags and artifacts;
    the run ends FINISHED only if every step succeeded.

    The data is loaded before the run is created, so a load that fails leaves no run behind. ``concurrency``
    is how many jobs may share the hardware meanwhile (1: exclusive); it is recorded, and reports never mix
    contended timings with exclusive ones. ``cvbench.jobs_before`` records how many jobs this process ran
    before this one (0 in a fresh process, as with ``run --isolate``).
    """
    from pipelines.registry import create

    global _JOBS_IN_PROCESS
    jobs_before, _JOBS_IN_PROCESS = _JOBS_IN_PROCESS, _JOBS_IN_PROCESS + 1
    t_start = time.perf_counter()
    with Timer() as t_load:
        if data is None:
            data = prepare_auto(job.dataset, job.split, image_size=job.image_size, **(load_kw or {}))
    job = job.for_data(data)
    spec = get_spec(job.pipeline)
    params = job.resolved_params()
    tags = {"cvbench.kind": "job", "cvbench.job_id": job.identity(), "cvbench.code_version": CODE_VERSION,
            "cvbench.concurrency": str(concurrency), "cvbench.jobs_before": str(jobs_before),
            "dataset": job.dataset, "pipeline": job.pipeline,
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
        m = measure(est, data, job.pipeline, params, on_epoch)
        info, y_pred = m.info, m.y_pred
        # the dataset's own load time (decode or cache read), even when the grid loaded it once for many jobs
        metrics = {**m.metrics, "load_time_s": data.meta.get("load_time_s", t_load.seconds)}
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


def load_data(dataset: str, split: Any, image_size: int | None, load_kw: dict[str, Any],
              log: Callable[[str], None]) -> SplitData:
    """Load (decode or read from the decoded cache) one dataset under one split protocol, saying so, and warn
    about the files it had to skip."""
    opts = ", ".join(f"{k}={v}" for k, v in split.as_params().items() if v is not None and v is not False)
    log(f"load  {dataset} ({opts})" + (f" image_size={image_size}" if image_size else ""))
    data = prepare_auto(dataset, split, image_size=image_size, **load_kw)
    if skipped := data.meta.get("skipped"):
        log(f"warning: {dataset}: skipped {len(skipped)} file(s), listed with their reasons in each run's "
            "skipped_files.csv: " + "; ".join(f"{f} ({why})" for f, why in skipped[:3])
            + ("; …" if len(skipped) > 3 else ""))
    return data
