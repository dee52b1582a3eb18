"""What a report says, computed from the tracking store only: which runs count, leaderboards, Pareto fronts,
the classical-vs-deep verdict and the environment. Pure pandas; plotting and rendering live elsewhere.

Row identity: a leaderboard row is one (pipeline, configuration, hardware) within one *section*, a dataset
under one split protocol (split parameters + image size). Seeds of a row are aggregated (mean ± sample std).
Runs from different hardware never share a row, so timings are never averaged across machines; a section
whose runs come from several machines gets a hardware column and a warning.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench import CODE_VERSION
from bench.datasets import SplitOptions
from bench.report.frame import tidy_frame
from bench.tracking import Tracker

FAMILIES = ("classical", "scratch", "transfer")
DEEP = ("scratch", "transfer")
# averaged over a row's seeds; peak_rss_mb is not: only fresh-process runs count (fresh_process_rss)
COST_COLUMNS = ["feature_time_s", "fit_time_s", "predict_time_s", "inference_img_per_s", "latency_ms_per_img",
                "model_size_mb", "peak_alloc_mb"]
# A prediction of the whole test split shorter than this is timed to about ±50% only: on a small VM such a call
# runs in one of two speeds that switch with no job in between (docs/measurements.md#execute). The report marks
# the throughput it gives as approximate.
SHORT_PREDICTION_S = 0.01
_STATUS_REASON = {"RUNNING": "unfinished (running, or its process died)", "SCHEDULED": "unfinished (scheduled)",
                  "KILLED": "unfinished (interrupted)", "FAILED": "failed"}


@dataclass
class RunSet:
    """Job runs of the store split into those the report uses and those it excludes (with the reason)."""

    used: pd.DataFrame
    excluded: pd.DataFrame
    hardware: pd.DataFrame  # id, hardware, runs (over used runs)
    env: pd.DataFrame  # the env.* tags of the used runs (one row per run)
    code_version: str = CODE_VERSION

    @property
    def n_total(self) -> int:
        return len(self.used) + len(self.excluded)

    def exclusion_counts(self) -> dict[str, int]:
        if self.excluded.empty:
            return {}
        return self.excluded["category"].value_counts().to_dict()


def _json_or_str(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    try:
        return json.loads(v)
    except ValueError:
        return v


def _prefixed(df: pd.DataFrame, prefix: str, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    cols = [c for c in df.columns if c.startswith(prefix) and c[len(prefix):] not in skip]
    return [{c[len(prefix):]: _json_or_str(row[c]) for c in cols if isinstance(row[c], str)}
            for _, row in df[cols].iterrows()] if cols else [{} for _ in range(len(df))]


def _differing_label(dicts: list[dict[str, Any]]) -> list[str]:
    """Short labels naming only the keys whose values differ between ``dicts`` ("" when all are equal)."""
    keys = sorted({k for d in dicts for k in d})
    diff = [k for k in keys if len({json.dumps(d.get(k), sort_keys=True, default=str) for d in dicts}) > 1]
    return [", ".join(f"{k}={d.get(k)}" for k in diff) for d in dicts]


def _protocol_label(ds: str, d: dict[str, Any], defaults: dict[str, Any], differing: set[str], strict: bool) -> str:
    """``ds (k=v, ...)`` naming split options off their default (and, if ``strict``, all differing ones)."""
    keys = [k for k in sorted(d) if (k in defaults and d[k] != defaults[k])
            or (k in differing and (strict or k not in defaults))]
    return f"{ds} ({', '.join(f'{k}={d[k]}' for k in keys)})" if keys else ds


def load_runs(tracker: Tracker, datasets: list[str] | None = None, code_version: str = CODE_VERSION) -> RunSet:
    """Read every job run of the store and decide which ones the report uses."""
    raw = tracker.runs_frame(experiment_names=datasets, finished_only=False)
    t = tidy_frame(raw)
    if raw.empty:
        empty = pd.DataFrame(columns=["run_name", "run_id", "status", "category", "reason"])
        return RunSet(t.assign(section=[], label=[], hw=[]), empty, pd.DataFrame(columns=["id", "hardware", "runs"]),
                      pd.DataFrame(), code_version)
    raw = raw.reset_index(drop=True)
    t = t.reset_index(drop=True)
    t["hardware"] = t["hardware"].fillna("unknown hardware")
    t["code_version"] = t["code_version"].fillna("?")
    configs = _prefixed(raw, "params.pipeline.", skip=("seed",))
    # A parameter added to a pipeline later is absent from its older runs: compare configurations of one pipeline
    # on the keys all its runs record (a change that makes old results incomparable bumps CODE_VERSION instead).
    shared: dict[Any, set[str]] = {}
    for pipe, c in zip(t["pipeline"], configs):
        shared[pipe] = shared[pipe] & set(c) if pipe in shared else set(c)
    t["config"] = [json.dumps({k: v for k, v in c.items() if k in shared[pipe]}, sort_keys=True, default=str)
                   for pipe, c in zip(t["pipeline"], configs)]
    protocols = [{**p, **({"image_size": s} if isinstance(s, str) else {})} for p, s in
                 zip(_prefixed(raw, "params.split."), raw.get("params.image_size", pd.Series([None] * len(raw))))]
    t["protocol"] = [json.dumps(p, sort_keys=True, default=str) for p in protocols]
    t["error"] = raw["tags.cvbench.error"] if "tags.cvbench.error" in raw else None

    category = pd.Series([""] * len(t), index=t.index, dtype=object)
    reason = pd.Series([""] * len(t), index=t.index, dtype=object)
    for status, why in _STATUS_REASON.items():
        m = t["status"] == status
        category[m] = "failed" if status == "FAILED" else "unfinished"
        reason[m] = why
    ok = category == ""
    stale = ok & (t["code_version"] != code_version)
    category[stale] = "stale code version"
    reason[stale] = [f"tagged code version {v}, current is {code_version}" for v in t.loc[stale, "code_version"]]
    ok = category == ""
    bad = ok & (t["test_accuracy"].isna() | t["dataset"].isna() | t["pipeline"].isna())
    category[bad] = "incomplete"
    reason[bad] = "no test_accuracy / dataset / pipeline recorded"
    ok = category == ""
    # Study runs (e.g. data-efficiency subsets) have their own reports: the leaderboards keep only those that share
    # a protocol with ordinary runs or train on the whole training set.
    study = raw["tags.study"] if "tags.study" in raw else pd.Series([None] * len(raw))
    t["study"] = study.where(study.notna(), None)
    plain = set(zip(t.loc[ok & t["study"].isna(), "dataset"], t.loc[ok & t["study"].isna(), "protocol"]))
    subset = ok & t["study"].notna() & pd.Series(
        [(d, p) not in plain and json.loads(p).get("train_per_class") is not None
         for d, p in zip(t["dataset"], t["protocol"])], index=t.index)
    category[subset] = "study subset"
    reason[subset] = [f"{st} study run on a training subset (see `python -m bench study {st}`)"
                      for st in t.loc[subset, "study"]]
    ok = category == ""
    key = ["dataset", "protocol", "pipeline", "config", "hardware", "seed"]
    latest = t[ok].sort_values("start_time").groupby(key, dropna=False).tail(1).index
    superseded = ok & ~t.index.isin(latest)
    category[superseded] = "superseded"
    reason[superseded] = "an identical job has a later FINISHED run"

    t["category"], t["reason"] = category, reason
    excluded = t[category != ""][["run_name", "run_id", "status", "category", "reason", "error", "start_time"]]
    excluded = excluded.sort_values("start_time").drop(columns="start_time").reset_index(drop=True)
    used = t[category == ""].copy()

    # Sections: a dataset under one protocol, named by the split options that differ from the defaults or
    # between the dataset's protocols (e.g. "mnist5k (train_per_class=50)").
    defaults = SplitOptions().as_params()
    used["section"] = used["dataset"]
    for ds, g in used.groupby("dataset"):
        protos = sorted(g["protocol"].unique())
        dicts = [json.loads(p) for p in protos]
        differing = {k for k in {k for d in dicts for k in d}
                     if len({json.dumps(d.get(k), default=str) for d in dicts}) > 1}
        labels = {p: _protocol_label(ds, d, defaults, differing, False) for p, d in zip(protos, dicts)}
        if len(set(labels.values())) < len(labels):  # never merge two protocols under one name
            labels = {p: _protocol_label(ds, d, defaults, differing, True) for p, d in zip(protos, dicts)}
        used.loc[g.index, "section"] = [labels[p] for p in g["protocol"]]
    # Row labels: the pipeline name, plus the differing parameters when one pipeline ran in several configs.
    used["label"] = used["pipeline"]
    for (_, pipe), g in used.groupby(["section", "pipeline"]):
        cfgs = sorted(g["config"].unique())
        if len(cfgs) > 1:
            labels = dict(zip(cfgs, _differing_label([json.loads(c) for c in cfgs])))
            used.loc[g.index, "label"] = [f"{pipe} [{labels[c]}]" for c in g["config"]]
    hw = used["hardware"].value_counts().rename_axis("hardware").reset_index(name="runs")
    hw.insert(0, "id", [f"H{i + 1}" for i in range(len(hw))])
    used["hw"] = used["hardware"].map(dict(zip(hw["hardware"], hw["id"])))
    env_cols = [c for c in raw.columns if c.startswith("tags.env.")]
    env = raw.loc[used.index, env_cols].rename(columns=lambda c: c[len("tags.env."):])
    env.insert(0, "run_name", used["run_name"])
    return RunSet(used.reset_index(drop=True), excluded, hw, env.reset_index(drop=True), code_version)


COLOUR_FEATURES = ("colorhist", "hogcolor")  # features whose point is colour: meaningless on grayscale images


def leaderboard(section: pd.DataFrame) -> pd.DataFrame:
    """One row per (label, hardware): accuracy mean ± std over seeds, costs averaged, best per family marked."""
    rows = []
    for (label, hw), g in section.groupby(["label", "hw"], sort=False):
        acc = g["test_accuracy"].astype(float)
        first = g.sort_values("seed").iloc[0]
        rows.append({
            "pipeline": label, "family": first["family"], "features": first["features"],
            "colour_on_gray": first["features"] in COLOUR_FEATURES and first.get("n_channels") == 1,
            "classifier": first["classifier"], "hardware": hw, "n": len(g),
            "seeds": ",".join(str(s) for s in sorted(g["seed"].dropna().tolist())),
            "acc_mean": acc.mean(), "acc_std": acc.std(ddof=1) if len(g) > 1 else float("nan"),
            "val_mean": pd.to_numeric(g["val_accuracy"], errors="coerce").mean(),
            "bal_acc_mean": pd.to_numeric(g["test_balanced_accuracy"], errors="coerce").mean(),
            "macro_f1": g["test_macro_f1"].mean(),
            **{c: g[c].mean() for c in COST_COLUMNS},
            "peak_rss_mb": fresh_process_rss(g),
            "n_params": g["n_params"].mean(), "epochs_run": g["epochs_run"].mean(),
            "run_id": first["run_id"], "run_name": first["run_name"], "run_ids": ",".join(g["run_id"]),
            "run_by_seed": {int(sd): rid for sd, rid in zip(g["seed"], g["run_id"]) if pd.notna(sd)},
        })
    lb = pd.DataFrame(rows)
    if lb.empty:
        return lb
    lb = lb.sort_values(["acc_mean", "macro_f1"], ascending=False, kind="stable").reset_index(drop=True)
    lb["best_in_family"] = False
    for _, g in lb.groupby("family"):
        lb.loc[best_row(g).name, "best_in_family"] = True
    return lb


def fresh_process_rss(runs: pd.DataFrame) -> float:
    """Mean peak RSS of the runs measured first in a fresh process (``cvbench.jobs_before`` 0), NaN if none.

    A job's resident peak depends on what earlier jobs of its process left in the allocator (quick suite on
    mnist5k: cnn-small 108 MB as the sixth job, 168 MB as the third, after efficientnet_lite0 and lenet5), so
    only the fresh-process figure is comparable between rows (``run --isolate`` gives every job one);
    ``peak_alloc_mb`` does not depend on order and is shown for every run."""
    fresh = pd.to_numeric(runs["jobs_before"], errors="coerce").eq(0) if "jobs_before" in runs else False
    vals = pd.to_numeric(runs["peak_rss_mb"], errors="coerce")[fresh]
    return float(vals.mean()) if vals.notna().any() else float("nan")


def best_row(rows: pd.DataFrame) -> pd.Series:
    """The row chosen as best: highest mean *validation* accuracy (test is only reported, never used to
    choose). Rows without a validation split are chosen among only when none of them has one; then by test
    accuracy, and ``chosen_on`` says so."""
    has_val = rows["val_mean"].notna() if "val_mean" in rows else pd.Series(False, index=rows.index)
    if has_val.any():
        r = rows[has_val].sort_values(["val_mean", "acc_mean"], ascending=False, kind="stable").iloc[0].copy()
        r["chosen_on"] = "validation"
    else:
        r = rows.sort_values(["acc_mean"], ascending=False, kind="stable").iloc[0].copy()
        r["chosen_on"] = "test (no validation split)"
    return r


def pareto_front(cost: Any, score: Any) -> np.ndarray:
    """Boolean mask of points no other point beats: lower-or-equal cost and higher-or-equal score, one strictly.

    Points with a missing cost or score are never on the front.
    """
    c, s = np.asarray(cost, dtype=float), np.asarray(score, dtype=float)
    valid = np.isfinite(c) & np.isfinite(s)
    le, ge = c[None, :] <= c[:, None], s[None, :] >= s[:, None]  # [i, j]: j at least as good as i
    strict = (c[None, :] < c[:, None]) | (s[None, :] > s[:, None])
    dominated = (le & ge & strict & valid[None, :]).any(axis=1)
    return valid & ~dominated


@dataclass
class Verdict:
    section: str
    best: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # family → leaderboard row
    deep: dict[str, Any] | None = None
    gap_points: float | None = None  # best deep − best classical, in accuracy points
    fit_ratio: float | None = None  # deep / classical
    inference_ratio: float | None = None  # time per image, deep / classical
    size_ratio: float | None = None
    latency_ratio: float | None = None  # single-image latency, deep / classical
    same_hardware: bool = True
    within_noise: bool = False
    significance: dict[str, Any] | None = None  # McNemar + bootstrap CI of the gap, on one shared seed's predictions
    sentence: str = ""

    @property
    def significant(self) -> bool | None:
        return None if self.significance is None else bool(self.significance["significant"])

    def as_row(self) -> dict[str, Any]:
        def name(r: dict[str, Any] | None) -> str:
            return "" if r is None else f"{r['pipeline']} ({100 * r['acc_mean']:.2f}%)"

        return {"dataset": self.section, "best classical": name(self.best.get("classical")),
                "best scratch": name(self.best.get("scratch")), "best transfer": name(self.best.get("transfer")),
                "gap (points, deep − classical)": self.gap_points, "fit time ratio": self.fit_ratio,
                "inference time ratio": self.inference_ratio, "model size ratio": self.size_ratio,
                "latency ratio": self.latency_ratio, "same hardware": self.same_hardware,
                "McNemar p": None if self.significance is None else self.significance["p_value"],
                "significant": {None: "not tested", True: "yes", False: "no"}[self.significant],
                "verdict": self.sentence}


def _ratio(a: Any, b: Any) -> float | None:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0 or a < 0:
        return None
    return a / b


_LESS = {"fit time": "faster to fit", "inference time per image": "faster inference per image",
         "model size": "smaller model"}


def _times(r: float | None, what: str) -> str:
    """``12× the fit time`` / ``3× faster to fit`` (never ``1/3 of …``) / ``about the same fit time``."""
    if r is None:
        return f"unknown {what}"
    if r <= 0:
        return f"no measurable {what}"

    def f(x: float) -> str:
        return f"{x:,.0f}" if x >= 10 else f"{x:.1f}".removesuffix(".0")

    if r >= 1.1:
        return f"{f(r)}× the {what}"
    if r <= 1 / 1.1:
        return f"{f(1 / r)}× {_LESS.get(what, 'less ' + what)}"
    return f"about the same {what}"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


Compare = Callable[[str, str], dict[str, Any] | None]


def _shared_seed_runs(c: dict[str, Any], d: dict[str, Any]) -> tuple[int, str, str] | None:
    seeds = sorted(set(c.get("run_by_seed") or {}) & set(d.get("run_by_seed") or {}))
    return (seeds[0], c["run_by_seed"][seeds[0]], d["run_by_seed"][seeds[0]]) if seeds else None


def verdict(section: str, lb: pd.DataFrame, compare: Compare | None = None) -> Verdict:
    """The best pipeline of each family (chosen on validation), the deep-minus-classical test gap, cost
    ratios, and one sentence that says whether the gap is significant.

    ``compare(run_a, run_b)`` returns the paired test of two runs' stored test predictions
    (:func:`bench.studies.statistics.compare_runs`: McNemar, bootstrap CI of the accuracy gap); it is called for
    the chosen pair on their lowest shared seed. Without it (or without a shared seed) the sentence says the
    gap was not tested, and speaks of seed noise only when both rows have several seeds.
    """
    v = Verdict(section)
    for fam in FAMILIES:
        sub = lb[lb["family"] == fam] if not lb.empty else lb
        v.best[fam] = best_row(sub).to_dict() if len(sub) else None
    deep = [v.best[f] for f in DEEP if v.best[f] is not None]
    v.deep = best_row(pd.DataFrame(deep)).to_dict() if deep else None
    c, d = v.best["classical"], v.deep
    if c is None or d is None:
        present = [f for f in FAMILIES if v.best[f] is not None]
        top = lb.iloc[0] if not lb.empty else None
        missing = "deep (scratch or transfer)" if c is not None else "classical"
        v.sentence = (f"On {section}, no {missing} pipeline has a finished run yet, so there is no classical-vs-deep "
                      f"verdict" + (f"; best so far: {top['pipeline']} ({'/'.join(present)}) at "
                                    f"{_pct(top['acc_mean'])}." if top is not None else "."))
        return v
    v.gap_points = 100 * (d["acc_mean"] - c["acc_mean"])
    v.fit_ratio = _ratio(d["fit_time_s"], c["fit_time_s"])
    v.inference_ratio = _ratio(c["inference_img_per_s"], d["inference_img_per_s"])  # time/img = 1/throughput
    v.size_ratio = _ratio(d["model_size_mb"], c["model_size_mb"])
    v.latency_ratio = _ratio(d["latency_ms_per_img"], c["latency_ms_per_img"])
    v.same_hardware = d["hardware"] == c["hardware"]
    pair = _shared_seed_runs(c, d) if compare is not None else None
    if pair is not None:
        try:
            v.significance = compare(pair[1], pair[2])  # A = classical, B = deep
        except Exception:  # predictions missing or on other test images: say "not tested", never guess
            v.significance = None
        if v.significance is not None:
            v.significance["seed"] = pair[0]
    several = min(c["n"], d["n"]) > 1
    noise = np.nanmax([100 * c["acc_std"], 100 * d["acc_std"]]) if several else None
    if v.significance is not None:
        v.within_noise = not v.significance["significant"]
    else:
        v.within_noise = abs(v.gap_points) < 0.05 or (noise is not None and abs(v.gap_points) <= noise)
    dn, cn = f"{d['pipeline']} ({d['family']})", c["pipeline"]
    test_txt = _significance_text(v.significance, noise)
    chosen = {c.get("chosen_on"), d.get("chosen_on")} - {"validation", None}
    choice_txt = " Best pipelines were chosen on test accuracy: these runs have no validation split." if chosen else ""
    if v.within_noise:
        cheaper = "the classical one" if (v.fit_ratio or 1) >= 1 else "the deep one"
        r = v.fit_ratio if (v.fit_ratio or 1) >= 1 else (1 / v.fit_ratio if v.fit_ratio else None)
        what = "no significant difference between" if v.significance is not None else "no clear difference between"
        v.sentence = (f"On {section}, {what} the best deep pipeline, {dn}, and the best classical one, {cn} "
                      f"({_pct(d['acc_mean'])} vs {_pct(c['acc_mean'])}, {v.gap_points:+.2f} points; {test_txt}); "
                      + (f"{cheaper} fits {r:.1f}× faster." if r and r >= 1.1 else
                         "the two fit in about the same time." if r else f"{cheaper} is no slower to fit."))
    elif v.gap_points > 0:
        v.sentence = (f"On {section}, the best deep pipeline, {dn}, beats the best classical one, {cn}, by "
                      f"{v.gap_points:.2f} points ({_pct(d['acc_mean'])} vs {_pct(c['acc_mean'])}; {test_txt}) at "
                      f"{_times(v.fit_ratio, 'fit time')}, {_times(v.inference_ratio, 'inference time per image')} "
                      f"and {_times(v.size_ratio, 'model size')}.")
    else:
        inv = [None if r is None or r == 0 else 1 / r for r in (v.fit_ratio, v.inference_ratio, v.size_ratio)]
        v.sentence = (f"On {section}, the best classical pipeline, {cn}, beats the best deep one, {dn}, by "
                      f"{-v.gap_points:.2f} points ({_pct(c['acc_mean'])} vs {_pct(d['acc_mean'])}; {test_txt}) at "
                      f"{_times(inv[0], 'fit time')}, {_times(inv[1], 'inference time per image')} "
                      f"and {_times(inv[2], 'model size')}.")
    v.sentence += choice_txt
    if not v.same_hardware:
        v.sentence += (f" Careful: the two were timed on different hardware ({d['hardware']} vs {c['hardware']}), "
                       "so the cost ratios mix machines.")
    return v


def _significance_text(sig: dict[str, Any] | None, noise: float | None) -> str:
    """``McNemar p = 0.44, 95% CI of the gap [-0.9, +1.9] points`` (deep − classical), or why there is none."""
    seed_txt = f", seed std up to {noise:.2f} points" if noise is not None else ""
    if sig is None:
        return "significance not tested: no paired test predictions" + seed_txt
    lo, hi = (-100 * sig["diff_ci"][1], -100 * sig["diff_ci"][0])  # compare() gives classical − deep
    word = "significant" if sig["significant"] else "not significant"
    return (f"McNemar p = {sig['p_value']:.2g}, {word} at 5%; 95% CI of the gap [{lo:+.2f}, {hi:+.2f}] points "
            f"on seed {sig['seed']}" + seed_txt)


def environment_tables(runs: RunSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hardware table, software table) of the used runs: each distinct value with the number of runs."""
    env = runs.env
    hw_rows = []
    for _, h in runs.hardware.iterrows():
        sub = env[env.get("hardware", pd.Series(dtype=object)) == h["hardware"]] if "hardware" in env else env
        first = sub.iloc[0] if len(sub) else pd.Series(dtype=object)
        hw_rows.append({"id": h["id"], "hardware": h["hardware"], "runs": int(h["runs"]),
                        "cpu": first.get("cpu", ""), "cores": first.get("cores", ""),
                        "gpu": first.get("gpu", ""), "torch threads": first.get("torch_threads", "")})
    sw_rows = []
    keys = ["git_commit", "python", "platform"] + sorted(c for c in env.columns if c.startswith("pkg."))
    for k in keys:
        if k not in env:
            continue
        counts = env[k].fillna("(not recorded)").value_counts()
        value = "; ".join(f"{v} ({n} runs)" if len(counts) > 1 else str(v) for v, n in counts.items())
        sw_rows.append({"item": k.removeprefix("pkg."), "value": value, "distinct": len(counts)})
    return pd.DataFrame(hw_rows), pd.DataFrame(sw_rows, columns=["item", "value", "distinct"])
