"""``python -m bench report``: read the tracking store, write report.md, report.html, plots/ and tables/.

Every number comes from a tracked run (metrics, metric history, artifacts, tags); nothing is typed by hand.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report import plots
from bench.report.analysis import (
    DEEP,
    SHORT_PREDICTION_S,
    RunSet,
    Verdict,
    environment_tables,
    leaderboard,
    load_runs,
    pareto_front,
    verdict,
)
from bench.report.render import Block, Figure, Table, num, slug, to_html, to_latex, to_markdown
from bench.tracking import Tracker

MAX_EXCLUDED_SHOWN = 40
MAX_CURVES = 8
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet artifact downloads


@dataclass
class Section:
    name: str
    runs: pd.DataFrame
    lb: pd.DataFrame
    verdict: Verdict
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportResult:
    out: Path | None
    runs: RunSet
    sections: list[Section]
    files: list[Path] = field(default_factory=list)
    datasets: list[str] | None = None

    @property
    def message(self) -> str:
        if self.out is None:
            return empty_message(self.runs, self.datasets)
        excl = self.runs.exclusion_counts()
        tail = f"; excluded {_counts_text(excl)}" if excl else ""
        return (f"report: {len(self.runs.used)} run(s) over {len(self.sections)} dataset section(s){tail}\n"
                f"        {self.out / 'report.html'}\n        {self.out / 'report.md'}")


def terminal_summary(res: ReportResult) -> str:
    """Each section's leaderboard (compact) and verdict, as printed by ``python -m bench report``."""
    parts = []
    for s in res.sections:
        lb = s.lb
        t = pd.DataFrame({"pipeline": lb["pipeline"], "family": lb["family"],
                          **({"hw": lb["hardware"]} if lb["hardware"].nunique() > 1 else {}),
                          "acc %": [f"{100 * m:.2f}" + (f" ± {100 * sd:.2f}" if np.isfinite(sd) else "")
                                    for m, sd in zip(lb["acc_mean"], lb["acc_std"])],
                          "n": lb["n"], "fit s": lb["fit_time_s"].map(num),
                          "img/s": lb["inference_img_per_s"].map(num)})
        parts.append(f"== {s.name}\n{t.to_string(index=False)}\n{s.verdict.sentence}")
    return "\n\n".join(parts)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def empty_message(runs: RunSet, datasets: list[str] | None = None) -> str:
    if runs.n_total == 0 and datasets:
        return (f"No runs for dataset(s) {', '.join(datasets)} in the tracking store: check the name "
                "(`python -m bench export` lists what is there) or run them first.")
    if runs.n_total == 0:
        return ("No runs in the tracking store yet, so there is nothing to report: run `make bench` "
                "(or `python -m bench run --suite quick`) first.")
    return (f"No usable runs: all {runs.n_total} job run(s) in the store were excluded "
            f"({_counts_text(runs.exclusion_counts())}); nothing to report. Rerun them with `python -m bench run`.")


