"""Reports: known values in a temporary store, real quick runs, an empty store; self-contained HTML."""

from __future__ import annotations

import base64
import importlib.util
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import bench
from bench.browser import find_browser
from bench.cli import main
from bench.report.analysis import leaderboard, load_runs, pareto_front, verdict
from bench.report.build import build_report

CLASSES = ["a", "b", "c"]
Y_TRUE = np.arange(400) % 3  # the test labels of runs given predictions


def _preds(acc: float, seed: int) -> np.ndarray:
    """Predictions right on a ``acc`` fraction of Y_TRUE (which images: seeded)."""
    wrong = np.random.default_rng(seed).permutation(len(Y_TRUE))[: round((1 - acc) * len(Y_TRUE))]
    p = Y_TRUE.copy()
    p[wrong] = (p[wrong] + 1) % 3
    return p


def _run(tracker, dataset, pipeline, family, seed, acc, *, fit=1.0, img_s=1000.0, size=1.0, latency=1.0,
         hardware="CPU box ×2 | gpu: none", status="FINISHED", code_version=None, params=None, history=None,
         per_class=None, cm=None, epochs=None, error=None, split=None, study=None, val=None, preds=None,
         rss=500.0, jobs_before=None, predict_s=None):
    """One job run as the runner writes it (tags, params, metrics, artifacts), with chosen values."""
    exp = tracker.experiment_id(dataset)
    tags = {"cvbench.kind": "job", "cvbench.code_version": code_version or bench.CODE_VERSION, "dataset": dataset,
            "pipeline": pipeline, "seed": str(seed), "family": family, "features": pipeline.split("-")[0],
            "classifier": pipeline.split("-")[-1], "env.hardware": hardware, "env.git_commit": "abc123",
            "env.pkg.torch": "2.0", "env.python": "3.11", **({"study": study} if study else {}),
            **({"cvbench.jobs_before": str(jobs_before)} if jobs_before is not None else {})}
    run_id = tracker.start_run(exp, f"{dataset}/{pipeline}/{seed}", tags)
    split = {"val_fraction": 0.1, "train_per_class": None, **(split or {})}
    tracker.log_params(run_id, {"n_train": 90, "n_val": 10, "n_test": 30, "split_hash": "h0",
                                **{f"split.{k}": v for k, v in split.items()},
                                **{f"pipeline.{k}": v for k, v in (params or {}).items()}, "pipeline.seed": seed})
    if history:
        for step, rec in enumerate(history):
            tracker.log_metrics(run_id, rec, step=step)
    if status == "FINISHED":
        metrics = {"test_accuracy": acc, "test_macro_f1": acc - 0.01, "fit_time_s": fit,
                   "inference_img_per_s": img_s, "latency_ms_per_img": latency, "model_size_mb": size,
                   "peak_rss_mb": rss, "peak_alloc_mb": 100.0, "val_accuracy": acc if val is None else val,
                   **({"predict_time_s": predict_s} if predict_s is not None else {})}
        if epochs is not None:
            metrics["epochs_run"] = epochs
        tracker.log_metrics(run_id, metrics, step=len(history or []))
    files = {}
    if preds is not None:  # test predictions against Y_TRUE
        files["predictions.csv"] = pd.DataFrame({"test_index": np.arange(len(preds)), "y_true": Y_TRUE,
                                                 "y_pred": preds}).to_csv(index=False)
    if cm is not None:
        files["confusion_matrix.csv"] = pd.DataFrame(cm, index=CLASSES, columns=CLASSES).to_csv()
    if per_class is not None:
        rep = {c: {"precision": r, "recall": r, "f1-score": r, "support": 10} for c, r in zip(CLASSES, per_class)}
        rep["accuracy"] = {"precision": acc, "recall": acc, "f1-score": acc, "support": acc}
        files["per_class.csv"] = pd.DataFrame(rep).T.to_csv()
    if files:
        tracker.log_artifacts(run_id, files)
    if error:
        tracker.set_tags(run_id, {"cvbench.error": error})
    if status != "RUNNING":
        tracker.end_run(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def _known_store(tmp_path_factory):
    """A store with chosen values: 5 pipelines of 3 families, plus runs the report must exclude (built once)."""
    from bench.tracking import Tracker

    uri = f"sqlite:///{tmp_path_factory.mktemp('known') / 'mlflow.db'}"
    tracker = Tracker(uri)
    r = _run
    old = r(tracker, "toy", "cnn-small", "scratch", 0, 0.10, fit=50, params={"epochs": 3})  # superseded by the later seed-0 run below
    for s, a in enumerate([0.90, 0.92, 0.94]):
        r(tracker, "toy", "hog-svm", "classical", s, a, fit=1.0, img_s=10000, size=2.0, latency=0.2,
          cm=[[10, 0, 0], [0, 9, 1], [2, 0, 8]] if s == 0 else None, per_class=[1.0, 0.9, 0.8] if s == 0 else None)
    for s, a in enumerate([0.85, 0.87]):
        r(tracker, "toy", "pixels-knn", "classical", s, a, fit=0.1, img_s=500, size=8.0)
    r(tracker, "toy", "pixels-slow", "classical", 0, 0.80, fit=5.0)
    hist = [{"train_loss": 1.0 / (e + 1), "val_accuracy": 0.5 + 0.1 * e} for e in range(3)]
    for s, a in enumerate([0.96, 0.98]):
        r(tracker, "toy", "cnn-small", "scratch", s, a, fit=50, img_s=2000, size=0.5, latency=0.4, epochs=3,
          history=hist, cm=[[10, 0, 0], [0, 10, 0], [1, 0, 9]] if s == 0 else None,
          per_class=[1.0, 1.0, 0.9] if s == 0 else None, params={"epochs": 3})
    r(tracker, "toy", "resnet18-probe", "transfer", 0, 0.95, fit=20, img_s=300, size=40)
    # Another machine: never merged into the CPU box's row.
    r(tracker, "toy", "cnn-small", "scratch", 0, 0.60, fit=2, hardware="GPU box ×16 | gpu: H100",
      params={"epochs": 3})
    # Excluded: failed, never finished, stale code version.
    r(tracker, "toy", "hog-svm", "classical", 7, 0.0, status="FAILED", error="ValueError: boom")
    r(tracker, "toy", "hog-svm", "classical", 8, 0.0, status="RUNNING")
    r(tracker, "toy", "hog-svm", "classical", 9, 0.99, code_version="0-old")
    # Study runs: a training subset has its own report; one on the full training set joins its leaderboard row.
    r(tracker, "toy", "hog-svm", "classical", 0, 0.5, split={"train_per_class": 5}, study="data-efficiency")
    r(tracker, "toy", "pixels-knn", "classical", 2, 0.86, fit=0.1, img_s=500, size=8.0, study="data-efficiency")
    # toy2: a parameter added later (absent from older runs) does not split a row; a changed one does.
    r(tracker, "toy2", "mlp", "scratch", 0, 0.70, params={"width": 10})
    r(tracker, "toy2", "mlp", "scratch", 1, 0.72, params={"width": 10, "compile": False})
    r(tracker, "toy2", "mlp", "scratch", 0, 0.75, params={"width": 20, "compile": False})
    r(tracker, "toy2", "mlp", "scratch", 0, 0.50, params={"width": 10}, split={"max_train": 50})  # own section
    return uri, old


@pytest.fixture
def known_store(_known_store):
    from bench.tracking import Tracker

    uri, old = _known_store
    return Tracker(uri), old  # a fresh handle: Tracker() also points MLflow's global URI at its store


def test_known_values_leaderboard_pareto_verdict(known_store):
    tracker, old_id = known_store
    runs = load_runs(tracker)
    assert runs.exclusion_counts() == {"failed": 1, "unfinished": 1, "stale code version": 1, "superseded": 1,
                                       "study subset": 1}
    assert old_id in set(runs.excluded["run_id"])
    lb = leaderboard(runs.used[runs.used["section"] == "toy"])
    assert lb["pipeline"].tolist() == ["cnn-small", "resnet18-probe", "hog-svm", "pixels-knn", "pixels-slow",
                                       "cnn-small"]
    row = lb.set_index(["pipeline", "hardware"])
    assert row.loc[("hog-svm", "H1"), "acc_mean"] == pytest.approx(0.92)
    assert row.loc[("hog-svm", "H1"), "acc_std"] == pytest.approx(0.02)  # sample std over 3 seeds
    assert row.loc[("hog-svm", "H1"), "n"] == 3
    assert row.loc[("cnn-small", "H1"), "acc_mean"] == pytest.approx(0.97)  # no 0.10 (superseded), no 0.60 (GPU)
    assert row.loc[("cnn-small", "H1"), "acc_std"] == pytest.approx(np.std([0.96, 0.98], ddof=1))
    assert row.loc[("cnn-small", "H2"), "acc_mean"] == pytest.approx(0.60)
    assert np.isnan(row.loc[("pixels-slow", "H1"), "acc_std"])
    assert row.loc[("pixels-knn", "H1"), "n"] == 3 and row.loc[("pixels-knn", "H1"), "acc_mean"] == pytest.approx(0.86)
    best = lb[lb["best_in_family"]].set_index("family")["pipeline"].to_dict()
    assert best == {"scratch": "cnn-small", "transfer": "resnet18-probe", "classical": "hog-svm"}
    assert lb[lb["best_in_family"]]["hardware"].eq("H1").all()

    h1 = lb[lb["hardware"] == "H1"]
    front = dict(zip(h1["pipeline"], pareto_front(h1["fit_time_s"], h1["acc_mean"])))
    assert front == {"cnn-small": True, "resnet18-probe": True, "hog-svm": True, "pixels-knn": True,
                     "pixels-slow": False}

    v = verdict("toy", lb)
    assert v.best["classical"]["pipeline"] == "hog-svm" and v.deep["pipeline"] == "cnn-small"
    assert v.gap_points == pytest.approx(5.0)
    assert v.fit_ratio == pytest.approx(50.0)
    assert v.inference_ratio == pytest.approx(5.0)  # 10000 vs 2000 img/s
    assert v.size_ratio == pytest.approx(0.25)
    assert v.latency_ratio == pytest.approx(2.0)
    assert v.same_hardware and not v.within_noise
    assert v.sentence == ("On toy, the best deep pipeline, cnn-small (scratch), beats the best classical one, "
                          "hog-svm, by 5.00 points (97.00% vs 92.00%; significance not tested: no paired test "
                          "predictions, seed std up to 2.00 points) at 50× the fit time, 5× the inference time "
                          "per image and 4× smaller model.")


def test_rows_split_on_changed_params_only(known_store):
    runs = load_runs(known_store[0], datasets=["toy2"])
    assert sorted(runs.used["section"].unique()) == ["toy2", "toy2 (max_train=50)"]
    lb = leaderboard(runs.used[runs.used["section"] == "toy2"]).set_index("pipeline")
    assert sorted(lb.index) == ["mlp [width=10]", "mlp [width=20]"]
    assert lb.loc["mlp [width=10]", "n"] == 2 and lb.loc["mlp [width=10]", "acc_mean"] == pytest.approx(0.71)
    assert "no classical pipeline has a finished run yet" in verdict("toy2", lb.reset_index()).sentence


def test_peak_rss_is_reported_only_where_measured_first_in_a_fresh_process(tmp_path):
    """A job's resident peak depends on what its process ran before, so the leaderboard shows the RSS of runs
    measured first in a fresh process (jobs_before 0) only; the allocated peak is shown for every run."""
    from bench.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _run(tracker, "toy", "cnn-small", "scratch", 0, 0.9, rss=108.0, jobs_before=0)
    _run(tracker, "toy", "cnn-small", "scratch", 1, 0.9, rss=168.0, jobs_before=2)  # after two other jobs
    _run(tracker, "toy", "lenet5", "scratch", 0, 0.8, rss=146.0, jobs_before=5)
    _run(tracker, "toy", "mlp", "scratch", 0, 0.7, rss=50.0)  # from before the tag was recorded: unknown
    lb = leaderboard(load_runs(tracker).used).set_index("pipeline")
    assert lb.loc["cnn-small", "peak_rss_mb"] == pytest.approx(108.0)  # not the mean with the 168 MB run
    assert np.isnan(lb.loc["lenet5", "peak_rss_mb"]) and np.isnan(lb.loc["mlp", "peak_rss_mb"])
    assert (lb["peak_alloc_mb"] == 100.0).all()


def test_throughput_from_a_few_millisecond_prediction_is_marked_approximate(tmp_path):
    """A test-split prediction under 10 ms runs at one of two speeds on a small VM (docs/measurements.md#execute),
    so the leaderboard marks the throughput it gives with ≈ and says why; longer ones and old runs are unmarked."""
    from bench.report.build import leaderboard_table
    from bench.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _run(tracker, "toy", "pixels-logreg", "classical", 0, 0.9, img_s=250_000.0, predict_s=0.004)
    _run(tracker, "toy", "cnn-small", "scratch", 0, 0.8, img_s=11_000.0, predict_s=0.09)
    _run(tracker, "toy", "mlp", "scratch", 0, 0.7, img_s=50_000.0)  # recorded before predict_time_s existed
    table = leaderboard_table("toy", leaderboard(load_runs(tracker).used), multi_hw=False)
    cells = dict(zip(table.display["pipeline"], table.display["inference img/s"]))
    assert cells["pixels-logreg"].startswith("≈") and cells["pixels-logreg"][1:].replace(",", "") == "250000"
    assert not cells["cnn-small"].startswith("≈") and not cells["mlp"].startswith("≈")
    assert "under 10 ms" in table.caption


def test_pareto_front_edge_cases():
    cost = [1.0, 1.0, 2.0, np.nan, 0.5, 3.0]
    acc = [0.9, 0.8, 0.95, 0.99, 0.9, 0.95]
    # (1, .8) is dominated by (1, .9); (1, .9) by (0.5, .9); (3, .95) by (2, .95); NaN cost never on the front.
    assert pareto_front(cost, acc).tolist() == [False, False, True, False, True, False]


def _lb(rows):
    base = {"features": "f", "classifier": "c", "hardware": "H1", "macro_f1": 0.5, "feature_time_s": np.nan,
            "peak_rss_mb": 1.0, "latency_ms_per_img": 1.0, "model_size_mb": 1.0, "inference_img_per_s": 100.0}
    return pd.DataFrame([{**base, **r} for r in rows]).sort_values("acc_mean", ascending=False)


def test_verdict_classical_wins_ties_and_missing_family():
    lb = _lb([{"pipeline": "hog-svm", "family": "classical", "acc_mean": 0.95, "acc_std": np.nan, "n": 1,
               "fit_time_s": 2.0, "inference_img_per_s": 1000.0},
              {"pipeline": "cnn", "family": "scratch", "acc_mean": 0.90, "acc_std": np.nan, "n": 1,
               "fit_time_s": 60.0}])
    v = verdict("d", lb)
    assert v.gap_points == pytest.approx(-5.0)
    assert "the best classical pipeline, hog-svm, beats the best deep one, cnn (scratch), by 5.00 points" in v.sentence
    assert "30× faster to fit" in v.sentence and "10× faster inference per image" in v.sentence

    tie = _lb([{"pipeline": "hog-svm", "family": "classical", "acc_mean": 0.950, "acc_std": 0.010, "n": 3,
                "fit_time_s": 2.0},
               {"pipeline": "cnn", "family": "scratch", "acc_mean": 0.955, "acc_std": 0.004, "n": 3,
                "fit_time_s": 20.0}])
    v = verdict("d", tie)
    assert v.within_noise and "no clear difference between" in v.sentence and "seed std up to 1.00" in v.sentence
    assert "the classical one fits 10.0× faster" in v.sentence

    only = _lb([{"pipeline": "hog-svm", "family": "classical", "acc_mean": 0.9, "acc_std": np.nan, "n": 1,
                 "fit_time_s": 2.0}])
    v = verdict("d", only)
    assert v.gap_points is None and "no deep (scratch or transfer) pipeline has a finished run yet" in v.sentence

    hw = _lb([{"pipeline": "hog-svm", "family": "classical", "acc_mean": 0.9, "acc_std": np.nan, "n": 1,
               "fit_time_s": 2.0},
              {"pipeline": "cnn", "family": "scratch", "acc_mean": 0.99, "acc_std": np.nan, "n": 1,
               "fit_time_s": 2.0, "hardware": "H2"}])
    assert "different hardware" in verdict("d", hw).sentence


def _images(html: str) -> list[Image.Image]:
    out = []
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html):
        im = Image.open(io.BytesIO(base64.b64decode(data)))
        im.load()  # decodes every pixel, not just the header
        out.append(im)
    return out


