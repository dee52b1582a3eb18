"""``python -m bench reproduce``: run the reference catalogue (:mod:`bench.references`) through the normal runner.

Each catalogue row becomes one job per seed on its family's dataset (``--dataset FAMILY=SOURCE`` replaces it, e.g.
``mnist=folder:../shared/data/mnist-png.zip``). Jobs go through :func:`bench.runner.run_grid`: tracked, skipped
when FINISHED, resumable. Each run that measures a row is tagged ``cvbench.reference.<family>/<id>`` with the
row itself (JSON), so the report's Fidelity section reads published and measured values from the store alone.
Rows that cannot run are listed with the reason, never dropped: dataset unavailable, pipeline not available,
left to the GPU budget.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.references import TAG_PREFIX, Family, Reference, load_catalogue, select

NOT_RUN_BUDGET = "not run: left to --budget gpu"
NOT_RUN_PIPELINE = "not run: pipeline not available"
NOT_RUN_DATASET = "not run: dataset unavailable"
NOT_RUN_INTERRUPTED = "not run: interrupted (rerun to resume)"


@dataclass
class Planned:
    """One catalogue row on one dataset: its jobs, or why it does not run."""

    ref: Reference
    dataset: str
    jobs: list[Any] = field(default_factory=list)  # bench.jobs.Job
    status: str = "planned"  # planned | measured | failed: … | not run: …
    detail: str = ""
    run_ids: list[str] = field(default_factory=list)


def parse_datasets(values: list[str] | None, families: list[Family]) -> dict[str, str | None]:
    """``--dataset`` values → {family: source or None (its default)}; no value selects every family."""
    names = [f.name for f in families]
    if not values:
        return dict.fromkeys(names)
    out: dict[str, str | None] = {}
    for v in values:
        fam, sep, source = v.partition("=")
        if fam not in names:
            hint = (f" (say which family it stands for: --dataset FAMILY={v})" if not sep else "")
            raise ConfigError(f"--dataset {v!r}: {fam!r} is not a reference family; choose from "
                              f"{', '.join(names)}{hint}")
        if sep and not source:
            raise ConfigError(f"--dataset {v!r}: nothing after '='")
        out[fam] = source if sep else None
    return out


def _unavailable(ref: Reference) -> str | None:
    """Why ``ref``'s pipeline cannot be created here, or ``None``."""
    from pipelines.registry import get_spec

    try:
        spec = get_spec(ref.pipeline)
    except KeyError:
        return ref.pending or f"pipeline {ref.pipeline!r} is not registered"
    return spec.unavailable_reason


def plan(families: list[Family], datasets: dict[str, str | None], budget: str = "cpu",
         rows: str | None = None, max_seeds: int | None = None) -> list[Planned]:
    """Every selected row of the selected families, with its jobs (one per seed, at most ``max_seeds``) or the
    reason it cannot run."""
    from bench.jobs import Job

    out = []
    for fam in families:
        if fam.name not in datasets:
            continue
        source = datasets[fam.name] or fam.dataset
        for ref in select(list(fam.rows), rows):
            p = Planned(ref, source)
            why = _unavailable(ref)
            if why:
                p.status, p.detail = NOT_RUN_PIPELINE, why
            elif budget == "cpu" and ref.budget == "gpu":
                p.status = NOT_RUN_BUDGET
            else:
                split = _split(ref)
                p.jobs = [Job(source, ref.pipeline, s, dict(ref.params), split, ref.image_size)
                          for s in ref.seeds[:max_seeds]]
                for j in p.jobs:
                    try:
                        j.identity()  # parameter names, types and ranges checked before anything runs
                    except (TypeError, ValueError) as e:
                        raise ConfigError(f"reference {ref.key}: {e}") from None
            out.append(p)
    return out


def _split(ref: Reference) -> Any:
    from bench.datasets import SplitOptions

    return SplitOptions(**ref.split)


def _run_row(p: Planned, tracker: Any, data_dir: str | None, log: Callable[[str], None]) -> None:
    """Run one row's jobs (those already FINISHED are skipped), set its status and tag its runs with the row."""
    from bench.runner import run_grid

    results = run_grid(p.jobs, tracker=tracker, data_dir=data_dir, log=log)
    failed = [r for r in results if r.status not in ("FINISHED", "SKIPPED")]
    p.status = f"failed: {(failed[0].error or failed[0].status).splitlines()[0]}" if failed else "measured"
    p.run_ids = [r.run_id for r in results if r.run_id and r.status in ("FINISHED", "SKIPPED")]
    for rid in p.run_ids:
        tracker.set_tags(rid, {TAG_PREFIX + p.ref.key: p.ref.to_json()})


def execute_plan(planned: list[Planned], tracker: Any, *, data_dir: str | None = None,
                 log: Callable[[str], None] = print) -> None:
    """Run the planned rows one by one through :func:`bench.runner.run_grid` and tag their runs.

    Rows sharing a job run it once (the others find it FINISHED). A dataset that cannot be loaded marks its rows
    "not run: dataset unavailable" and the others go on; on an interrupt the rows not finished are marked so
    before it propagates (rerun the command to resume).
    """
    from bench.errors import DatasetError

    unavailable: dict[str, str] = {}
    todo = [p for p in planned if p.jobs]
    try:
        for p in todo:
            if p.dataset not in unavailable:
                try:
                    _run_row(p, tracker, data_dir, log)
                    continue
                except DatasetError as e:
                    unavailable[p.dataset] = str(e).splitlines()[0]
                    log(f"{NOT_RUN_DATASET}: {p.dataset}: {unavailable[p.dataset]}")
            p.status, p.detail = NOT_RUN_DATASET, unavailable[p.dataset]
    except KeyboardInterrupt:
        for p in todo:
            if p.status == "planned":
                p.status = NOT_RUN_INTERRUPTED
        raise


