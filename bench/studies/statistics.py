"""Is a difference real? McNemar's test on paired test predictions, bootstrap CIs, mean ± std over seeds.

Everything works on stored predictions (the ``predictions.csv`` artifact every job run has: ``test_index,
y_true, y_pred``), so any pair of runs can be compared later without rerunning anything.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

EXACT_BELOW = 25  # discordant pairs below this: exact binomial test (the chi-square approximation is poor)
ALPHA = 0.05


@dataclass(frozen=True)
class McNemarResult:
    n: int
    a_only: int  # A right, B wrong
    b_only: int  # A wrong, B right
    statistic: float
    p_value: float
    method: str  # "exact" (binomial) or "chi2-cc" (chi-square with continuity correction)

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, exact: bool | None = None
            ) -> McNemarResult:
    """McNemar's test of equal error rates of two classifiers on the same test images.

    ``exact=None`` chooses: the exact two-sided binomial test when there are fewer than 25 discordant pairs,
    else the chi-square statistic with Edwards' continuity correction, ``(|b - c| - 1)^2 / (b + c)``.
    """
    from scipy import stats

    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not (y.shape == a.shape == b.shape):
        raise ValueError(f"predictions must align: {y.shape}, {a.shape}, {b.shape}")
    ra, rb = a == y, b == y
    n01, n10 = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
    disc = n01 + n10
    use_exact = disc < EXACT_BELOW if exact is None else exact
    if disc == 0:
        return McNemarResult(len(y), n01, n10, 0.0, 1.0, "exact" if use_exact else "chi2-cc")
    if use_exact:
        p = stats.binomtest(min(n01, n10), disc, 0.5).pvalue
        return McNemarResult(len(y), n01, n10, float(min(n01, n10)), float(min(1.0, p)), "exact")
    chi2 = (abs(n01 - n10) - 1) ** 2 / disc
    return McNemarResult(len(y), n01, n10, float(chi2), float(stats.chi2.sf(chi2, 1)), "chi2-cc")


def bootstrap_ci(correct: np.ndarray, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap CI of the accuracy (mean of the 0/1 ``correct`` vector), via scipy.stats.bootstrap."""
    from scipy import stats

    c = np.asarray(correct, dtype=float)
    if c.min() == c.max():  # every resample has the same mean; scipy warns about the degenerate case
        return float(c[0]), float(c[0])
    res = stats.bootstrap((c,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_bootstrap_diff_ci(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                             n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
                             ) -> tuple[float, float]:
    """Percentile bootstrap CI of ``acc(A) - acc(B)``, resampling test images (pairs kept together)."""
    y = np.asarray(y_true)
    d = (np.asarray(pred_a) == y).astype(float) - (np.asarray(pred_b) == y).astype(float)
    return bootstrap_ci(d, n_resamples, confidence, seed)


def mean_std(values: list[float] | np.ndarray) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


# -- stored predictions -------------------------------------------------------------------------------------
def load_predictions(tracker: Any, run_id: str) -> pd.DataFrame:
    """The ``predictions.csv`` artifact of a run (columns ``test_index, y_true, y_pred``)."""
    return pd.read_csv(io.StringIO(tracker.artifact_text(run_id, "predictions.csv")))


def compare_predictions(pa: pd.DataFrame, pb: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """McNemar + bootstrap CIs for two prediction tables of the SAME test images (joined on ``test_index``)."""
    m = pa.merge(pb, on="test_index", suffixes=("_a", "_b"))
    if len(m) != len(pa) or len(m) != len(pb) or not (m["y_true_a"] == m["y_true_b"]).all():
        raise ValueError("the two runs were not evaluated on the same test images (different splits?)")
    y, a, b = m["y_true_a"].to_numpy(), m["y_pred_a"].to_numpy(), m["y_pred_b"].to_numpy()
    t = mcnemar(y, a, b)
    lo_a, hi_a = bootstrap_ci(a == y, seed=seed)
    lo_b, hi_b = bootstrap_ci(b == y, seed=seed)
    lo_d, hi_d = paired_bootstrap_diff_ci(y, a, b, seed=seed)
    return {"n_test": len(y), "acc_a": float(np.mean(a == y)), "ci_a": (lo_a, hi_a),
            "acc_b": float(np.mean(b == y)), "ci_b": (lo_b, hi_b), "diff_ci": (lo_d, hi_d), **t.as_dict()}


def compare_runs(tracker: Any, run_a: str, run_b: str, seed: int = 0) -> dict[str, Any]:
    """Compare two tracked runs from their stored predictions (no rerun)."""
    return compare_predictions(load_predictions(tracker, run_a), load_predictions(tracker, run_b), seed)


def _job_runs(tracker: Any, dataset: str) -> pd.DataFrame:
    """Finished job runs of ``dataset`` on the default training set (data-efficiency subsets excluded)."""
    df = tracker.runs_frame(experiment_names=[dataset])
    if df.empty:
        return df
    if "params.split.train_per_class" in df:
        df = df[df["params.split.train_per_class"].isin([None, "null", "None"]) |
                df["params.split.train_per_class"].isna()]
    return df.sort_values("start_time")


def best_pair_comparison(tracker: Any, dataset: str, a: str | None = None, b: str | None = None,
                         seed: int | None = None) -> dict[str, Any] | None:
    """Best classical vs best deep pipeline of ``dataset`` (or pipelines ``a`` vs ``b``) on one shared seed.

    "Best" is the highest mean *validation* accuracy over seeds (test accuracy only where no run has a
    validation split): the test set is never used to choose the pair it then tests. The two latest runs on the
    same split (same ``split_hash``) and seed are compared. Returns ``None`` when no such pair exists.
    """
    df = _job_runs(tracker, dataset)
    if df.empty:
        return None
    val = pd.to_numeric(df.get("metrics.val_accuracy", pd.Series(np.nan, index=df.index)), errors="coerce")
    df = df.assign(acc=df["metrics.test_accuracy"].astype(float), val=val,
                   deep=df["tags.family"].isin(["scratch", "transfer"]))
    means = df.groupby("tags.pipeline")["val" if df["val"].notna().any() else "acc"].mean()

    def pick(name: str | None, deep: bool) -> str | None:
        if name:
            return name
        cand = means[means.index.isin(df.loc[df["deep"] == deep, "tags.pipeline"])]
        return None if cand.empty else str(cand.idxmax())

    pa, pb = pick(a, False), pick(b, True)
    if not pa or not pb:
        return None
    ra, rb = df[df["tags.pipeline"] == pa], df[df["tags.pipeline"] == pb]
    keys = ["params.split_hash", "tags.seed"]
    common = ra[keys].merge(rb[keys]).drop_duplicates()
    if seed is not None:
        common = common[common["tags.seed"] == str(seed)]
    if common.empty:
        return None
    sh, sd = common.iloc[0]
    run_a = ra[(ra["params.split_hash"] == sh) & (ra["tags.seed"] == sd)].iloc[-1]
    run_b = rb[(rb["params.split_hash"] == sh) & (rb["tags.seed"] == sd)].iloc[-1]
    out = compare_runs(tracker, run_a["run_id"], run_b["run_id"])
    sa, sb = mean_std(ra["acc"].to_numpy()), mean_std(rb["acc"].to_numpy())
    out.update(dataset=dataset, a=pa, b=pb, run_a=run_a["run_id"], run_b=run_b["run_id"], seed=int(sd),
               family_a=run_a["tags.family"], family_b=run_b["tags.family"],
               seeds_a=f"{sa[0]:.4f} ± {sa[1]:.4f} (n={sa[2]})", seeds_b=f"{sb[0]:.4f} ± {sb[1]:.4f} (n={sb[2]})")
    return out


def format_comparison(r: dict[str, Any]) -> str:
    verdict = "significant" if r["significant"] else "NOT significant"
    return (f"{r.get('dataset', '')}: {r.get('a', 'A')} {100 * r['acc_a']:.2f}% "
            f"[{100 * r['ci_a'][0]:.2f}, {100 * r['ci_a'][1]:.2f}] vs {r.get('b', 'B')} {100 * r['acc_b']:.2f}% "
            f"[{100 * r['ci_b'][0]:.2f}, {100 * r['ci_b'][1]:.2f}] on {r['n_test']} test images; "
            f"difference CI [{100 * r['diff_ci'][0]:+.2f}, {100 * r['diff_ci'][1]:+.2f}] points; "
            f"McNemar ({r['method']}) {r['a_only']} vs {r['b_only']} discordant, p={r['p_value']:.3g}: {verdict} "
            f"at alpha={ALPHA}")
