"""Report figures (matplotlib, Agg) returned as PNG bytes, so the HTML can embed them and Markdown can link them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from bench.report.analysis import pareto_front

FAMILY_COLOURS = {"classical": "#1f77b4", "scratch": "#ff7f0e", "transfer": "#2ca02c"}
HW_MARKERS = "osD^v<>P*X"


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (every figure here is written to PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (tight bounding box), then closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def _tick(v: float) -> str:
    """Short tick labels (10k, 2M, 0.05), so that neighbouring ticks on a log axis never run together."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:g}"


def cost_accuracy(lb: pd.DataFrame, x: str, xlabel: str, title: str, higher_x_is_better: bool = False
                  ) -> bytes | None:
    """Test accuracy (mean ± std over seeds) against a cost on a log axis, families coloured, Pareto front drawn.

    The front is computed per hardware (timings from different machines are not comparable).
    """
    fig = cost_accuracy_figure(lb, x, xlabel, title, higher_x_is_better)
    return None if fig is None else figure_png(fig)


def cost_accuracy_figure(lb: pd.DataFrame, x: str, xlabel: str, title: str, higher_x_is_better: bool = False
                         ) -> Any:
    """The matplotlib figure of :func:`cost_accuracy` (``None`` when no row has a positive cost)."""
    d = lb[np.isfinite(lb[x].astype(float)) & (lb[x].astype(float) > 0)]
    if d.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    hws = sorted(d["hardware"].unique())
    texts: list = []
    points: list[tuple[float, float]] = []
    for hi, hw in enumerate(hws):
        g = d[d["hardware"] == hw]
        xs, ys = g[x].astype(float).to_numpy(), 100 * g["acc_mean"].astype(float).to_numpy()
        cost = 1 / xs if higher_x_is_better else xs
        front = pareto_front(cost, ys)
        order = np.argsort(xs[front])
        fx, fy = xs[front][order], ys[front][order]
        if len(fx) > 1:
            ax.step(fx, fy, where="pre" if higher_x_is_better else "post", color="0.45", ls="--", lw=1,
                    zorder=1, label="Pareto front" + (f" ({hw})" if len(hws) > 1 else ""))
        fams = [f for f in FAMILY_COLOURS if f in set(g["family"])] + sorted(set(g["family"]) - set(FAMILY_COLOURS))
        for fam in fams:
            colour = FAMILY_COLOURS.get(fam, "0.5")
            m = (g["family"] == fam).to_numpy()
            err = 100 * g["acc_std"].astype(float).fillna(0).to_numpy()[m]
            ax.errorbar(xs[m], ys[m], yerr=err, fmt=HW_MARKERS[hi % len(HW_MARKERS)], color=colour, ms=7,
                        capsize=3, mec="black", mew=0.6, zorder=3,
                        label=fam + (f" ({hw})" if len(hws) > 1 else ""))
        crowded = len(g) > 12  # label only the front and each family's best; the table names the rest
        best = g.groupby("family")["acc_mean"].transform("max").to_numpy() == g["acc_mean"].to_numpy()
        for xi, yi, name, on, top in zip(xs, ys, g["pipeline"], front, best):
            if crowded and not (on or top):
                continue
            texts.append(ax.text(xi, yi, name, fontsize=8, fontweight="bold" if on else "normal", zorder=4))
            points.append((xi, yi))
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.08)  # room for the labels of the extreme points
    decades = np.log10(d[x].astype(float).max() / d[x].astype(float).min())
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades > 3 else (1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 10 ** (0.12 * np.log10(hi / lo)))  # more room on the right, where labels extend
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right" if not higher_x_is_better else "lower left")
    if texts:  # move the labels apart (and off the points), with a thin line back to each point
        from adjustText import adjust_text

        xs_, ys_ = zip(*points)
        adjust_text(texts, x=list(xs_), y=list(ys_), ax=ax, expand=(1.1, 1.3),
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5})
    return fig