# -- tables ------------------------------------------------------------------------------------------------------
def leaderboard_table(section: str, lb: pd.DataFrame, multi_hw: bool, hw_names: dict[str, str] | None = None
                      ) -> Table:
    def acc(r: pd.Series) -> str:
        std = f" ± {100 * r['acc_std']:.2f}" if np.isfinite(r["acc_std"]) else ""
        return f"{100 * r['acc_mean']:.2f}{std} (n={r['n']})"

    front = pareto_front(lb["fit_time_s"], lb["acc_mean"])
    disp = pd.DataFrame({
        "#": range(1, len(lb) + 1),
        "pipeline": [p + (" (colour features on a grayscale dataset)" if gray else "")
                     for p, gray in zip(lb["pipeline"], lb["colour_on_gray"])], "family": lb["family"],
        "features": lb["features"], "classifier": lb["classifier"],
        **({"hardware": lb["hardware"]} if multi_hw else {}),
        "test acc % (mean ± std, n seeds)": lb.apply(acc, axis=1),
        "macro-F1 %": [f"{100 * v:.2f}" if np.isfinite(v) else "—" for v in lb["macro_f1"]],
        "feature time s": lb["feature_time_s"].map(num), "fit time s": lb["fit_time_s"].map(num),
        "inference img/s": [("≈" if short else "") + num(v) for v, short in  # NaN (older runs): unmarked
                            zip(lb["inference_img_per_s"], lb["predict_time_s"] < SHORT_PREDICTION_S)],
        "latency ms/img": lb["latency_ms_per_img"].map(num),
        "model MB": lb["model_size_mb"].map(num), "peak alloc MB": lb["peak_alloc_mb"].map(num),
        "peak RSS MB": lb["peak_rss_mb"].map(num),
        "Pareto (fit time)": ["yes" if f else "" for f in front],
    })
    data = lb.assign(dataset=section, pareto_fit_time=front, hardware_name=lb["hardware"].map(hw_names or {}))
    directions = {"test acc % (mean ± std, n seeds)": ("acc_mean", max), "macro-F1 %": ("macro_f1", max),
                  "feature time s": ("feature_time_s", min), "fit time s": ("fit_time_s", min),
                  "inference img/s": ("inference_img_per_s", max), "latency ms/img": ("latency_ms_per_img", min),
                  "model MB": ("model_size_mb", min), "peak alloc MB": ("peak_alloc_mb", min),
                  "peak RSS MB": ("peak_rss_mb", min)}
    best = {}
    for col, (key, pick) in directions.items():
        vals = pd.to_numeric(lb[key], errors="coerce").reset_index(drop=True)
        if vals.notna().any():
            best[col] = int(vals.idxmax() if pick is max else vals.idxmin())
    return Table(f"leaderboard_{slug(section)}", disp, data, bold=lb["best_in_family"].tolist(), best=best,
                 caption=f"Leaderboard, {section}: sorted by test accuracy; bold (HTML, Markdown) = best of its "
                         "family; bold (LaTeX) = best value of each column. Peak alloc MB: the job's own malloc'd peak, "
                         "whatever ran before it; peak RSS MB: shown only for runs measured first in a fresh process "
                         "(run --isolate), as resident memory depends on what earlier jobs left in the allocator. "
                         f"≈: throughput from a test-split prediction under {SHORT_PREDICTION_S * 1000:.0f} ms, timed "
                         "to about ±50% (docs/measurements.md#execute).")


def _ratio_text(r: float | None) -> str:
    if r is None or not np.isfinite(r):
        return "—"
    def f(x: float) -> str:
        return f"{x:,.0f}" if x >= 10 else f"{x:.1f}".removesuffix(".0")

    return f"{f(r)}×" if r >= 1 or r == 0 else f"1/{f(1 / r)}"


def verdict_table(verdicts: list[Verdict]) -> Table:
    data = pd.DataFrame([v.as_row() for v in verdicts])
    disp = data.drop(columns=["verdict"]).copy()
    disp["gap (points, deep − classical)"] = [f"{g:+.2f}" if g is not None and np.isfinite(g) else "—"
                                               for g in data["gap (points, deep − classical)"]]
    for c in ("fit time ratio", "inference time ratio", "model size ratio", "latency ratio"):
        disp[c] = [_ratio_text(r) for r in data[c]]
    disp["same hardware"] = disp["same hardware"].map({True: "yes", False: "NO"})
    disp = disp.replace("", "—")
    return Table("verdict", disp, data,
                 caption="Classical vs deep: best of each family; gap and cost ratios are deep ÷ classical (inference "
                         "time per image from batch throughput; latency = single image).")


# -- section content ---------------------------------------------------------------------------------------------
def _artifact_csv(tracker: Tracker, run_id: str, name: str) -> pd.DataFrame | None:
    try:
        return pd.read_csv(io.BytesIO(tracker.artifact_bytes(run_id, name)), index_col=0)
    except Exception:  # a run without the artifact (older runs, other producers): the figure is skipped
        return None


def _histories(tracker: Tracker, lb: pd.DataFrame) -> dict[str, dict[str, list[tuple[int, float]]]]:
    out = {}
    for _, r in lb[lb["family"].isin(DEEP)].head(MAX_CURVES).iterrows():
        n = r["epochs_run"]
        if not np.isfinite(n):
            continue
        h = {}
        for key in ("train_loss", "val_accuracy"):
            try:
                pts = sorted(tracker.metric_history(r["run_id"], key))
            except Exception:
                pts = []
            h[key] = [(s, v) for s, v in pts if s < n]  # the final val_accuracy is logged at step=epochs_run
        name = r["pipeline"] + (f" ({r['hardware']})" if lb["hardware"].nunique() > 1 else "")
        out[f"{name}, seed {r['run_name'].rsplit('/', 1)[-1]}"] = h
    return out


