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
