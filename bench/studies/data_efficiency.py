"""Data-efficiency study: test accuracy vs training images per class, and where deep overtakes classical.

Training subsets come from the split contract (``SplitOptions(train_per_class=N)``): for one ``split_seed``
the first N images per class in a seeded order, so smaller subsets are contained in larger ones and every
pipeline gets exactly the same images. Small sizes are repeated over several split seeds (repeat ``r`` uses
``split_seed = base + r`` and run seed ``r``), which varies which images are drawn; the validation split is
re-drawn with it and is NOT shrunk (hyper-parameters and early stopping see the usual validation set).
Datasets with their own test split keep the same test set for every repeat.

Every cell is a normal runner job (tracked, resumable, skipped when already FINISHED); runs executed for the
study get the tag ``study=data-efficiency``. A summary run (``cvbench.kind=study``) stores the curve, the plot
and the crossover.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

STUDY = "data-efficiency"
DEEP_FAMILIES = ("scratch", "transfer")
DEFAULT_SIZES = "5,10,20,50,100,200,all"


def parse_sizes(text: str) -> list[int | None]:
    """``"5,10,all"`` → ``[5, 10, None]`` (None = the whole training set), sorted, ``all`` last."""
    out: list[int | None] = []
    for tok in str(text).split(","):
        tok = tok.strip().lower()
        if not tok:
            continue
        if tok == "all":
            out.append(None)
        else:
            n = int(tok)
            if n < 1:
                raise ValueError(f"per-class sizes must be >= 1, got {n}")
            out.append(n)
    nums = sorted({n for n in out if n is not None})
    return nums + ([None] if None in out else [])


def find_crossover(sizes: Sequence[float], classical: Sequence[float], deep: Sequence[float]) -> dict[str, Any]:
    """Where the deep curve overtakes the classical one for good.

    The crossover is the smallest size from which deep is strictly ahead at every larger size; its estimate
    interpolates the accuracy difference linearly in log(size) between the last size where deep was not ahead
    and the first where it is. ``status`` is ``crossover``, ``deep-ahead-everywhere`` or ``never``.
    """
    order = np.argsort(np.asarray(sizes, dtype=float))
    s = np.asarray(sizes, dtype=float)[order]
    d = np.asarray(deep, dtype=float)[order] - np.asarray(classical, dtype=float)[order]
    ok = ~np.isnan(d)
    s, d = s[ok], d[ok]
    if len(s) == 0:
        return {"status": "never", "at": None, "estimate": None, "text": "no size has both a classical and a deep result"}
    if d[-1] <= 0:
        return {"status": "never", "at": None, "estimate": None,
                "text": f"deep never overtakes classical in range ({s[0]:g}–{s[-1]:g} per class)"}
    k = len(d) - 1
    while k > 0 and d[k - 1] > 0:
        k -= 1
    if k == 0:
        return {"status": "deep-ahead-everywhere", "at": float(s[0]), "estimate": None,
                "text": f"deep is ahead at every size tested (from {s[0]:g} per class)"}
    d0, d1 = d[k - 1], d[k]
    t = d0 / (d0 - d1) if d1 != d0 else 1.0
    est = math.exp(math.log(s[k - 1]) + t * (math.log(s[k]) - math.log(s[k - 1])))
    first = float(s[int(np.argmax(d > 0))])
    note = (f"; it already led at {', '.join(f'{x:g}' for x in s[:k][d[:k] > 0])} without keeping the lead"
            if first < s[k] else "")
    return {"status": "crossover", "at": float(s[k]), "after": float(s[k - 1]), "estimate": float(est),
            "first_lead": first,
            "text": f"deep overtakes classical for good between {s[k - 1]:g} and {s[k]:g} images per class "
                    f"(≈{est:.0f} by log-linear interpolation){note}"}


def summarize_curve(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (pipeline, size): mean ± std of test accuracy over repeats; ``n_per_class`` is the x value."""
    from bench.studies.statistics import mean_std

    rows = []
    for (p, fam, label), g in runs.groupby(["pipeline", "family", "per_class"], sort=False):
        m, sd, n = mean_std(g["test_accuracy"].to_numpy())
        val = pd.to_numeric(g["val_accuracy"], errors="coerce").mean() if "val_accuracy" in g else math.nan
        rows.append({"pipeline": p, "family": fam, "per_class": label,
                     "n_per_class": float(g["n_per_class"].mean()), "mean": m, "std": sd, "repeats": n,
                     "val_mean": val,
                     "fit_time_s": float(g["fit_time_s"].mean()) if "fit_time_s" in g else math.nan})
    return pd.DataFrame(rows).sort_values(["pipeline", "n_per_class"]).reset_index(drop=True)


