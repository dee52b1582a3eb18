"""Study results read back from the tracking store and rendered (tables, heatmap, markdown) for the report.

Reads only the store (never imports :mod:`bench.runner`), so :mod:`bench.report` may use it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _study_runs(tracker: Any, study: str, dataset: str | None = None) -> pd.DataFrame:
    df = tracker.runs_frame(experiment_names=[dataset] if dataset else None, include_parents=True)
    if df.empty or "tags.study" not in df:
        return pd.DataFrame()
    df = df[(df.get("tags.cvbench.kind") == "study") & (df["tags.study"] == study)]
    return df.sort_values("start_time").reset_index(drop=True)


# -- robustness ---------------------------------------------------------------------------------------------
def robustness_frame(tracker: Any, dataset: str) -> pd.DataFrame:
    """Latest robustness run per pipeline as a long frame (pipeline, family, corruption, severity, accuracy)."""
    df = _study_runs(tracker, "robustness", dataset)
    if df.empty:
        return df
    df = df.groupby("tags.pipeline").tail(1)
    rows = []
    for _, r in df.iterrows():
        p, fam = r["tags.pipeline"], r.get("tags.family")
        rows.append({"pipeline": p, "family": fam, "corruption": "clean", "severity": 0,
                     "accuracy": r["metrics.clean_accuracy"]})
        for col in r.index:
            if col.startswith("metrics.rob.") and not col.endswith(".mean") and pd.notna(r[col]):
                c, s = col[len("metrics.rob."):].rsplit(".s", 1)
                rows.append({"pipeline": p, "family": fam, "corruption": c, "severity": int(s), "accuracy": r[col]})
    return pd.DataFrame(rows)


def robustness_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per pipeline: clean accuracy, mCA, relative drop, and mean accuracy per corruption (over severities)."""
    from bench.studies.corruptions import CORRUPTIONS

    clean = df[df["corruption"] == "clean"].set_index("pipeline")["accuracy"]
    cor = df[df["corruption"] != "clean"]
    per = cor.groupby(["pipeline", "corruption"])["accuracy"].mean().unstack("corruption")
    per = per[[c for c in CORRUPTIONS if c in per.columns] + [c for c in per.columns if c not in CORRUPTIONS]]
    out = pd.DataFrame({"family": df.groupby("pipeline")["family"].first(), "clean": clean,
                        "mCA": cor.groupby("pipeline")["accuracy"].mean()})
    out["relative_drop"] = 1 - out["mCA"] / out["clean"]
    out = out.join(per).sort_values("mCA", ascending=False)
    out.index.name = "pipeline"
    return out


def heatmap_png(table: pd.DataFrame, title: str) -> bytes:
    """Pipelines × corruptions heatmap of mean accuracy over severities (clean and mCA columns first)."""
    from bench.report.plots import figure_png, pyplot

    plt = pyplot()
    cols = ["clean", "mCA"] + [c for c in table.columns if c not in ("family", "clean", "mCA", "relative_drop")]
    M = 100 * table[cols].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.62 * len(cols), 1.4 + 0.42 * len(table)), dpi=110)
    im = ax.imshow(M, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(table)), table.index, fontsize=8)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            ax.text(j, i, f"{M[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if M[i, j] < 60 else "black")
    ax.axvline(1.5, color="white", linewidth=2)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, label="accuracy (%)")
    fig.tight_layout()
    return figure_png(fig, dpi=110)


def robustness_markdown(table: pd.DataFrame, dataset: str) -> str:
    cols = [c for c in table.columns if c not in ("family", "clean", "mCA", "relative_drop")]
    lines = [f"### Robustness — {dataset}", "",
             "| pipeline | family | clean | mCA | rel. drop | " + " | ".join(cols) + " |",
             "|---|---|---|---|---|" + "---|" * len(cols)]
    for p, r in table.iterrows():
        lines.append(f"| {p} | {r['family']} | {100 * r['clean']:.1f} | {100 * r['mCA']:.1f} | "
                     f"{100 * r['relative_drop']:.1f}% | " + " | ".join(f"{100 * r[c]:.1f}" for c in cols) + " |")
    lines += ["", "Accuracy (%) on the test set; each corruption column is the mean over severities 1–5; mCA is the "
              "mean over all corruptions and severities; relative drop = 1 − mCA / clean."]
    return "\n".join(lines) + "\n"


