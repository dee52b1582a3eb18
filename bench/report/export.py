"""``bench export``: the runs the report counts, one row each, with their split protocol and parameters.

Which runs count is the report's own rule (:func:`bench.report.analysis.load_runs`): the latest FINISHED run
per (dataset, split protocol, pipeline, configuration, hardware, seed) of the current code version, so a
``--max-train 5`` run never hides the full-data row of the same pipeline.
"""

from __future__ import annotations

import json

import pandas as pd

from bench.report.analysis import load_runs
from bench.report.frame import EXTRA_COLUMNS, ID_COLUMNS, METRIC_COLUMNS, tidy_frame  # noqa: F401
from bench.tracking import Tracker

FORMATS = ("csv", "json", "md", "latex")
INT_COLUMNS = ("seed", "n_train", "n_val", "n_test", "n_params", "epochs_run", "concurrency")


def format_export(df: pd.DataFrame, fmt: str) -> str:
    """``df`` as csv, json (records), md (a pipe table) or latex; counts stay integers and times are ISO 8601
    (UTC) in every format."""
    out = df.copy()
    for c in out:
        v = out[c]
        whole = c.startswith(("param.", "split.")) and v.dtype.kind == "f" and bool((v.dropna() % 1 == 0).all())
        if c in INT_COLUMNS or whole:  # a count, or a parameter column whose gaps made pandas use floats
            out[c] = pd.to_numeric(v, errors="coerce").round().astype("Int64")
    if "start_time" in out:
        out["start_time"] = [None if pd.isna(t) else pd.Timestamp(t).tz_convert("UTC").isoformat(timespec="seconds")
                             if pd.Timestamp(t).tzinfo else pd.Timestamp(t).isoformat(timespec="seconds")
                             for t in out["start_time"]]
    if fmt == "csv":
        return out.to_csv(index=False)
    if fmt == "json":
        return out.to_json(orient="records", indent=2) + "\n"
    if fmt == "md":
        return out.to_markdown(index=False) + "\n"
    if fmt == "latex":
        styler = out.style.hide(axis="index").format(na_rep="", precision=4, escape="latex")
        return styler.format_index(escape="latex", axis=1).to_latex(hrules=True)
    raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")


def latest_runs(tracker: Tracker | None = None, datasets: list[str] | None = None) -> pd.DataFrame:
    """The runs the report uses, with tidy ids, metrics, ``split.*`` and ``param.*`` columns."""
    runs = load_runs(tracker or Tracker(), datasets).used
    cols = ID_COLUMNS + METRIC_COLUMNS + EXTRA_COLUMNS
    if runs.empty:
        return pd.DataFrame(columns=["section", "label", *cols])
    split = pd.DataFrame([json.loads(p) for p in runs["protocol"]], index=runs.index).add_prefix("split.")
    params = pd.DataFrame([json.loads(c) for c in runs["config"]], index=runs.index).add_prefix("param.")
    for df in (split, params):  # lists and dicts as JSON text, so every format writes them the same way
        for c in df:
            df[c] = [json.dumps(v) if isinstance(v, list | dict) else v for v in df[c]]
    out = pd.concat([runs[["section", "label", *cols]], split, params], axis=1)
    return out.sort_values(["dataset", "section", "test_accuracy"], ascending=[True, True, False]
                           ).reset_index(drop=True)
