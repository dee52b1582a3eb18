"""The Fidelity section: published reference results beside what cvbench measured, read from the store only.

``python -m bench reproduce`` tags each run that measures a catalogue row with ``cvbench.reference.<family>/<id>``
holding the row (published value, tolerance, source, protocol) as JSON. Here the runs the report uses are grouped
by (row, dataset): the latest configuration's runs, the latest run per seed, mean ± std of the row's metric, the
difference from the published value and the verdict (:meth:`bench.references.Reference.verdict`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.references import TAG_PREFIX, Reference

COLUMNS = ["key", "dataset", "method", "cite", "source", "protocol", "published", "measured", "delta",
           "tolerance", "verdict", "reason", "pub_low", "pub_high", "tol_below", "tol_above", "mean", "std", "n",
           "n_train", "run_ids"]
VERDICT_COLOURS = {"within": "#2ca02c", "below": "#d62728", "above": "#ff7f0e"}


def _measure(g: pd.DataFrame, ref: Reference, dataset: str) -> dict[str, Any]:
    """One (row, dataset) line from its runs: the latest configuration, the latest run of each seed."""
    g = g.sort_values("start_time")
    last = g.iloc[-1]
    g = g[(g["protocol"] == last["protocol"]) & (g["config"] == last["config"])].groupby("seed").tail(1)
    vals = 100 * g[ref.metric_key].astype(float)
    mean, n = float(vals.mean()), len(vals)
    std = float(vals.std(ddof=1)) if n > 1 else float("nan")
    d = ref.delta(mean)
    return {"key": ref.key, "dataset": dataset, "method": ref.method, "cite": ref.cite, "source": ref.source,
            "protocol": ref.protocol_text(), "published": ref.published_text(),
            "measured": f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "") + f" (n={n})",
            "delta": f"{d:+.2f}", "tolerance": ref.tolerance_text(), "verdict": ref.verdict(mean),
            "reason": ref.reason, "pub_low": ref.published[0], "pub_high": ref.published[1],
            "tol_below": ref.tolerance[0], "tol_above": ref.tolerance[1], "mean": mean, "std": std, "n": n,
            "n_train": int(last["n_train"]) if pd.notna(last["n_train"]) else None,
            "run_ids": ",".join(g["run_id"])}


def fidelity_frame(tracker: Any, used: pd.DataFrame | None = None, datasets: list[str] | None = None
                   ) -> pd.DataFrame:
    """One line per (reference row, dataset) measured in the store; ``used``: the report's runs (else loaded)."""
    if used is None:
        from bench.report.analysis import load_runs

        used = load_runs(tracker, datasets).used
    raw = tracker.runs_frame(experiment_names=datasets)
    cols = [c for c in raw.columns if c.startswith("tags." + TAG_PREFIX)] if not raw.empty else []
    rows = []
    for col in cols:
        tagged = raw.loc[raw[col].notna(), ["run_id", col]]
        sub = used.merge(tagged, on="run_id")
        for dataset, g in sub.groupby("dataset"):
            ref = Reference.from_json(g.sort_values("start_time")[col].iloc[-1])
            rows.append(_measure(g, ref, dataset))
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["dataset", "key"], kind="stable").reset_index(drop=True)


def _panel(ax: Any, df: pd.DataFrame, title: str) -> None:
    """One dataset's rows: the diagonal, each row's tolerance band (grey bar), the measured point."""
    x = ((df["pub_low"] + df["pub_high"]) / 2).to_numpy()
    lo = float(min((df["pub_low"] - df["tol_below"]).min(), df["mean"].min())) - 2
    hi = min(100.5, float(max((df["pub_high"] + df["tol_above"]).clip(upper=100).max(), df["mean"].max())) + 2)
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
    labels: dict[tuple[float, float], list[str]] = {}
    for xi, (_, r) in zip(x, df.iterrows()):
        ax.vlines(xi, r["pub_low"] - r["tol_below"], min(100.0, r["pub_high"] + r["tol_above"]), color="#bbbbbb",
                  linewidth=8, alpha=0.6)
        ax.errorbar(xi, r["mean"], xerr=(r["pub_high"] - r["pub_low"]) / 2 or None,
                    yerr=r["std"] if np.isfinite(r["std"]) else None, fmt="o", color=VERDICT_COLOURS[r["verdict"]],
                    markersize=5, capsize=2)
        labels.setdefault((round(xi, 1), round(r["mean"], 1)), []).append(r["key"].split("/", 1)[-1])
    for i, ((xi, yi), names) in enumerate(sorted(labels.items())):  # rows measured alike share one label
        ax.annotate(", ".join(names), (xi, yi), textcoords="offset points", xytext=(6, (-4, 5)[i % 2]), fontsize=7)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("published accuracy (%)")
    ax.grid(alpha=0.3)


def fidelity_png(df: pd.DataFrame) -> bytes | None:
    """Published (x) vs measured (y), one panel per dataset and one point per row, with the diagonal and each
    row's tolerance band."""
    from bench.report.plots import figure_png, pyplot

    if df.empty:
        return None
    plt = pyplot()
    groups = list(df.groupby("dataset", sort=True))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.8 * len(groups), 5.0), squeeze=False)
    for ax, (name, g) in zip(axes[0], groups):
        _panel(ax, g, str(name))
    axes[0][0].set_ylabel("measured accuracy (%), mean ± std over seeds")
    handles = [plt.Line2D([], [], color="grey", linestyle="--", label="measured = published"),
               plt.Line2D([], [], color="#bbbbbb", linewidth=8, label="tolerance band")]
    handles += [plt.Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in VERDICT_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle("Fidelity: published vs measured", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return figure_png(fig)


def fidelity_section(tracker: Any, used: pd.DataFrame) -> tuple[list[Any], list[Any], list[Any]]:
    """The report's Fidelity part as (blocks, tables, figures); empty when no run measures a reference row."""
    from bench.report.render import Block, Figure, Table

    df = fidelity_frame(tracker, used)
    if df.empty:
        return [], [], []
    disp = df[["key", "dataset", "source", "protocol", "n_train", "published", "measured", "delta", "tolerance",
               "verdict"]].rename(columns={"key": "row", "n_train": "cvbench train images", "published": "published %",
                                           "measured": "measured %", "delta": "Δ (points)"})
    table = Table("fidelity", disp, df,
                  caption="Published results and cvbench's measurement on the same protocol (accuracy %, mean ± "
                          "std over seeds); Δ from the published value (from the nearer end of a range); verdict "
                          "against the row's tolerance band.")
    counts = df["verdict"].value_counts()
    blocks = [Block("h2", "Fidelity: published results, measured", anchor="fidelity"),
              Block("p", f"{len(df)} reference row(s) measured by `python -m bench reproduce`: "
                         + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICT_COLOURS) + " tolerance."),
              Block("table", table=table)]
    blocks += [Block("p", f"{r['key']} on {r['dataset']} ({r['verdict']} tolerance, Δ {r['delta']}): {r['reason']}")
               for _, r in df[df["verdict"] != "within"].iterrows()]
    figures = []
    png = fidelity_png(df)
    if png:
        f = Figure("fidelity", png, "Published vs measured accuracy, one point per reference row and dataset "
                                    "(colour: verdict); dashed: the diagonal; grey bars: each row's tolerance band.")
        figures.append(f)
        blocks.append(Block("figure", figure=f))
    return blocks, [table], figures
