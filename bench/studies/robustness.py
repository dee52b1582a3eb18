"""Robustness study: trained pipelines (no retraining) evaluated on corrupted copies of the test set.

Each pipeline is fitted once through the split contract (:mod:`.fitting`), then predicts the clean test set and
every corruption × severity (:mod:`.corruptions`). One tracked run per (dataset, pipeline, seed) — tags
``cvbench.kind=study``, ``study=robustness`` — records ``clean_accuracy``, ``rob.<corruption>.s<k>``,
``rob.<corruption>.mean``, ``mean_corruption_accuracy`` (mCA, mean over every corruption and severity) and
``relative_drop`` (``1 - mCA / clean``), plus ``robustness.csv`` and every prediction as artifacts.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.studies.corruptions import CORRUPTIONS, SEVERITIES, corrupt, nuisance_family

STUDY = "robustness"
STUDY_VERSION = "1"  # bump when corruptions change


def study_identity(job_identity: str, corruptions: Sequence[str], severities: Sequence[int], seed: int) -> str:
    blob = {"job": job_identity, "corruptions": list(corruptions), "severities": list(severities),
            "corruption_seed": seed, "v": STUDY_VERSION}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:20]


def summarize(acc: pd.DataFrame, clean: float) -> dict[str, float]:
    """Metrics from a long frame (corruption, severity, accuracy) and the clean accuracy."""
    m: dict[str, float] = {"clean_accuracy": clean}
    for r in acc.itertuples():
        m[f"rob.{r.corruption}.s{r.severity}"] = float(r.accuracy)
    for c, g in acc.groupby("corruption"):
        m[f"rob.{c}.mean"] = float(g["accuracy"].mean())
    mca = float(acc["accuracy"].mean())
    m["mean_corruption_accuracy"] = mca
    m["relative_drop"] = 1.0 - mca / clean if clean > 0 else float("nan")
    return m


def run_robustness(dataset: str, pipelines: Sequence[str], *, seed: int = 0, split: Any = None,
                   image_size: int | None = None, params: dict[str, dict[str, Any]] | None = None,
                   corruptions: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = SEVERITIES,
                   tracker: Any = None, force: bool = False, data_dir: str | None = None,
                   out_dir: str | Path | None = None, log: Callable[[str], None] = print,
                   dry_run: bool = False) -> pd.DataFrame:
    """Run the study; returns the long frame (pipeline, family, corruption, nuisance, severity, accuracy).

    ``dry_run`` only lists the pipelines: which would be evaluated (``plan``, saying whether the fitted model
    is cached) and which are done (``skip``), creating no experiment and no run; it returns a frame
    (pipeline, status ``PLANNED`` | ``SKIPPED``, run_id, model_cached)."""
    from bench.datasets import SplitOptions
    from bench.jobs import Job, experiment_name
    from bench.measure import environment_tags
    from bench.studies.fitting import fit_or_load, load_split
    from bench.tracking import Tracker
    from pipelines import cache as feature_cache
    from pipelines.registry import get_spec

    tracker = tracker or Tracker()
    split = split or SplitOptions()
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        from bench.errors import ConfigError

        raise ConfigError(f"unknown corruption(s) {unknown}; choose from {', '.join(CORRUPTIONS)}")
    jobs = [Job(dataset, p, seed, dict((params or {}).get(p, {})), split, image_size) for p in pipelines]
    log(f"load  {dataset}")
    data = load_split(jobs[0], data_dir) if jobs else None
    jobs = [j.for_data(data) for j in jobs]  # the identities cover the images (a changed folder refits)
    if dry_run:
        return _plan(jobs, data, tracker, experiment_name(dataset), corruptions, severities, seed, force, log)
    exp_id = tracker.experiment_id(experiment_name(dataset))
    corrupted: dict[tuple[str, int], np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    for job in jobs:
        spec = get_spec(job.pipeline)
        sid = study_identity(job.identity(), corruptions, severities, seed)
        done = [] if force else tracker.finished_runs(exp_id, sid)
        if done:
            log(f"skip  {job.run_name} robustness (FINISHED run {done[0][:8]} exists; --force to redo)")
            prev = _load_csv(tracker, done[0], "robustness.csv")
            if prev is not None:
                rows.extend(prev.assign(pipeline=job.pipeline, family=spec.family).to_dict("records"))
                continue
        tags = {"cvbench.kind": "study", "study": STUDY, "cvbench.job_id": sid, "cvbench.fit_job_id": job.identity(),
                "dataset": dataset, "pipeline": job.pipeline, "family": spec.family, "seed": str(seed),
                "features": spec.features, "classifier": spec.classifier, **environment_tags()}
        with tracker.run(exp_id, f"{job.run_name}/robustness", tags) as run_id:
            est, fit = fit_or_load(job, data, log=log)
            tracker.log_params(run_id, {"dataset": dataset, "pipeline": job.pipeline, "seed": seed,
                                        **{f"pipeline.{k}": v for k, v in job.resolved_params().items()},
                                        **{f"split.{k}": v for k, v in split.as_params().items()},
                                        "split_hash": data.split_hash, "n_train": len(data.y_train),
                                        "n_test": len(data.y_test), "corruptions": ",".join(corruptions),
                                        "severities": ",".join(map(str, severities)), "corruption_seed": seed,
                                        "model_cached": fit["cached"]})
            t0 = time.perf_counter()
            preds = {"clean": np.asarray(est.predict(data.X_test))}
            clean = float(np.mean(preds["clean"] == data.y_test))
            acc_rows = []
            for c in corruptions:
                for s in severities:
                    if (c, s) not in corrupted:
                        corrupted[(c, s)] = corrupt(data.X_test, c, s, seed)
                    with feature_cache.disabled():  # corrupted copies are used once: caching only fills the disk
                        p = np.asarray(est.predict(corrupted[(c, s)]))
                    preds[f"{c}@{s}"] = p
                    acc_rows.append({"corruption": c, "nuisance": nuisance_family(c), "severity": s,
                                     "accuracy": float(np.mean(p == data.y_test))})
            acc = pd.DataFrame(acc_rows)
            metrics = summarize(acc, clean)
            metrics["fit_time_s"] = fit["fit_time_s"]
            metrics["eval_time_s"] = time.perf_counter() - t0
            tracker.log_metrics(run_id, metrics)
            pred_df = pd.DataFrame({"test_index": data.split.test, "y_true": data.y_test, **preds})
            tracker.log_artifacts(run_id, {
                "robustness.csv": acc.to_csv(index=False),
                "predictions.csv": pred_df[["test_index", "y_true"]].assign(y_pred=preds["clean"]).to_csv(index=False),
                "predictions_corrupted.csv": pred_df.to_csv(index=False),
            })
            log(f"done  {job.run_name}: clean {clean:.4f}, mCA {metrics['mean_corruption_accuracy']:.4f}, "
                f"relative drop {metrics['relative_drop']:.3f}")
        rows.extend(acc.assign(pipeline=job.pipeline, family=spec.family).to_dict("records"))
        rows.append({"pipeline": job.pipeline, "family": spec.family, "corruption": "clean",
                     "nuisance": "none", "severity": 0, "accuracy": clean})
    df = pd.DataFrame(rows)
    if out_dir is not None and not df.empty:
        from bench.studies.results import write_robustness_outputs

        write_robustness_outputs(df, Path(out_dir), dataset)
    return df


def _plan(jobs: Sequence[Any], data: Any, tracker: Any, experiment: str, corruptions: Sequence[str],
          severities: Sequence[int], seed: int, force: bool, log: Callable[[str], None]) -> pd.DataFrame:
    """What ``run_robustness`` would do, from the store alone: no experiment or run is created."""
    from bench.studies.fitting import model_path

    exp_id = tracker.existing_experiment_id(experiment)
    rows = []
    for job in jobs:
        sid = study_identity(job.identity(), corruptions, severities, seed)
        done = [] if force or exp_id is None else tracker.finished_runs(exp_id, sid)
        cached = model_path(job, data).exists()
        if done:
            log(f"skip  {job.run_name}/robustness: FINISHED run {done[0][:8]} exists (--force to redo)")
        else:
            log(f"plan  {job.run_name}/robustness: {'cached model' if cached else 'fit'}, then "
                f"{len(corruptions)} corruption(s) × {len(severities)} severit{'y' if len(severities) == 1 else 'ies'}")
        rows.append({"pipeline": job.pipeline, "status": "SKIPPED" if done else "PLANNED",
                     "run_id": done[0] if done else None, "model_cached": cached})
    return pd.DataFrame(rows, columns=["pipeline", "status", "run_id", "model_cached"])


def _load_csv(tracker: Any, run_id: str, name: str) -> pd.DataFrame | None:
    try:
        df = pd.read_csv(io.BytesIO(tracker.artifact_bytes(run_id, name)))
    except Exception:
        return None
    # The clean accuracy lives in a metric; re-add it as a row so the frame is complete.
    m = tracker.run_data(run_id)["metrics"]
    if "clean_accuracy" in m:
        df = pd.concat([df, pd.DataFrame([{"corruption": "clean", "nuisance": "none", "severity": 0,
                                           "accuracy": m["clean_accuracy"]}])], ignore_index=True)
    return df
