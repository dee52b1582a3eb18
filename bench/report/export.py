"""Flatten tracked runs into one row per (dataset, pipeline, seed): the latest FINISHED run of each."""

from __future__ import annotations

import pandas as pd

from bench.tracking import Tracker

ID_COLUMNS = ["dataset", "pipeline", "family", "features", "classifier", "seed"]
METRIC_COLUMNS = ["test_accuracy", "test_macro_f1", "val_accuracy", "feature_time_s", "fit_time_s",
                  "predict_time_s", "inference_img_per_s", "latency_ms_per_img", "peak_rss_mb", "model_size_mb",
                  "n_params"]
EXTRA_COLUMNS = ["n_train", "n_val", "n_test", "split_hash", "features_cached", "hardware", "git_commit",
                 "code_version", "run_id", "start_time"]


def latest_runs(tracker: Tracker | None = None, datasets: list[str] | None = None) -> pd.DataFrame:
    """The latest FINISHED job run per (dataset, pipeline, seed), with tidy column names."""
    tracker = tracker or Tracker()
    df = tracker.runs_frame(experiment_names=datasets)
    if df.empty:
        return pd.DataFrame(columns=ID_COLUMNS + METRIC_COLUMNS + EXTRA_COLUMNS)
    out = pd.DataFrame({
        "dataset": df["tags.dataset"], "pipeline": df["tags.pipeline"], "family": df["tags.family"],
        "features": df["tags.features"], "classifier": df["tags.classifier"],
        "seed": pd.to_numeric(df["tags.seed"], errors="coerce").astype("Int64"),
    })
    for m in METRIC_COLUMNS:
        out[m] = df.get(f"metrics.{m}")
    for p in ("n_train", "n_val", "n_test"):
        out[p] = pd.to_numeric(df.get(f"params.{p}"), errors="coerce").astype("Int64")
    out["split_hash"] = df.get("params.split_hash")
    out["features_cached"] = df.get("tags.features_cached")
    out["hardware"] = df.get("tags.env.hardware")
    out["git_commit"] = df.get("tags.env.git_commit")
    out["code_version"] = df.get("tags.cvbench.code_version")
    out["run_id"] = df["run_id"]
    out["start_time"] = df["start_time"]
    out = out.sort_values("start_time").groupby(["dataset", "pipeline", "seed"], as_index=False).tail(1)
    return out.sort_values(["dataset", "test_accuracy"], ascending=[True, False]).reset_index(drop=True)