def _assert_self_contained(html: str) -> None:
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs, "expected at least the embedded figures"
    assert all(r.startswith(("data:", "#")) for r in refs), [r[:60] for r in refs if not r.startswith("data:")]
    assert not re.search(r"https?://", html.split("<body>", 1)[0])  # no external CSS, fonts or scripts
    assert "<script" not in html and "<link" not in html


def test_report_files_on_known_store(known_store, tmp_path):
    tracker, _ = known_store
    res = build_report(tracker, out=tmp_path / "rep")
    out = res.out
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    _assert_self_contained(html)
    images = _images(html)
    # toy: fit time, throughput, epoch curves, confusion pair, per-class; two toy2 sections: the two cost plots.
    assert len(images) == 9 and all(im.size[0] > 100 and im.size[1] > 100 for im in images)
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        [f"toy_{n}.png" for n in ("acc_vs_fit_time", "acc_vs_throughput", "epochs", "confusion", "per_class")]
        + [f"toy2{s}_acc_vs_{n}.png" for s in ("", "_max_train_50") for n in ("fit_time", "throughput")])
    for text in (md, html):
        assert "Runs used: 15 of the 20 job runs in the store" in text
        assert "1 failed, 1 stale code version, 1 study subset, 1 superseded, 1 unfinished" in text
        assert "92.00 ± 2.00 (n=3)" in text  # hog-svm
        assert "beats the best classical one, hog-svm, by 5.00 points" in text
        assert "different hardware" in text and "H2 = GPU box ×16 | gpu: H100" in text
        assert "ValueError: boom" in text
        assert "cnn-small is better on 2 of 3 classes" in text  # per_class.csv: b +10, c +10 points
    for t in ("leaderboard_toy", "verdict", "environment_hardware", "environment_software", "runs_excluded"):
        assert (out / "tables" / f"{t}.csv").stat().st_size > 0
        assert "\\begin{tabular}" in (out / "tables" / f"{t}.tex").read_text()
    csv = pd.read_csv(out / "tables" / "leaderboard_toy.csv")
    hog = csv[csv["pipeline"] == "hog-svm"].iloc[0]
    assert hog["acc_mean"] == pytest.approx(0.92) and hog["best_in_family"] and hog["pareto_fit_time"]
    tex = (out / "tables" / "leaderboard_toy.tex").read_text()
    assert "\\textbf{hog-svm}" not in tex  # no whole rows in bold: only each column's best cell
    top = csv["acc_mean"].idxmax()
    assert f"\\textbf{{{100 * csv['acc_mean'][top]:.2f}" in tex
    assert tex.count("\\textbf{") <= 8  # one per numeric column at most
    assert "\\begin{tabular}{rlllllr" in tex  # rank right-aligned, names left, numbers right
    assert pd.read_csv(out / "tables" / "runs_used.csv").shape[0] == 15


