"""The comparison table printed after a run and by ``make report``: one row per (dataset, pipeline)."""

from __future__ import annotations

import pandas as pd

from bench.report.export import latest_runs
from bench.tracking import Tracker


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per (dataset, pipeline), sorted by test accuracy."""
    if df.empty:
        return df
    g = df.groupby(["dataset", "pipeline", "family"], as_index=False).agg(
        seeds=("seed", "count"), test_accuracy=("test_accuracy", "mean"), fit_time_s=("fit_time_s", "mean"),
        inference_img_per_s=("inference_img_per_s", "mean"))
    return g.sort_values(["dataset", "test_accuracy"], ascending=[True, False]).reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no finished runs)"
    t = table.copy()
    t["test_accuracy"] = (100 * t["test_accuracy"]).map("{:.2f}%".format)
    t["fit_time_s"] = t["fit_time_s"].map("{:.2f}".format)
    t["inference_img_per_s"] = t["inference_img_per_s"].map("{:,.0f}".format)
    return t.to_string(index=False)


def print_table(tracker: Tracker | None = None, datasets: list[str] | None = None,
                pipelines: list[str] | None = None) -> str:
    df = latest_runs(tracker, datasets)
    if pipelines:
        df = df[df["pipeline"].isin(pipelines)]
    return format_table(comparison_table(df))