def _per_class_note(acc: pd.DataFrame, cn: str, dn: str, k: int = 5) -> str:
    diff = 100 * (acc[dn] - acc[cn])
    deep_wins = diff[diff > 0].sort_values(ascending=False)
    classical_wins = diff[diff < 0].sort_values()

    def fmt(s: pd.Series) -> str:
        return ", ".join(f"{i} ({v:+.1f})" for i, v in s.head(k).items()) or "none"

    return (f"Per-class accuracy: {dn} is better on {len(deep_wins)} of {len(diff)} classes, most on "
            f"{fmt(deep_wins)}; {cn} is better on {len(classical_wins)}: {fmt(classical_wins)}; "
            f"{int((diff == 0).sum())} tie (points, deep − classical).")


def build_section(tracker: Tracker, name: str, runs: pd.DataFrame) -> Section:
    from bench.studies.statistics import compare_runs

    lb = leaderboard(runs)
    v = verdict(name, lb, compare=lambda a, b: compare_runs(tracker, a, b))
    sec = Section(name, runs, lb, v)
    s = slug(name)
    multi = lb["hardware"].nunique() > 1
    hw_note = " Shapes mark hardware; one Pareto front per machine." if multi else ""
    png = plots.cost_accuracy(lb, "fit_time_s", "fit time (s, log scale; features + training + tuning)",
                              f"{name}: accuracy vs fit time", higher_x_is_better=False)
    if png:
        sec.figures.append(Figure(f"{s}_acc_vs_fit_time", png,
                                  f"{name}: test accuracy (mean ± std over seeds) vs fit time; dashed: Pareto "
                                  f"front (no pipeline is both faster to fit and more accurate).{hw_note}"))
    png = plots.cost_accuracy(lb, "inference_img_per_s", "inference throughput (images/s, log scale)",
                              f"{name}: accuracy vs inference throughput", higher_x_is_better=True)
    if png:
        sec.figures.append(Figure(f"{s}_acc_vs_throughput", png,
                                  f"{name}: test accuracy vs inference throughput (batch prediction on the test "
                                  f"split); dashed: Pareto front.{hw_note}"))
    png = plots.epoch_curves(_histories(tracker, lb), f"{name}: networks, per epoch (MLflow metric history)")
    if png:
        sec.figures.append(Figure(f"{s}_epochs", png, f"{name}: per-epoch training loss and validation accuracy of "
                                  "each network (lowest seed of each row)."))
    c, d = v.best["classical"], v.deep
    if c is not None and d is not None:
        pair = [(r, _artifact_csv(tracker, r["run_id"], "confusion_matrix.csv"),
                 _artifact_csv(tracker, r["run_id"], "per_class.csv")) for r in (c, d)]
        cms = [(f"{r['family']}: {r['pipeline']}, seed {r['run_name'].rsplit('/', 1)[-1]}  "
                 f"({100 * r['acc_mean']:.2f}% mean over {r['n']} seed(s))", cm) for r, cm, _ in pair]
        png = plots.confusion_pair(cms)
        if png:
            sec.figures.append(Figure(f"{s}_confusion", png, f"{name}: confusion matrices of the best classical and "
                                      f"the best deep pipeline, runs {c['run_name']} and {d['run_name']} "
                                      "(colour: row-normalised rate; counts in cells)."))
        pcs = [p for _, _, p in pair]
        if all(p is not None and "recall" in p for p in pcs):
            meta = {"accuracy", "macro avg", "weighted avg", "micro avg"}
            cn, dn = c["pipeline"], d["pipeline"] + (" " if d["pipeline"] == c["pipeline"] else "")
            acc = pd.concat([p.loc[[i for i in p.index if str(i) not in meta], "recall"] for p in pcs], axis=1,
                            keys=[cn, dn]).dropna()
            png = plots.per_class(acc, (cn, dn))
            if png:
                sec.figures.append(Figure(f"{s}_per_class", png, f"{name}: per-class test accuracy (recall) of "
                                          f"{c['run_name']} and {d['run_name']}."))
                sec.notes.append(_per_class_note(acc, cn, dn))
        else:
            sec.notes.append("Per-class and confusion figures need the per_class.csv / confusion_matrix.csv "
                             "artifacts, which these runs lack.")
    return sec


