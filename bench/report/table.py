"""The comparison table printed after a run: one row per report row (section, pipeline configuration, hardware)."""

from __future__ import annotations

import pandas as pd

from bench.report.export import latest_runs
from bench.tracking import Tracker


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per report row (a section is a dataset under one split protocol; a label names the
    pipeline and its differing parameters), sorted by test accuracy."""
    if df.empty:
        return df
    keys = ["section", "label", "family"] + (["hardware"] if df["hardware"].nunique() > 1 else [])
    g = df.groupby(keys, as_index=False, dropna=False).agg(
        seeds=("seed", "count"), test_accuracy=("test_accuracy", "mean"), fit_time_s=("fit_time_s", "mean"),
        inference_img_per_s=("inference_img_per_s", "mean"))
    g = g.rename(columns={"section": "dataset", "label": "pipeline"})
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
    if pipelines and not df.empty:
        df = df[df["pipeline"].isin(pipelines)]
    return format_table(comparison_table(df))