def write_robustness_outputs(df: pd.DataFrame, out: Path, dataset: str) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    table = robustness_table(df)
    paths = {"csv": out / "robustness.csv", "table": out / "robustness_table.csv",
             "heatmap": out / "robustness_heatmap.png", "md": out / "robustness.md"}
    df.to_csv(paths["csv"], index=False)
    table.to_csv(paths["table"])
    paths["heatmap"].write_bytes(heatmap_png(table, f"{dataset}: accuracy under corruption (mean of 5 severities)"))
    paths["md"].write_text(robustness_markdown(table, dataset))
    return paths


# -- data efficiency ----------------------------------------------------------------------------------------
def data_efficiency_result(tracker: Any, dataset: str) -> dict[str, Any] | None:
    """The latest data-efficiency summary run of ``dataset``: summary frame, crossover, plot bytes, markdown."""
    df = _study_runs(tracker, "data-efficiency", dataset)
    if df.empty:
        return None
    run_id = df.iloc[-1]["run_id"]
    return {"run_id": run_id, "summary": pd.read_csv(io.BytesIO(tracker.artifact_bytes(run_id, "summary.csv"))),
            "crossover": tracker.artifact_dict(run_id, "crossover.json"),
            "png": tracker.artifact_bytes(run_id, "data_efficiency.png"),
            "markdown": tracker.artifact_text(run_id, "summary.md")}


# -- everything, for the report -----------------------------------------------------------------------------
def gallery_images(tracker: Any, dataset: str) -> dict[str, bytes]:
    """PNG panels of the latest gallery run of ``dataset`` (name → bytes)."""
    df = _study_runs(tracker, "gallery", dataset)
    if df.empty:
        return {}
    run_id = df.iloc[-1]["run_id"]
    files = tracker.artifact_files(run_id, "gallery")  # sorted by name
    return {name.removesuffix(".png"): data for name, data in files.items() if "/" not in name and name.endswith(".png")}