# -- assembly ----------------------------------------------------------------------------------------------------
def _excluded_table(runs: RunSet) -> Table:
    ex = runs.excluded
    data = ex.copy()
    shown = ex.head(MAX_EXCLUDED_SHOWN)
    disp = pd.DataFrame({"run": shown["run_name"].fillna("?"), "run id": shown["run_id"].str[:8],
                         "status": shown["status"], "excluded because": shown["reason"],
                         "error": shown["error"].fillna("").astype(str).str[:80]})
    cap = "Runs not used." + (f" First {MAX_EXCLUDED_SHOWN} of {len(ex)}; all in the CSV."
                              if len(ex) > MAX_EXCLUDED_SHOWN else "")
    return Table("runs_excluded", disp, data, caption=cap)


def _blocks(tracker: Tracker, runs: RunSet, sections: list[Section], tables: list[Table]) -> list[Block]:
    B = Block
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    excl = runs.exclusion_counts()
    blocks = [B("h1", "cvbench report: classical computer vision vs deep learning"),
              B("p", f"Generated {now} from the tracking store {tracker.uri}. Every number below is read from a "
                     f"tracked MLflow run (run names dataset/pipeline/seed); nothing is typed by hand."),
              B("p", f"Runs used: {len(runs.used)} of the {runs.n_total} job runs in the store"
                     + (f"; excluded: {_counts_text(excl)} (listed at the end)." if excl else "; none excluded.")
                     + f" Current code version: {runs.code_version}."),
              B("nav", items=["Verdict\0verdict", *(f"{s.name}\0{slug(s.name)}" for s in sections),
                              "Environment\0environment", "Runs\0runs"]),
              B("h2", "Verdict: classical vs deep", anchor="verdict")]
    vt = verdict_table([s.verdict for s in sections])
    tables.append(vt)
    blocks += [B("verdict", s.verdict.sentence) for s in sections] + [B("table", table=vt)]
    for s in sections:
        multi = s.lb["hardware"].nunique() > 1
        ns = s.runs[["n_train", "n_val", "n_test"]].iloc[0]
        blocks += [B("h2", s.name, anchor=slug(s.name)),
                   B("p", f"{len(s.runs)} runs, {len(s.lb)} leaderboard rows; split sizes train/val/test = "
                          f"{ns['n_train']}/{ns['n_val']}/{ns['n_test']} images.")]
        if multi:
            names = dict(zip(runs.hardware["id"], runs.hardware["hardware"]))
            blocks.append(B("note", "these runs come from different hardware ("
                                    + "; ".join(f"{h} = {names.get(h, '?')}" for h in sorted(s.lb["hardware"].unique()))
                                    + "); they are kept in separate rows and timings are never averaged across "
                                      "machines."))
        lt = leaderboard_table(s.name, s.lb, multi, dict(zip(runs.hardware["id"], runs.hardware["hardware"])))
        tables.append(lt)
        blocks += [B("table", table=lt), B("verdict", s.verdict.sentence)]
        blocks += [B("p", n) for n in s.notes]
        blocks += [B("figure", figure=f) for f in s.figures]
    hw, sw = environment_tables(runs)
    hwt = Table("environment_hardware", hw.astype(str), hw, caption="Hardware of the runs used (from env.* tags).")
    swt = Table("environment_software", sw.astype(str), sw,
                caption="Software of the runs used: git commit, Python, platform, package versions.")
    tables += [hwt, swt]
    blocks += [B("h2", "Environment", anchor="environment"), B("table", table=hwt), B("table", table=swt)]
    if len(hw) > 1:
        blocks.append(B("note", f"{len(hw)} different machines contributed runs; timings are only compared "
                                "within a machine (hardware column)."))
    if (sw["distinct"] > 1).any():
        blocks.append(B("note", "the runs used do not share one software environment: "
                                + ", ".join(sw.loc[sw["distinct"] > 1, "item"]) + " differ (see above)."))
    blocks += [B("h2", "Runs", anchor="runs"),
               B("p", f"{len(runs.used)} runs used (tables/runs_used.csv). Excluded: "
                      + (_counts_text(excl) if excl else "none") + ".")]
    if excl:
        et = _excluded_table(runs)
        tables.append(et)
        blocks.append(B("table", table=et))
    blocks.append(B("p", "Definitions: test accuracy on the test split, touched once, only reported: every choice "
                         "(hyper-parameters, best of a family, the pair tested) is made on validation accuracy; fit "
                         "time = what fitting costs from raw images: feature extraction of train + val (charged at "
                         "its recorded cost when read from the cache) + training + validation-split tuning; "
                         "inference img/s = the same for the test split; latency = median single-image prediction "
                         "through the ready model, without the feature cache; model size = serialized size "
                         "(network weights, or the pickled estimator: a k-NN stores its training set); peak memory = "
                         "the job's own footprint above its size when fit or predict began: alloc = malloc-allocated "
                         "bytes (sampled every 5 ms; what the job holds, whatever ran before it), RSS = resident "
                         "memory of the process and its workers (adds what the allocator keeps after frees); significance = McNemar's test on the two runs' "
                         "test predictions of one shared seed, with a paired bootstrap CI of the accuracy gap."))
    return blocks


