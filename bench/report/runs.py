"""The store from the terminal: ``runs`` lists tracked jobs, ``compare`` puts two of them side by side (like
MLflow's compare page with "show diff only")."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pandas as pd

from bench.errors import ConfigError
from bench.tracking import Tracker

RUN_COLUMNS = {"tags.mlflow.runName": "run", "status": "status", "metrics.test_accuracy": "test_acc",
               "metrics.fit_time_s": "fit_s", "metrics.inference_img_per_s": "img_per_s",
               "start_time": "start", "run_id": "run_id"}
STATUSES = ("FINISHED", "FAILED", "RUNNING", "KILLED", "SCHEDULED")


def list_runs(tracker: Tracker, datasets: list[str] | None = None, pattern: str = "*",
              status: str | None = None) -> pd.DataFrame:
    """Job runs in the store, newest first: run name, status, test accuracy, fit time, throughput, start."""
    if status is not None and status.upper() not in STATUSES:
        raise ConfigError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    df = tracker.runs_frame(datasets, finished_only=False)
    if df.empty:
        return pd.DataFrame(columns=list(RUN_COLUMNS.values()))
    for col in RUN_COLUMNS:
        if col not in df:
            df[col] = None
    keep = df["tags.pipeline"].fillna("").map(lambda p: fnmatchcase(p, pattern)) if "tags.pipeline" in df else True
    df = df[keep]
    if status is not None:
        df = df[df["status"] == status.upper()]
    out = df[list(RUN_COLUMNS)].rename(columns=RUN_COLUMNS).sort_values("start", ascending=False)
    out["start"] = pd.to_datetime(out["start"], utc=True).map(lambda t: t.isoformat(timespec="seconds"))
    return out.reset_index(drop=True)


def format_runs(df: pd.DataFrame) -> str:
    if df.empty:
        return "no runs match (see `python -m bench runs --help` for the filters)"
    shown = df.drop(columns=["run_id"]).assign(run_id=df["run_id"].str[:8])
    fmt = {"test_acc": "{:.4f}".format, "fit_s": "{:.3g}".format, "img_per_s": "{:,.0f}".format}
    for col, f in fmt.items():
        shown[col] = shown[col].map(lambda v, f=f: "" if pd.isna(v) else f(float(v)))
    return shown.to_string(index=False)


def resolve_run(tracker: Tracker, ref: str) -> str:
    """A run id (or an unambiguous prefix of 8+ characters), or ``dataset/pipeline/seed``: its latest run."""
    df = tracker.runs_frame(finished_only=False)
    if df.empty:
        raise ConfigError(f"{ref!r}: the store {tracker.uri} has no runs")
    hits = df[df["run_id"] == ref]
    if hits.empty and len(ref) >= 8 and "/" not in ref:
        hits = df[df["run_id"].str.startswith(ref)]
        if len(hits) > 1:
            raise ConfigError(f"{ref!r}: the prefix matches {len(hits)} runs; give more characters")
    if hits.empty:
        hits = df[df["tags.mlflow.runName"] == ref].sort_values("start_time", ascending=False)
    if hits.empty:
        raise ConfigError(f"{ref!r}: no run with that id or name (names are dataset/pipeline/seed; "
                          "`python -m bench runs` lists them)")
    return str(hits.iloc[0]["run_id"])


def compare_runs(tracker: Tracker, a: str, b: str, all_rows: bool = False) -> pd.DataFrame:
    """Params, metrics and cvbench tags of two runs side by side; only the rows that differ unless ``all_rows``."""
    ids = [resolve_run(tracker, a), resolve_run(tracker, b)]
    data = [tracker.run_data(i) for i in ids]
    rows: list[dict[str, Any]] = []
    for kind in ("params", "metrics", "tags"):
        keys = sorted(set(data[0][kind]) | set(data[1][kind]))
        if kind == "tags":  # MLflow's own bookkeeping and the run ids differ by construction
            keys = [k for k in keys if not k.startswith("mlflow.")]
        for k in keys:
            x, y = data[0][kind].get(k), data[1][kind].get(k)
            if all_rows or x != y:
                rows.append({"kind": kind, "key": k, ids[0][:8]: x, ids[1][:8]: y})
    return pd.DataFrame(rows, columns=["kind", "key", ids[0][:8], ids[1][:8]])


def format_compare(df: pd.DataFrame) -> str:
    if df.empty:
        return "the two runs have the same params, metrics and tags"
    shown = df.copy()
    for col in df.columns[2:]:
        shown[col] = shown[col].map(lambda v: "—" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)))
    return shown.to_string(index=False)