def report_blocks(tracker: Any, datasets: list[str]) -> tuple[list[Any], list[Any], list[Any]]:
    """The report's "Studies" part: (blocks, tables, figures) in :mod:`bench.report.render` types.

    Per dataset, whatever the store holds: the data-efficiency curve and crossover, the robustness table and
    heatmap (mCA, relative drop), the significance of best classical vs best deep (marked when NOT
    significant), and the gallery panels.
    """
    from bench.report.render import Block, Figure, Table, slug
    from bench.studies.statistics import best_pair_comparison

    blocks: list[Any] = []
    tables: list[Any] = []
    figures: list[Any] = []

    def fig(name: str, png: bytes, caption: str) -> None:
        f = Figure(name, png, caption)
        figures.append(f)
        blocks.append(Block("figure", figure=f))

    def pct(x: Any) -> str:
        return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * float(x):.1f}"

    for ds in datasets:
        part: list[Any] = []
        n0 = len(blocks)
        de = data_efficiency_result(tracker, ds)
        if de:
            s = de["summary"]
            labels = list(dict.fromkeys(s.sort_values("n_per_class")["per_class"].astype(str)))
            disp = s.assign(per_class=s["per_class"].astype(str)).pivot_table(
                index=["pipeline", "family"], columns="per_class", values="mean", aggfunc="first")[labels]
            sd = s.assign(per_class=s["per_class"].astype(str)).pivot_table(
                index=["pipeline", "family"], columns="per_class", values="std", aggfunc="first")[labels]
            cells = disp.copy().astype(object)
            for c in labels:
                cells[c] = [pct(m) + (f" ± {100 * v:.1f}" if v and v > 0 else "") for m, v in zip(disp[c], sd[c])]
            t = Table(f"study_data_efficiency_{slug(ds)}", cells.reset_index(), s,
                      caption=f"Data efficiency, {ds}: test accuracy (%) by training images per class (± std over "
                              "seeded subsets).")
            tables.append(t)
            blocks += [Block("h3", f"Data efficiency — {ds}"), Block("verdict", f"Crossover: {de['crossover']['text']}."),
                       Block("table", table=t)]
            fig(f"study_data_efficiency_{slug(ds)}", de["png"], f"{ds}: accuracy vs training images per class (log x)")
        rob = robustness_frame(tracker, ds)
        if not rob.empty:
            rt = robustness_table(rob)
            disp = rt.reset_index()
            for c in disp.columns[2:]:
                disp[c] = disp[c].map(pct)
            disp = disp.rename(columns={"relative_drop": "rel. drop %", "clean": "clean %", "mCA": "mCA %"})
            t = Table(f"study_robustness_{slug(ds)}", disp, rt.reset_index(),
                      caption=f"Robustness, {ds}: accuracy (%) per corruption (mean of severities 1–5), mean "
                              "corruption accuracy (mCA) and relative drop = 1 − mCA/clean. No retraining.")
            tables.append(t)
            best = rt["mCA"].idxmax()
            blocks += [Block("h3", f"Robustness — {ds}"),
                       Block("verdict", f"Most robust: {best} (mCA {pct(rt.loc[best, 'mCA'])}%, relative drop "
                                        f"{pct(rt.loc[best, 'relative_drop'])}%)."),
                       Block("table", table=t)]
            fig(f"study_robustness_{slug(ds)}", heatmap_png(rt, f"{ds}: accuracy under corruption (%)"),
                f"{ds}: pipelines × corruptions heatmap (mean accuracy over 5 severities)")
        try:
            cmp_ = best_pair_comparison(tracker, ds)
        except Exception as e:  # e.g. runs from before predictions were stored
            cmp_ = None
            blocks.append(Block("note", f"significance for {ds} unavailable ({type(e).__name__}: {e})"))
        if cmp_:
            row = {"A (classical)": cmp_["a"], "acc A % [95% CI]": f"{pct(cmp_['acc_a'])} [{pct(cmp_['ci_a'][0])}, "
                   f"{pct(cmp_['ci_a'][1])}]", "B (deep)": cmp_["b"],
                   "acc B % [95% CI]": f"{pct(cmp_['acc_b'])} [{pct(cmp_['ci_b'][0])}, {pct(cmp_['ci_b'][1])}]",
                   "A−B CI (points)": f"[{100 * cmp_['diff_ci'][0]:+.1f}, {100 * cmp_['diff_ci'][1]:+.1f}]",
                   "discordant A/B": f"{cmp_['a_only']}/{cmp_['b_only']}", "McNemar p": f"{cmp_['p_value']:.3g}",
                   "method": cmp_["method"], "significant": "yes" if cmp_["significant"] else "NO (not significant)",
                   "seeds A": cmp_["seeds_a"], "seeds B": cmp_["seeds_b"]}
            data = pd.DataFrame([{k: v for k, v in cmp_.items() if not isinstance(v, tuple)}])
            t = Table(f"study_significance_{slug(ds)}", pd.DataFrame([row]), data, bold=[not cmp_["significant"]],
                      caption=f"Significance, {ds}: best classical vs best deep on the same {cmp_['n_test']} test "
                              f"images (seed {cmp_['seed']}); McNemar exact below 25 discordant pairs, else χ² with "
                              "continuity correction; percentile bootstrap CIs. Bold = NOT significant at 0.05.")
            tables.append(t)
            blocks += [Block("h3", f"Significance — {ds}"), Block("table", table=t)]
        gal = gallery_images(tracker, ds)
        if gal:
            blocks.append(Block("h3", f"Gallery — {ds}"))
            for name, png in gal.items():
                fig(f"study_gallery_{slug(ds)}_{slug(name)}", png, f"{ds}: {name.replace('_', ' ')}")
        if len(blocks) > n0:
            part = blocks[n0:]
            del blocks[n0:]
            blocks += [Block("h2", f"Studies — {ds}", anchor=f"studies-{slug(ds)}")] + part
    return blocks, tables, figures


def decode_ok(png: bytes) -> bool:
    """True when ``png`` decodes as an image (used by tests and the gallery)."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    return img is not None and img.size > 0