def envelopes(summary: pd.DataFrame) -> pd.DataFrame:
    """Best classical and best deep mean test accuracy (and which pipeline) at each size; "best" is chosen on
    mean validation accuracy (on test only where no pipeline of that side has a validation split)."""
    rows = []
    for label, g in summary.groupby("per_class", sort=False):
        row: dict[str, Any] = {"per_class": label, "n_per_class": float(g["n_per_class"].mean())}
        for side, mask in (("classical", ~g["family"].isin(DEEP_FAMILIES)), ("deep", g["family"].isin(DEEP_FAMILIES))):
            gg = g[mask]
            if gg.empty:
                row[side], row[f"{side}_pipeline"] = math.nan, None
            else:
                vals = gg["val_mean"] if "val_mean" in gg else pd.Series(math.nan, index=gg.index)
                best = gg.loc[vals.idxmax() if vals.notna().any() else gg["mean"].idxmax()]
                row[side], row[f"{side}_pipeline"] = float(best["mean"]), best["pipeline"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values("n_per_class").reset_index(drop=True)


def crossover_from_summary(summary: pd.DataFrame) -> dict[str, Any]:
    env = envelopes(summary)
    res = find_crossover(env["n_per_class"], env["classical"], env["deep"])
    res["envelope"] = env.to_dict("records")
    return res


def plot_curve(summary: pd.DataFrame, crossover: dict[str, Any] | None, title: str) -> bytes:
    """Accuracy vs images per class (log x), one line per pipeline with ±1 std error bars."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for p, g in summary.groupby("pipeline"):
        g = g.sort_values("n_per_class")
        deep = g["family"].iloc[0] in DEEP_FAMILIES
        ax.errorbar(g["n_per_class"], 100 * g["mean"], yerr=100 * g["std"].fillna(0), marker="o" if deep else "s",
                    linestyle="--" if deep else "-", capsize=3, label=f"{p} ({g['family'].iloc[0]})")
    if crossover and crossover.get("status") == "crossover":
        ax.axvline(crossover["estimate"], color="grey", linestyle=":", label=f"crossover ≈{crossover['estimate']:.0f}")
    ax.set_xscale("log")
    xs = sorted(summary["n_per_class"].unique())
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel("training images per class (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def summary_markdown(dataset: str, summary: pd.DataFrame, crossover: dict[str, Any]) -> str:
    labels = list(dict.fromkeys(summary.sort_values("n_per_class")["per_class"]))
    lines = [f"### Data efficiency — {dataset}", "", f"**Crossover:** {crossover['text']}.", "",
             "| pipeline | family | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for p, g in summary.groupby("pipeline"):
        cells = []
        for lab in labels:
            r = g[g["per_class"] == lab]
            if r.empty:
                cells.append("–")
            else:
                r = r.iloc[0]
                cells.append(f"{100 * r['mean']:.1f}" + (f" ± {100 * r['std']:.1f}" if r["repeats"] > 1 else ""))
        lines.append(f"| {p} | {g['family'].iloc[0]} | " + " | ".join(cells) + " |")
    lines += ["", "Test accuracy (%) by training images per class; ± is the std over repeats (different seeded "
              "subsets)."]
    return "\n".join(lines) + "\n"


def with_min_steps(resolved: dict[str, Any], overrides: dict[str, Any], n_train: int, min_steps: int,
                   max_epochs: int | None = None) -> dict[str, Any]:
    """Raise ``epochs`` so a network takes at least ``min_steps`` optimiser steps on ``n_train`` images.

    With a fixed epoch budget a network trained on 5 images per class takes a handful of steps; equalising
    the number of steps is the fairer protocol for a data-efficiency curve. Pipelines without ``epochs`` and
    ``batch_size`` parameters (classical ones) are unchanged. ``max_epochs`` caps the raise (each epoch has a
    fixed cost — validation pass, logging — that dominates on tiny training sets).
    """
    if "epochs" not in resolved or "batch_size" not in resolved or n_train <= 0:
        return overrides
    per_epoch = math.ceil(n_train / int(resolved["batch_size"]))
    if int(resolved["epochs"]) * per_epoch >= min_steps:
        return overrides
    epochs = math.ceil(min_steps / per_epoch)
    if max_epochs is not None:
        epochs = min(epochs, max(max_epochs, int(resolved["epochs"])))
    return {**overrides, "epochs": epochs}


def _n_train(dataset: str, split: Any, image_size: int | None, data_dir: str | None) -> int:
    from bench.datasets import prepare
    from bench.execute import dataset_cache_dir

    return len(prepare(dataset, split, image_size=image_size, data_dir=data_dir, cache_dir=dataset_cache_dir()).y_train)


def _cell_key(j: Any) -> tuple:
    """A job's place in the curve, whatever data hash the runner bound to it."""
    return (j.pipeline, j.seed, j.split, j.image_size, json.dumps(j.params, sort_keys=True, default=str))


def run_data_efficiency(dataset: str, pipelines: Sequence[str], *, sizes: Sequence[int | None],
                        repeats: int = 3, repeat_below: int = 100, split: Any = None,
                        image_size: int | None = None, params: dict[str, dict[str, Any]] | None = None,
                        tracker: Any = None, force: bool = False, data_dir: str | None = None,
                        out_dir: str | Path | None = None, log: Callable[[str], None] = print,
                        min_steps: int | None = None, max_epochs: int | None = None,
                        dry_run: bool = False) -> dict[str, Any]:
    """Run every (pipeline, size, repeat) job through the runner; return runs, summary and crossover.

    ``dry_run`` only lists the cells: which would run (``plan``) and which are done (``skip``), creating no
    experiment and no run; it returns ``{"planned": [...], "skipped": [...]}`` (run names with their size)."""
    from bench.datasets import SplitOptions
    from bench.jobs import Job, experiment_name
    from bench.measure import environment_tags
    from bench.runner import run_grid
    from bench.tracking import Tracker
    from pipelines.registry import get_spec

    tracker = tracker or Tracker()
    base = split or SplitOptions()
    jobs, cell = [], {}
    for n in sizes:
        reps = repeats if (n is not None and n < repeat_below) else 1
        for r in range(reps):
            sp = replace(base, train_per_class=n, split_seed=base.split_seed + r)
            n_train = _n_train(dataset, sp, image_size, data_dir) if min_steps else 0
            for p in pipelines:
                pp = dict((params or {}).get(p, {}))
                if min_steps:
                    pp = with_min_steps(get_spec(p).resolve_params(**pp), pp, n_train, min_steps, max_epochs)
                j = Job(dataset, p, r, pp, sp, image_size)
                jobs.append(j)
                cell[_cell_key(j)] = ("all" if n is None else str(n), r)
    log(f"data-efficiency: {len(jobs)} job(s) on {dataset}")
    if dry_run:  # the runner's own plan / skip lines cannot tell the sizes apart: say them here
        results = run_grid(jobs, tracker=tracker, force=force, data_dir=data_dir, dry_run=True,
                           log=lambda m: None if m.startswith(("plan ", "skip ")) else log(m))
        plan: dict[str, list[str]] = {"planned": [], "skipped": []}
        for res in results:
            label = cell[_cell_key(res.job)][0]
            what = f"{res.job.run_name} ({'all images' if label == 'all' else label + '/class'})"  # seed = repeat
            if res.status == "SKIPPED":
                plan["skipped"].append(what)
                log(f"skip  {what}: FINISHED run {res.run_id[:8]} exists (--force to redo)")
            else:
                plan["planned"].append(what)
                log(f"plan  {what}")
        return plan
    results = run_grid(jobs, tracker=tracker, force=force, data_dir=data_dir, log=log)
    rows, failed = [], []
    for res in results:
        if res.status not in ("FINISHED", "SKIPPED") or not res.run_id:
            failed.append(f"{res.job.run_name} ({cell[_cell_key(res.job)][0]}/class): {res.error}")
            continue
        if res.status == "FINISHED":
            tracker.set_tags(res.run_id, {"study": STUDY})
        d = tracker.run_data(res.run_id)
        label, r = cell[_cell_key(res.job)]
        n_train, n_classes = float(d["params"].get("n_train", "nan")), float(d["params"].get("n_classes", "nan"))
        rows.append({"pipeline": res.job.pipeline, "family": get_spec(res.job.pipeline).family, "per_class": label,
                     "n_per_class": n_train / n_classes, "repeat": r, "test_accuracy": d["metrics"].get("test_accuracy"),
                     "val_accuracy": d["metrics"].get("val_accuracy"),
                     "fit_time_s": d["metrics"].get("fit_time_s"), "run_id": res.run_id})
    runs = pd.DataFrame(rows)
    for f in failed:
        log(f"WARNING: failed cell left out of the curve: {f}")
    if runs.empty:
        return {"runs": runs, "summary": runs, "crossover": find_crossover([], [], []), "failed": failed}
    summary = summarize_curve(runs)
    cross = crossover_from_summary(summary)
    title = f"{dataset}: accuracy vs training images per class"
    png = plot_curve(summary, cross, title)
    md = summary_markdown(dataset, summary, cross)
    files = {"curve.csv": runs.to_csv(index=False), "summary.csv": summary.to_csv(index=False),
             "data_efficiency.png": png, "crossover.json": json.dumps(cross, indent=2, default=str),
             "summary.md": md}
    exp_id = tracker.experiment_id(experiment_name(dataset))
    tags = {"cvbench.kind": "study", "study": STUDY, "dataset": dataset, **environment_tags()}
    with tracker.run(exp_id, f"{dataset}/data-efficiency", tags) as run_id:
        tracker.log_params(run_id, {"pipelines": ",".join(pipelines),
                                    "per_class": ",".join("all" if n is None else str(n) for n in sizes),
                                    "repeats": repeats, "repeat_below": repeat_below, "min_steps": min_steps,
                                    "max_epochs": max_epochs,
                                    **{f"split.{k}": v for k, v in base.as_params().items()}})
        m = {"crossover_status_code": {"never": 0, "crossover": 1, "deep-ahead-everywhere": 2}[cross["status"]]}
        if cross.get("estimate"):
            m["crossover_per_class"] = cross["estimate"]
        m["failed_jobs"] = len(failed)
        tracker.log_metrics(run_id, m)
        if failed:
            tracker.set_tags(run_id, {"failed_jobs": "; ".join(failed)})
        tracker.log_artifacts(run_id, files)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (out / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    log(f"crossover: {cross['text']}")
    return {"runs": runs, "summary": summary, "crossover": cross, "run_id": run_id, "failed": failed}
