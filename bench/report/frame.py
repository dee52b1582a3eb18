"""Tracked runs as a tidy frame: one row per run, ids, metrics and the extras every reader needs."""

from __future__ import annotations

import pandas as pd

ID_COLUMNS = ["dataset", "pipeline", "family", "features", "classifier", "seed"]
METRIC_COLUMNS = ["test_accuracy", "test_balanced_accuracy", "test_macro_f1", "val_accuracy", "feature_time_s",
                  "train_time_s", "fit_time_s", "predict_feature_time_s", "predict_classifier_time_s",
                  "predict_time_s", "inference_img_per_s", "latency_ms_per_img", "peak_rss_mb", "fit_peak_rss_mb",
                  "predict_peak_rss_mb", "peak_alloc_mb", "fit_peak_alloc_mb", "predict_peak_alloc_mb", "model_size_mb", "n_params", "epochs_run"]
EXTRA_COLUMNS = ["n_train", "n_val", "n_test", "n_channels", "split_hash", "features_cached", "tuned", "budget_stopped",
                 "concurrency", "jobs_before", "hardware", "git_commit", "code_version", "run_id", "start_time"]


def tidy_frame(df: pd.DataFrame) -> pd.DataFrame:
    """MLflow's ``search_runs`` frame → tidy columns (ids, metrics, extras, plus ``status`` and ``run_name``)."""
    if df.empty:
        return pd.DataFrame(columns=ID_COLUMNS + METRIC_COLUMNS + EXTRA_COLUMNS + ["status", "run_name"])

    def col(name: str) -> pd.Series:
        return df[name] if name in df else pd.Series([None] * len(df), index=df.index, dtype=object)

    out = pd.DataFrame({
        "dataset": col("tags.dataset"), "pipeline": col("tags.pipeline"), "family": col("tags.family"),
        "features": col("tags.features"), "classifier": col("tags.classifier"),
        "seed": pd.to_numeric(col("tags.seed"), errors="coerce").astype("Int64"),
    })
    for m in METRIC_COLUMNS:
        out[m] = pd.to_numeric(col(f"metrics.{m}"), errors="coerce")
    for p in ("n_train", "n_val", "n_test", "n_channels"):
        out[p] = pd.to_numeric(col(f"params.{p}"), errors="coerce").astype("Int64")
    out["split_hash"] = col("params.split_hash")
    out["features_cached"] = col("tags.features_cached")
    out["tuned"] = col("tags.tuned")
    out["budget_stopped"] = col("tags.budget_stopped")  # "true": time_budget_s cut training short
    # Jobs that shared the hardware (--jobs N, Ray) were timed under contention: their hardware key says so,
    # so no report row, average or supersession ever mixes them with exclusive runs.
    conc = pd.to_numeric(col("tags.cvbench.concurrency"), errors="coerce").fillna(1).astype(int)
    out["concurrency"] = conc
    # jobs the run's process had run before it (0: measured first in a fresh process; missing: not recorded)
    out["jobs_before"] = pd.to_numeric(col("tags.cvbench.jobs_before"), errors="coerce")
    out["hardware"] = [h if h is None or c <= 1 else f"{h} | contended: {c} jobs at once"
                       for h, c in zip(col("tags.env.hardware"), conc)]
    out["git_commit"] = col("tags.env.git_commit")
    out["code_version"] = col("tags.cvbench.code_version")
    out["run_id"] = df["run_id"]
    out["start_time"] = df["start_time"]
    out["status"] = col("status")
    out["run_name"] = col("tags.mlflow.runName")
    return out