def test_report_on_empty_store_then_only_failed_runs(isolated_results, capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "No runs in the tracking store yet" in out and "make bench" in out
    assert not (isolated_results / "report").exists()
    assert main(["report", "--dataset", "nosuchset"]) == 0
    assert "No runs for dataset(s) nosuchset in the tracking store" in capsys.readouterr().out

    from bench.tracking import Tracker

    _run(Tracker(), "toy", "hog-svm", "classical", 0, 0.0, status="FAILED")
    assert main(["report"]) == 0
    assert "No usable runs: all 1 job run(s) in the store were excluded (1 failed)" in capsys.readouterr().out
    assert not (isolated_results / "report").exists()


def test_report_on_real_quick_runs(tracker, isolated_results, capsys):
    from bench.runner import Job, run_grid

    jobs = [Job("digits", "pixels-knn", 0), Job("digits", "pixels-knn", 1),
            Job("digits", "cnn-small", 0, {"epochs": 1, "width": 8}), Job("digits", "colorhist-knn", 0)]
    results = run_grid(jobs, tracker=tracker, log=lambda m: None)
    assert [r.status for r in results] == ["FINISHED"] * 4
    # the version the runner records is the one the report keeps: none of these runs is excluded as stale
    assert {tracker.run_data(r.run_id)["tags"]["cvbench.code_version"] for r in results} == {bench.CODE_VERSION}
    assert load_runs(tracker, ["digits"]).exclusion_counts() == {}
    assert main(["report", "--dataset", "digits"]) == 0
    printed = capsys.readouterr().out
    out = isolated_results / "report"
    assert str(out / "report.html") in printed and "On digits, the best" in printed
    html = (out / "report.html").read_text()
    _assert_self_contained(html)
    assert len(_images(html)) == 5  # incl. epoch curves from metric history, confusion + per-class from artifacts
    lb = pd.read_csv(out / "tables" / "leaderboard_digits.csv")
    assert set(lb["pipeline"]) == {"pixels-knn", "cnn-small", "colorhist-knn"}
    md = (out / "report.md").read_text()  # colour features on grayscale images are marked, nothing else is
    assert "colorhist-knn (colour features on a grayscale dataset)" in md
    assert "pixels-knn (colour" not in md and md.count("(colour features on a grayscale dataset)") == 1
    knn = lb[lb["pipeline"] == "pixels-knn"].iloc[0]
    runs = pd.read_csv(out / "tables" / "runs_used.csv")
    knn_accs = runs.loc[runs["pipeline"] == "pixels-knn", "test_accuracy"]
    assert knn["n"] == 2 and knn["acc_mean"] == pytest.approx(knn_accs.mean())
    assert 0.9 < knn["acc_mean"] <= 1.0 and knn["fit_time_s"] > 0 and knn["inference_img_per_s"] > 0
    verdict_csv = pd.read_csv(out / "tables" / "verdict.csv")
    assert verdict_csv.loc[0, "best classical"].startswith("pixels-knn")
    assert verdict_csv.loc[0, "best scratch"].startswith("cnn-small")


def test_report_reads_the_store_only():
    """bench.report never imports the runner (nor mlflow directly): it reads the tracking store."""
    import subprocess
    import sys

    code = ("import sys, bench.report.build, bench.report.analysis, bench.report.plots, bench.report.render; "
            "print('bench.runner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    src = "".join(p.read_text() for p in (Path(bench.__file__).parent / "report").glob("*.py"))
    assert "import mlflow" not in src and "bench.runner" not in src


# -- choices on validation, verdicts that agree with their significance test, export = report rows -------------
@pytest.fixture
def disagreeing_store(tracker):
    """Validation and test rankings disagree: by validation hog-svm and cnn-small are best, by test
    pixels-knn and mlp."""
    r = _run
    r(tracker, "vt", "hog-svm", "classical", 0, 0.80, val=0.95, preds=_preds(0.80, 1))
    r(tracker, "vt", "pixels-knn", "classical", 0, 0.86, val=0.90, preds=_preds(0.86, 2))
    r(tracker, "vt", "cnn-small", "scratch", 0, 0.81, val=0.97, preds=_preds(0.81, 3), fit=10.0)
    r(tracker, "vt", "mlp", "scratch", 0, 0.95, val=0.85, preds=_preds(0.95, 4), fit=10.0)
    return tracker


def test_best_per_family_and_the_tested_pair_follow_validation(disagreeing_store):
    from bench.report.analysis import best_row
    from bench.studies.data_efficiency import envelopes
    from bench.studies.statistics import best_pair_comparison, compare_runs

    tracker = disagreeing_store
    lb = leaderboard(load_runs(tracker, ["vt"]).used)
    assert set(lb.loc[lb["best_in_family"], "pipeline"]) == {"hog-svm", "cnn-small"}
    assert best_row(lb)["pipeline"] == "cnn-small" and best_row(lb)["chosen_on"] == "validation"
    v = verdict("vt", lb, compare=lambda a, b: compare_runs(tracker, a, b))
    assert (v.best["classical"]["pipeline"], v.deep["pipeline"]) == ("hog-svm", "cnn-small")
    pair = best_pair_comparison(tracker, "vt")
    assert (pair["a"], pair["b"]) == ("hog-svm", "cnn-small")
    summary = pd.DataFrame([  # data-efficiency: at each size, the envelope's pipeline is the best on validation
        {"pipeline": "a", "family": "classical", "per_class": "10", "n_per_class": 10.0, "mean": 0.9, "val_mean": 0.7},
        {"pipeline": "b", "family": "classical", "per_class": "10", "n_per_class": 10.0, "mean": 0.6, "val_mean": 0.8},
        {"pipeline": "c", "family": "scratch", "per_class": "10", "n_per_class": 10.0, "mean": 0.5, "val_mean": 0.6}])
    env = envelopes(summary).iloc[0]
    assert env["classical_pipeline"] == "b" and env["classical"] == pytest.approx(0.6)


def test_verdict_states_significance_and_no_seed_noise_with_one_seed(tracker):
    from bench.studies.statistics import compare_runs

    r = _run
    r(tracker, "sig", "hog-svm", "classical", 0, 0.900, preds=_preds(0.900, 1))
    r(tracker, "sig", "cnn-small", "scratch", 0, 0.905, preds=_preds(0.905, 1))  # mostly the same images wrong
    r(tracker, "big", "hog-svm", "classical", 0, 0.70, preds=_preds(0.70, 1))
    r(tracker, "big", "cnn-small", "scratch", 0, 0.95, preds=_preds(0.95, 2))

    def v(ds):
        return verdict(ds, leaderboard(load_runs(tracker, [ds]).used), compare=lambda a, b: compare_runs(tracker, a, b))

    small = v("sig")
    assert small.significant is False and small.significance["p_value"] >= 0.05
    assert "no significant difference between" in small.sentence and "McNemar p = " in small.sentence
    assert "beats" not in small.sentence and "seed" not in small.sentence.split("on seed 0")[-1]
    assert "seed noise" not in small.sentence and "seed std" not in small.sentence
    big = v("big")
    assert big.significant is True and "beats the best classical one, hog-svm, by 25.00 points" in big.sentence
    assert "significant at 5%" in big.sentence and "not significant" not in big.sentence
    lo, hi = (-100 * x for x in big.significance["diff_ci"][::-1])
    assert lo > 0 and f"[{lo:+.2f}, {hi:+.2f}]" in big.sentence  # the CI of deep − classical, in points
    row = pd.DataFrame([small.as_row()])
    assert row["significant"].item() == "no" and row["McNemar p"].item() == pytest.approx(small.significance["p_value"])


def test_export_keeps_every_protocol_and_names_it(tracker, capsys):
    from bench.report.export import latest_runs

    _run(tracker, "toy", "pixels-knn", "classical", 0, 0.9, params={"k": None})
    _run(tracker, "toy", "pixels-knn", "classical", 0, 0.3, split={"max_train": 5}, params={"k": None})
    df = latest_runs(tracker, ["toy"])
    assert len(df) == 2 and sorted(df["split.max_train"].fillna(-1)) == [-1, 5]
    assert {"section", "param.k", "split.val_fraction", "concurrency", "test_balanced_accuracy"} <= set(df.columns)
    assert main(["export", "--format", "csv", "-d", "toy"]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(out) == 2 and set(out["section"]) == {"toy", "toy (max_train=5)"}


@pytest.mark.skipif(find_browser() is None or importlib.util.find_spec("selenium") is None,
                    reason="headless Chromium absent (apt-get install chromium chromium-driver; pip install selenium)")
@pytest.mark.timeout(300)
def test_report_html_in_a_real_browser(known_store, tmp_path):
    """Every figure loads, nothing is fetched from outside, and the page logs no console error."""
    from bench.browser import headless, page_check

    tracker, _ = known_store
    res = build_report(tracker, out=tmp_path / "rep")
    driver = headless()
    try:
        check = page_check(driver, (res.out / "report.html").as_uri())
        assert len(check["images"]) == 9  # the figures test_report_files_on_known_store counts
        assert check["broken_images"] == [] and check["console_errors"] == [], check
        assert check["external_requests"] == []
        assert driver.execute_script("return document.querySelector('nav a').getAttribute('href')") == "#verdict"
        assert driver.execute_script("return document.getElementById('verdict') !== null")
    finally:
        driver.quit()


def test_cost_plot_labels_never_overlap():
    """Pipelines at nearly the same cost and accuracy (hog-linsvm over cnn-small on mnist5k): labels move apart,
    and tick labels are short (10k, not 10,000 beside 20,000)."""
    from bench.report.plots import _tick, cost_accuracy_figure, pyplot

    assert [_tick(v) for v in (0.05, 3, 1000, 20000, 2.5e6)] == ["0.05", "3", "1k", "20k", "2.5M"]
    names = ["hog-linsvm", "cnn-small", "hog-logreg", "pixels-knn", "lenet5", "sift-bovw-linsvm"]
    lb = pd.DataFrame({"pipeline": names, "family": ["classical", "scratch", "classical", "classical", "scratch",
                                                     "classical"],
                       "hardware": "cpu", "fit_time_s": [10.0, 10.5, 10.2, 9.8, 11.0, 10.1],
                       "acc_mean": [0.978, 0.977, 0.976, 0.978, 0.977, 0.976], "acc_std": np.nan})
    fig = cost_accuracy_figure(lb, "fit_time_s", "fit time (s)", "crowded")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == len(names)
    overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    pyplot().close(fig)
    assert overlaps == []