def _natural(name: str) -> list[Any]:
    """Sort key putting "x (n=5)" before "x (n=50)" before "x (n=100)"."""
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", name)]


def build_report(tracker: Tracker | None = None, datasets: list[str] | None = None,
                 out: str | Path | None = None) -> ReportResult:
    """Write the report to ``out`` (default ``<results>/report``); writes nothing when no run is usable."""
    from bench.tracking import results_dir

    tracker = tracker or Tracker()
    runs = load_runs(tracker, datasets)
    if runs.used.empty:
        return ReportResult(None, runs, [], datasets=datasets)
    groups = sorted(runs.used.groupby("section"), key=lambda kv: _natural(kv[0]))
    sections = [build_section(tracker, name, g) for name, g in groups]
    tables: list[Table] = []
    blocks = _blocks(tracker, runs, sections, tables)
    # Studies (bench.studies reads the store only): data efficiency, robustness, significance, gallery.
    from bench.studies.results import report_blocks

    try:
        study_blocks, study_tables, study_figures = report_blocks(tracker, sorted(runs.used["dataset"].unique()))
    except Exception as e:  # a broken study must not cost the whole report
        study_blocks, study_tables, study_figures = [Block("note", f"studies unavailable ({type(e).__name__}: {e})")], [], []
    from bench.report.fidelity import fidelity_section  # published references vs measured (bench reproduce)

    fid_blocks, fid_tables, fid_figures = fidelity_section(tracker, runs.used)
    at = next((i for i, b in enumerate(blocks) if b.anchor == "environment"), len(blocks))
    blocks[at:at] = fid_blocks + study_blocks
    tables += fid_tables + study_tables
    out = Path(out) if out else results_dir() / "report"
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def write(p: Path, content: Any) -> None:
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        files.append(p)

    for s in sections:
        for f in s.figures:
            write(out / "plots" / f"{f.name}.png", f.png)
    for f in fid_figures + study_figures:
        write(out / "plots" / f"{f.name}.png", f.png)
    for t in tables:
        write(out / "tables" / f"{t.name}.csv", t.data.to_csv(index=False))
        write(out / "tables" / f"{t.name}.tex", to_latex(t))
    used_cols = ["run_name", "run_id", "dataset", "section", "pipeline", "label", "family", "seed", "hw",
                 "test_accuracy", "test_macro_f1", "fit_time_s", "inference_img_per_s", "code_version", "git_commit"]
    write(out / "tables" / "runs_used.csv", runs.used[used_cols].to_csv(index=False))
    write(out / "report.md", to_markdown(blocks))
    write(out / "report.html", to_html(blocks, "cvbench report"))
    return ReportResult(out, runs, sections, files)
