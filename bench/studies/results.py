"""Study results read back from the tracking store and rendered (tables, heatmap, markdown) for the report.

Reads only the store (never imports :mod:`bench.runner`), so :mod:`bench.report` may use it.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.studies.corruptions import CORRUPTIONS


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


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
    with tempfile.TemporaryDirectory() as d:
        get = lambda name: Path(tracker.download_artifact(run_id, name, d))  # noqa: E731
        return {"run_id": run_id, "summary": pd.read_csv(get("summary.csv")),
                "crossover": json.loads(get("crossover.json").read_text()),
                "png": get("data_efficiency.png").read_bytes(), "markdown": get("summary.md").read_text()}


# -- everything, for the report -----------------------------------------------------------------------------
def study_sections(tracker: Any, datasets: list[str], out_dir: Path) -> str:
    """Markdown for every study found in the store for ``datasets``; images are written into ``out_dir``."""
    from bench.studies.statistics import best_pair_comparison, format_comparison

    out_dir.mkdir(parents=True, exist_ok=True)
    parts: list[str] = []
    for ds in datasets:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in ds)[-60:]
        de = data_efficiency_result(tracker, ds)
        if de:
            (out_dir / f"data_efficiency_{safe}.png").write_bytes(de["png"])
            parts.append(de["markdown"] + f"\n![data efficiency {ds}](data_efficiency_{safe}.png)\n")
        rob = robustness_frame(tracker, ds)
        if not rob.empty:
            table = robustness_table(rob)
            (out_dir / f"robustness_{safe}.png").write_bytes(heatmap_png(table, f"{ds}: accuracy under corruption"))
            parts.append(robustness_markdown(table, ds) + f"\n![robustness {ds}](robustness_{safe}.png)\n")
        try:
            cmp_ = best_pair_comparison(tracker, ds)
        except Exception as e:  # missing artifacts of old runs must not break the report
            cmp_ = None
            parts.append(f"_significance for {ds} unavailable: {type(e).__name__}: {e}_\n")
        if cmp_:
            mark = "" if cmp_["significant"] else " **(difference not significant)**"
            parts.append(f"### Significance — {ds}\n\n{format_comparison(cmp_)}{mark}\n\n"
                         f"Mean ± std over seeds: {cmp_['a']} {cmp_['seeds_a']}; {cmp_['b']} {cmp_['seeds_b']}.\n")
        gal = Path(str(out_dir)).parent / "gallery" / safe
        if gal.is_dir() and any(gal.glob("*.png")):
            imgs = "\n".join(f"![{p.stem}](../gallery/{safe}/{p.name})" for p in sorted(gal.glob("*.png")))
            parts.append(f"### Gallery — {ds}\n\n{imgs}\n")
    return "\n".join(parts) if parts else "_No study results yet (run `python -m bench study ...`)._\n"


def decode_ok(png: bytes) -> bool:
    """True when ``png`` decodes as an image (used by tests and the gallery)."""
    import cv2

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    return img is not None and img.size > 0