def epoch_curves(histories: dict[str, dict[str, list[tuple[int, float]]]], title: str) -> bytes | None:
    """Per-epoch training loss and validation accuracy of each network (from MLflow metric history)."""
    histories = {k: v for k, v in histories.items() if v.get("train_loss") or v.get("val_accuracy")}
    if not histories:
        return None
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, h in histories.items():
        if h.get("train_loss"):
            s, v = zip(*h["train_loss"])
            a1.plot(np.asarray(s) + 1, v, marker=".", label=name)
        if h.get("val_accuracy"):
            s, v = zip(*h["val_accuracy"])
            a2.plot(np.asarray(s) + 1, 100 * np.asarray(v), marker=".", label=name)
    a1.set_yscale("log")
    a1.set_title("training loss", fontsize=10)
    a2.set_title("validation accuracy (%)", fontsize=10)
    from matplotlib.ticker import MaxNLocator

    for a in (a1, a2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_xlabel("epoch")
        a.grid(True, alpha=0.25)
    a2.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return figure_png(fig)


def confusion_pair(cms: list[tuple[str, pd.DataFrame]]) -> bytes | None:
    """Confusion matrices side by side, coloured by row-normalised rate (counts written when ≤ 20 classes)."""
    cms = [(t, cm) for t, cm in cms if cm is not None and not cm.empty]
    if not cms:
        return None
    plt = pyplot()
    n = max(cm.shape[0] for _, cm in cms)
    size = min(2.6 + 0.3 * n, 8)
    fig, axes = plt.subplots(1, len(cms), figsize=(size * len(cms), size), squeeze=False)
    for ax, (title, cm) in zip(axes[0], cms):
        counts = cm.to_numpy(dtype=float)
        rate = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(rate, cmap="Blues", vmin=0, vmax=1)
        names = [str(c) for c in cm.columns]
        k = len(names)
        if k <= 40:
            ax.set_xticks(range(k), names, rotation=90, fontsize=7)
            ax.set_yticks(range(k), names, fontsize=7)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    if counts[i, j]:
                        ax.text(j, i, f"{counts[i, j]:.0f}", ha="center", va="center", fontsize=8,
                                color="white" if rate[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def per_class(acc: pd.DataFrame, names: tuple[str, str], max_classes: int = 30) -> bytes | None:
    """Per-class test accuracy (recall) of two pipelines, classes sorted by the difference (second − first).

    With more than ``max_classes`` classes only the largest differences either way are shown.
    """
    if acc.empty:
        return None
    d = acc.assign(diff=acc.iloc[:, 1] - acc.iloc[:, 0]).sort_values("diff")
    if len(d) > max_classes:
        d = pd.concat([d.head(max_classes // 2), d.tail(max_classes // 2)])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.38 * len(d) + 2), 3.9))
    xs = np.arange(len(d))
    ax.bar(xs - 0.2, 100 * d.iloc[:, 0], width=0.4, label=names[0], color=FAMILY_COLOURS["classical"])
    ax.bar(xs + 0.2, 100 * d.iloc[:, 1], width=0.4, label=names[1], color=FAMILY_COLOURS["scratch"])
    names_ = [str(i) for i in d.index]
    rotate = len(d) > 12 or max(len(n) for n in names_) * len(d) > 50
    ax.set_xticks(xs, names_, rotation=45 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    lo = 100 * float(np.nanmin(d.iloc[:, :2].to_numpy()))
    floor = max(0.0, 5 * np.floor((lo - 5) / 5))
    ax.set_ylim(floor, 100.5)
    ax.set_ylabel("per-class test accuracy (%)")
    ax.set_title("sorted by the difference: classical wins on the left, deep on the right"
                 + (f"\n(the axis starts at {floor:.0f}%, not 0)" if floor > 0 else ""), fontsize=9)
    ax.grid(True, axis="y", alpha=0.25)
    ax.set_xlabel("class")
    ax.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.08), frameon=False)
    return figure_png(fig)


def confusion_png(cm: np.ndarray, names: list[str], title: str) -> bytes:
    """A confusion matrix as a PNG (counts in the cells up to 20 classes), for a run's artifacts."""
    plt = pyplot()
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * n, 1.0 + 0.45 * n), dpi=100)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    if n <= 20:
        thr = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > thr else "black")
    fig.tight_layout()
    return figure_png(fig, dpi=100)