def table(planned: list[Planned], tracker: Any) -> Any:
    """The reproduce table: measured rows from the store (:mod:`bench.report.fidelity`), the others with why."""
    import pandas as pd

    from bench.report.fidelity import COLUMNS, fidelity_frame

    datasets = sorted({p.dataset for p in planned if p.run_ids})
    measured = fidelity_frame(tracker, datasets=datasets) if datasets else pd.DataFrame(columns=COLUMNS)
    found = {(r["key"], r["dataset"]): r for r in measured.to_dict("records")}
    rows = []
    for p in planned:
        if p.status == "measured" and (p.ref.key, p.dataset) in found:
            rows.append(found[p.ref.key, p.dataset])
            continue
        rows.append({"key": p.ref.key, "dataset": p.dataset, "cite": p.ref.cite, "protocol": p.ref.protocol_text(),
                     "published": p.ref.published_text(), "measured": "—", "delta": "—",
                     "tolerance": p.ref.tolerance_text(), "verdict": p.status, "reason": p.detail or p.ref.reason})
    return pd.DataFrame(rows)


def format_table(df: Any) -> str:
    """The terminal table: row, source, protocol, published, measured, Δ, verdict (then the findings)."""
    cols = {"key": "row", "cite": "source", "protocol": "protocol", "published": "published %",
            "measured": "measured %", "delta": "Δ", "tolerance": "tol", "verdict": "verdict"}
    shown = df.reindex(columns=list(cols)).fillna("").rename(columns=cols)
    lines = [shown.to_string(index=False)]
    notes = df[df["verdict"].isin(["below", "above"]) | df["verdict"].str.startswith(("failed", "not run: pipe",
                                                                                     "not run: data"))]
    if len(notes):
        lines.append("\nfindings and gaps:")
        lines += [f"  {r['key']} ({r['verdict']}): {r['reason']}" for _, r in notes.iterrows()]
    return "\n".join(lines)


def add_reproduce_parser(sub: Any) -> None:
    rp = sub.add_parser("reproduce", help="published reference results, measured side by side with a verdict")
    rp.add_argument("--dataset", "-d", action="append", metavar="FAMILY[=SOURCE]",
                    help="only this reference family (mnist, cifar10, fashion-mnist), optionally measured on "
                         "another source, e.g. mnist=folder:../shared/data/mnist-png.zip (repeatable)")
    rp.add_argument("--budget", choices=["cpu", "gpu"], default="cpu",
                    help="cpu: rows a 2-core CPU finishes in minutes to an hour each; gpu: every row")
    rp.add_argument("--rows", metavar="PATTERN", help="only rows whose family/id or id matches, e.g. 'knn*' or 'mnist/*,nn-l2'")
    rp.add_argument("--max-seeds", type=int, metavar="N",
                    help="run at most the first N seeds of each row (default: all the row lists)")
    rp.add_argument("--catalogue", help="a reference folder or YAML file (default: bench/references/)")
    rp.add_argument("--data-dir", help="where downloaded datasets live (default: CVBENCH_DATA or ~/.cache)")
    rp.add_argument("--dry-run", action="store_true", help="list the rows and their jobs, run nothing")


def run_reproduce(a: argparse.Namespace) -> int:
    from bench.tracking import Tracker

    families = load_catalogue(a.catalogue)
    if a.max_seeds is not None and a.max_seeds < 1:
        raise ConfigError(f"--max-seeds {a.max_seeds}: must be at least 1")
    planned = plan(families, parse_datasets(a.dataset, families), a.budget, a.rows, a.max_seeds)
    if not planned:
        raise ConfigError(f"--rows {a.rows!r}: no reference row matches")
    n_jobs = sum(len(p.jobs) for p in planned)
    if a.dry_run:
        for p in planned:
            print(f"{p.ref.key:28s} {p.dataset:40s} {p.ref.pipeline:26s} "
                  + (f"{len(p.jobs)} job(s)" if p.jobs else p.status))
        return 0
    tracker = Tracker()
    t0 = time.perf_counter()
    print(f"cvbench reproduce: {len(planned)} row(s), {n_jobs} job(s), budget {a.budget} → {tracker.uri}", flush=True)
    try:
        execute_plan(planned, tracker, data_dir=a.data_dir, log=lambda m: print(m, flush=True))
    finally:  # interrupted too: what was measured so far, and what was not
        print(f"\n{len(planned)} row(s) in {time.perf_counter() - t0:.1f}s; datasets: "
              + ", ".join(f"{p.ref.family} = {p.dataset}" for p in {p.ref.family: p for p in planned}.values())
              + "\n")
        print(format_table(table(planned, tracker)), flush=True)
    return 1 if any(p.status.startswith("failed") for p in planned) else 0
