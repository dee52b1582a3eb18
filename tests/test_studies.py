"""Studies: corruptions, statistics, crossover detector, nested subsets, robustness / data-efficiency / gallery
end to end on ``digits`` with tiny budgets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.studies.corruptions import CORRUPTIONS, corrupt
from bench.studies.data_efficiency import find_crossover, parse_sizes
from bench.studies.statistics import bootstrap_ci, mcnemar, paired_bootstrap_diff_ci

RANDOM = {"rotation", "affine", "perspective", "elastic", "occlusion", "clutter", "gaussian-noise"}


@pytest.fixture(scope="module")
def digits_test():
    from bench.datasets import SplitOptions, prepare

    return prepare("digits", SplitOptions()).X_test[:30]


@pytest.fixture(scope="module")
def rgb_crops():
    """Nine real 32×32 RGB crops of scikit-image's astronaut (a natural image, no uniform background)."""
    import cv2
    from skimage import data

    a = data.astronaut()
    return np.stack([cv2.resize(a[i * 60:i * 60 + 200, j * 60:j * 60 + 200], (32, 32), interpolation=cv2.INTER_AREA)
                     for i in range(3) for j in range(3)])


# -- corruptions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_contract(name, digits_test, rgb_crops):
    for X in (digits_test, rgb_crops):
        assert np.array_equal(corrupt(X, name, 0, seed=3), X)  # severity 0 is the identity
        dev = []
        for s in range(1, 6):
            Y = corrupt(X, name, s, seed=3)
            assert Y.shape == X.shape and Y.dtype == np.uint8
            assert np.array_equal(Y, corrupt(X, name, s, seed=3))  # deterministic per seed
            dev.append(np.abs(Y.astype(int) - X).mean())
        assert dev[0] > 0, f"{name} severity 1 changed nothing"
        assert dev[-1] > dev[0], f"{name}: severity 5 is not stronger than severity 1 ({dev})"
        if name in RANDOM:
            assert not np.array_equal(corrupt(X, name, 3, seed=3), corrupt(X, name, 3, seed=4))


def test_corruption_rejects_bad_input(digits_test):
    with pytest.raises(KeyError, match="unknown corruption"):
        corrupt(digits_test, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(digits_test, "blur", 6)
    with pytest.raises(ValueError, match="uint8"):
        corrupt(digits_test.astype(np.float32), "blur", 1)


def test_clutter_keeps_digit_foreground(digits_test):
    """Digits have a uniform black background: clutter must leave the (Otsu) foreground pixels untouched."""
    from skimage.filters import threshold_otsu

    Y = corrupt(digits_test, "clutter", 5, seed=0)
    for x, y in zip(digits_test[..., 0], Y[..., 0]):
        fg = x > threshold_otsu(x)
        assert np.array_equal(x[fg], y[fg])
        assert np.abs(y[~fg].astype(int) - x[~fg]).mean() > 10


# -- statistics ----------------------------------------------------------------------------------------------
def _pairs(both: int, a_only: int, b_only: int, neither: int):
    """Labels and two prediction vectors with the given contingency counts."""
    n = both + a_only + b_only + neither
    y = np.zeros(n, int)
    a = np.r_[np.zeros(both + a_only), np.ones(b_only + neither)].astype(int)
    b = np.r_[np.zeros(both), np.ones(a_only), np.zeros(b_only), np.ones(neither)].astype(int)
    return y, a, b


def test_mcnemar_hand_computed_and_libraries():
    from mlxtend.evaluate import mcnemar as mlx_mcnemar
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    # exact: 3 vs 10 discordant → p = 2 * P(X <= 3), X ~ Bin(13, 1/2) = 2 * (1 + 13 + 78 + 286) / 2^13
    y, a, b = _pairs(50, 3, 10, 5)
    r = mcnemar(y, a, b)
    assert (r.a_only, r.b_only, r.method) == (3, 10, "exact")
    assert r.p_value == pytest.approx(2 * 378 / 8192)
    assert r.p_value == pytest.approx(sm_mcnemar([[50, 3], [10, 5]], exact=True).pvalue)
    assert not r.significant
    # chi-square with continuity: 30 vs 50 → (|30 - 50| - 1)^2 / 80 = 4.5125
    y, a, b = _pairs(400, 30, 50, 20)
    r = mcnemar(y, a, b)
    assert r.method == "chi2-cc" and r.statistic == pytest.approx(4.5125)
    sm = sm_mcnemar([[400, 30], [50, 20]], exact=False, correction=True)
    assert r.p_value == pytest.approx(sm.pvalue) and r.statistic == pytest.approx(sm.statistic)
    chi2, p = mlx_mcnemar(np.array([[400, 30], [50, 20]]), corrected=True)
    assert r.p_value == pytest.approx(p) and r.statistic == pytest.approx(chi2)
    assert r.significant  # p ≈ 0.034
    # no discordant pairs: nothing to test
    y, a, b = _pairs(10, 0, 0, 3)
    assert mcnemar(y, a, b).p_value == 1.0


def test_bootstrap_ci_agrees_with_normal_approximation_and_plain_resampling():
    rng = np.random.default_rng(0)
    correct = rng.random(2000) < 0.9
    acc = correct.mean()
    lo, hi = bootstrap_ci(correct, seed=1)
    half = 1.96 * np.sqrt(acc * (1 - acc) / len(correct))
    assert lo < acc < hi
    assert lo == pytest.approx(acc - half, abs=0.003) and hi == pytest.approx(acc + half, abs=0.003)
    means = correct[rng.integers(0, len(correct), (5000, len(correct)))].mean(1)  # plain percentile bootstrap
    assert lo == pytest.approx(np.percentile(means, 2.5), abs=0.003)
    assert hi == pytest.approx(np.percentile(means, 97.5), abs=0.003)
    assert bootstrap_ci(np.ones(50, bool)) == (1.0, 1.0)
    y, a, b = _pairs(400, 30, 50, 20)  # B has 20 more right of 500: diff CI around -0.04, below 0
    dlo, dhi = paired_bootstrap_diff_ci(y, a, b)
    assert dlo < -0.04 < dhi < 0


# -- crossover -----------------------------------------------------------------------------------------------
def test_crossover_detector_on_synthetic_curves():
    sizes = [5, 10, 20, 50]
    r = find_crossover(sizes, [0.8] * 4, [0.5, 0.7, 0.85, 0.9])
    assert r["status"] == "crossover" and r["at"] == 20 and r["after"] == 10
    assert r["estimate"] == pytest.approx(10 * 2 ** (2 / 3))  # diff -0.1 → +0.05: 2/3 of the way in log size
    assert find_crossover(sizes, [0.8] * 4, [0.5, 0.6, 0.7, 0.79])["status"] == "never"
    assert find_crossover(sizes, [0.8] * 4, [0.5, 0.9, 0.7, 0.7])["status"] == "never"  # not sustained
    r = find_crossover(sizes, [0.8] * 4, [0.7, 0.9, 0.75, 0.85])  # ahead at 10, behind at 20, ahead for good at 50
    assert r["status"] == "crossover" and r["at"] == 50 and r["first_lead"] == 10 and "already led at 10" in r["text"]
    assert find_crossover(sizes, [0.5] * 4, [0.6] * 4)["status"] == "deep-ahead-everywhere"
    assert find_crossover(sizes, [0.8] * 4, [0.8] * 4)["status"] == "never"  # a tie is not overtaking
    # unsorted input and the numeric size of "all"
    r = find_crossover([129.4, 5, 20], [0.94, 0.8, 0.9], [0.96, 0.4, 0.6])
    assert r["status"] == "crossover" and r["at"] == pytest.approx(129.4)
    assert parse_sizes("all, 20,5,20") == [5, 20, None]


def test_min_steps_only_raises_network_epochs():
    from bench.studies.data_efficiency import with_min_steps
    from pipelines.registry import get_spec

    cnn = get_spec("cnn-small").resolve_params()
    assert with_min_steps(cnn, {}, 50, 240) == {"epochs": 240}  # 50 images = 1 step per epoch
    assert with_min_steps(cnn, {"lr": 0.1}, 1000, 240) == {"lr": 0.1, "epochs": 30}  # 8 steps per epoch
    assert with_min_steps(cnn, {}, 4000, 240) == {}  # 8 epochs x 32 steps already >= 240
    assert with_min_steps(get_spec("pixels-knn").resolve_params(), {}, 50, 240) == {}
    assert with_min_steps(cnn, {}, 50, 240, max_epochs=40) == {"epochs": 40}
    assert with_min_steps(cnn, {}, 50, 240, max_epochs=4) == {"epochs": 8}  # never below the own budget


# -- nested subsets ------------------------------------------------------------------------------------------
def test_nested_subsets_are_nested_and_seeded():
    from bench.datasets import SplitOptions, prepare

    prev = None
    for n in (5, 10, 20, 50, None):
        sp = prepare("digits", SplitOptions(train_per_class=n)).split
        if n is not None:
            assert np.all(np.bincount(prepare("digits", SplitOptions(train_per_class=n)).y_train) == n)
        if prev is not None:
            assert set(prev.train) <= set(sp.train)  # smaller subsets are contained in larger ones
            assert np.array_equal(prev.val, sp.val) and np.array_equal(prev.test, sp.test)
        prev = sp
    a = prepare("digits", SplitOptions(train_per_class=5, split_seed=0)).split
    b = prepare("digits", SplitOptions(train_per_class=5, split_seed=1)).split
    assert not np.array_equal(a.train, b.train)  # repeats draw different subsets


# -- end to end ----------------------------------------------------------------------------------------------
def test_data_efficiency_study_end_to_end(tracker, isolated_results):
    from bench.studies.data_efficiency import run_data_efficiency
    from bench.studies.results import data_efficiency_result, decode_ok, report_blocks
    from bench.studies.statistics import best_pair_comparison, compare_runs, load_predictions

    res = run_data_efficiency("digits", ["pixels-knn", "cnn-small"], sizes=[5, None], repeats=2,
                              repeat_below=10, params={"cnn-small": {"epochs": 3}}, tracker=tracker,
                              out_dir=isolated_results / "de", log=lambda m: None)
    runs = res["runs"]
    assert len(runs) == 2 * (2 + 1) and not res["failed"]
    # identical images for every pipeline: same split hash per (size, repeat); repeats differ
    jobs = tracker.runs_frame(["digits"]).set_index("run_id")
    runs["split_hash"] = jobs.loc[runs["run_id"], "params.split_hash"].to_numpy()
    per_cell = runs.groupby(["per_class", "repeat"])["split_hash"].nunique()
    assert (per_cell == 1).all()
    assert runs.query("per_class == '5'")["split_hash"].nunique() == 2
    assert set(runs.query("per_class == '5'")["n_per_class"]) == {5.0}
    assert runs.query("per_class == 'all'")["n_per_class"].iloc[0] > 100
    assert jobs.loc[runs.query("per_class == '5'")["run_id"], "tags.study"].eq("data-efficiency").all()
    s = res["summary"]
    assert set(s["repeats"]) == {2, 1}
    # each curve point is the mean test accuracy of its repeats, as recorded in the store
    acc = runs.assign(stored=jobs.loc[runs["run_id"], "metrics.test_accuracy"].to_numpy())
    expect = acc.groupby(["pipeline", "per_class"])["stored"].mean()
    got = s.set_index(["pipeline", "per_class"])["mean"]
    pd.testing.assert_series_equal(got.sort_index(), expect.sort_index(), check_names=False)
    # one pipeline per side: the crossover compares pixels-knn (classical) with cnn-small (deep), size by size
    sizes = sorted(s["n_per_class"].unique())
    side = {p: s[s["pipeline"] == p].set_index("n_per_class").loc[sizes, "mean"].tolist()
            for p in ("pixels-knn", "cnn-small")}
    assert res["crossover"]["status"] == find_crossover(sizes, side["pixels-knn"], side["cnn-small"])["status"]
    for f in ("data_efficiency.png", "summary.csv", "curve.csv", "crossover.json", "summary.md"):
        assert (isolated_results / "de" / f).exists()
    assert decode_ok((isolated_results / "de" / "data_efficiency.png").read_bytes())
    stored = data_efficiency_result(tracker, "digits")
    assert stored["crossover"]["status"] == res["crossover"]["status"] and decode_ok(stored["png"])
    # significance from stored predictions; the data-efficiency subsets are not used for it
    cmp_ = best_pair_comparison(tracker, "digits")
    assert (cmp_["a"], cmp_["b"]) == ("pixels-knn", "cnn-small") and cmp_["n_test"] == 359
    pa, pb = load_predictions(tracker, cmp_["run_a"]), load_predictions(tracker, cmp_["run_b"])
    manual = mcnemar(pa["y_true"], pa["y_pred"], pb["y_pred"])
    assert cmp_["p_value"] == pytest.approx(manual.p_value) and cmp_["a_only"] == manual.a_only
    assert cmp_["acc_a"] == pytest.approx(jobs.loc[cmp_["run_a"], "metrics.test_accuracy"])
    assert compare_runs(tracker, cmp_["run_a"], cmp_["run_b"])["p_value"] == pytest.approx(manual.p_value)
    blocks, tables, figures = report_blocks(tracker, ["digits"])
    heads = [b.text for b in blocks if b.kind in ("h2", "h3")]
    assert heads == ["Studies — digits", "Data efficiency — digits", "Significance — digits"]
    sig = next(t for t in tables if t.name == "study_significance_digits")
    assert sig.data["p_value"].iloc[0] == pytest.approx(manual.p_value)
    assert sig.bold == [not manual.significant]  # not-significant differences are marked
    assert all(decode_ok(f.png) for f in figures) and len(figures) == 1
    from bench.report.build import build_report

    rep = build_report(tracker, out=isolated_results / "report")
    md = (rep.out / "report.md").read_text()
    assert "## Studies — digits" in md and "Crossover:" in md
    assert decode_ok((rep.out / "plots" / "study_data_efficiency_digits.png").read_bytes())
    # rerunning resumes: every job is skipped, the curve is the same
    again = run_data_efficiency("digits", ["pixels-knn", "cnn-small"], sizes=[5, None], repeats=2,
                                repeat_below=10, params={"cnn-small": {"epochs": 3}}, tracker=tracker,
                                log=lambda m: None)
    pd.testing.assert_frame_equal(again["summary"][["pipeline", "per_class", "mean"]],
                                  s[["pipeline", "per_class", "mean"]])


def test_robustness_study_via_cli(tracker, isolated_results, capsys):
    from bench.cli import main
    from bench.studies.results import robustness_frame, robustness_table

    argv = ["study", "robustness", "-d", "digits", "-p", "pixels-logreg", "--corruption", "gaussian-noise",
            "--corruption", "rotation", "--severity", "1", "--severity", "5", "--out", str(isolated_results / "rob")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Robustness — digits" in out and "mCA" in out
    df = robustness_frame(tracker, "digits")
    acc = df.set_index(["corruption", "severity"])["accuracy"]
    assert len(df) == 1 + 2 * 2
    assert acc[("rotation", 5)] < acc[("rotation", 1)] < acc[("clean", 0)] + 1e-9
    assert acc[("gaussian-noise", 5)] < acc[("clean", 0)]
    t = robustness_table(df)
    assert t.loc["pixels-logreg", "relative_drop"] == pytest.approx(
        1 - np.mean([acc[(c, s)] for c in ("rotation", "gaussian-noise") for s in (1, 5)]) / acc[("clean", 0)])
    # clean accuracy equals what the runner measures for the same job (same split contract, seed, params)
    from bench.runner import Job, run_grid

    [r] = run_grid([Job("digits", "pixels-logreg")], tracker=tracker, log=lambda m: None)
    assert r.metrics["test_accuracy"] == pytest.approx(acc[("clean", 0)])
    assert (isolated_results / "rob" / "digits" / "robustness_heatmap.png").exists()
    from bench.studies.results import decode_ok, report_blocks

    blocks, tables, figures = report_blocks(tracker, ["digits"])
    [t] = [t for t in tables if t.name == "study_robustness_digits"]
    row = t.data.set_index("pipeline").loc["pixels-logreg"]
    assert row["mCA"] == pytest.approx((1 - row["relative_drop"]) * acc[("clean", 0)])
    assert [f.name for f in figures] == ["study_robustness_digits"] and decode_ok(figures[0].png)
    assert main(argv) == 0  # second time: skipped, nothing refitted
    assert "skip" in capsys.readouterr().out


def test_gallery_images_are_produced_and_decode(tracker, isolated_results):
    from bench.studies.gallery import make_gallery
    from bench.studies.results import decode_ok

    paths = make_gallery("digits", ["pixels-knn", "cnn-small"], isolated_results / "gal", n_images=4,
                         params={"cnn-small": {"epochs": 1}}, tracker=tracker, log=lambda m: None)
    names = {p.name for p in paths}
    assert {"hog.png", "sift_keypoints.png", "bovw_words.png", "color_histograms.png", "mistakes_pixels-knn.png",
            "cnn_filters_cnn-small.png", "cnn_feature_maps_cnn-small.png", "gradcam_cnn-small.png"} <= names
    for p in paths:
        assert decode_ok(p.read_bytes()), p


def test_frozen_feature_pipeline_becomes_one_network_for_grad_cam(tracker, isolated_results):
    """efficientnet_lite0 features → logistic regression, folded into backbone + nn.Linear: same predictions as
    the sklearn pipeline, and the gallery draws its Grad-CAM."""
    import torch

    from bench.datasets import SplitOptions
    from bench.runner import Job
    from bench.studies.fitting import fit_or_load, load_split
    from bench.studies.gallery import frozen_linear_model, make_gallery
    from bench.studies.results import decode_ok

    p, params = "efficientnet_lite0-features-logreg", {"resolution": 32}
    job = Job("digits", p, 0, params, SplitOptions(), None)
    data = load_split(job, None)
    est, _ = fit_or_load(job, data, log=lambda m: None)
    model, prep, _ = frozen_linear_model(est)
    X = data.X_test[:64]
    with torch.no_grad():
        logits = model(prep(torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))))).numpy()
    assert (est.classifier_.classes_[logits.argmax(1)] == est.predict(X)).mean() >= 0.98
    np.testing.assert_allclose(logits, est.classifier_.decision_function(est.transform(X)), rtol=1e-3, atol=1e-3)
    paths = make_gallery("digits", [p], isolated_results / "gal", n_images=4, params={p: params},
                         tracker=tracker, log=lambda m: None)
    cam = [q for q in paths if q.name == f"gradcam_{p}.png"]
    assert cam and decode_ok(cam[0].read_bytes())


def test_grad_cam_on_the_pretrained_backbone_finds_the_cat(one_torch_thread):
    """ImageNet efficientnet_lite0: chelsea pasted in one quadrant of a flat grey canvas is still a cat, and
    Grad-CAM's peak and most of its weight sit on that quadrant, wherever it is."""
    import cv2
    import torch
    from skimage import data as skdata

    from bench.studies.gallery import grad_cam
    from pipelines.transfer import ImagenetPrep, imagenet_model

    class Est:
        model_ = imagenet_model("efficientnet_lite0").eval()
        prep_ = ImagenetPrep.for_backbone("efficientnet_lite0", 224, torch.device("cpu"))

    cat = cv2.resize(skdata.chelsea()[:, 75:375], (112, 112), interpolation=cv2.INTER_AREA)
    X = np.full((2, 224, 224, 3), 124, np.uint8)
    X[0, :112, :112], X[1, 112:, 112:] = cat, cat
    cams, pred = grad_cam(Est(), X)
    assert all(281 <= c <= 285 for c in pred)
    for cam, quadrant in zip(cams, [np.s_[:112, :112], np.s_[112:, 112:]]):
        inside = np.zeros(cam.shape, bool)
        inside[quadrant] = True
        assert inside[np.unravel_index(cam.argmax(), cam.shape)]
        assert cam[inside].mean() > 1.8 * cam[~inside].mean()


def test_grad_cam_highlights_the_evidence():
    """A tiny CNN that fires on bright pixels and pools globally: Grad-CAM must sit on the bright square."""
    import torch
    from torch import nn

    from bench.studies.gallery import grad_cam

    class Est:
        def __init__(self):
            conv = nn.Conv2d(1, 4, 3, padding=1)
            self.model_ = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
            with torch.no_grad():
                conv.weight.zero_()
                conv.weight[:, 0, 1, 1] = 1.0  # each channel copies the pixel ...
                conv.bias.fill_(-0.5)  # ... and fires only where it is bright
                self.model_[4].weight.copy_(torch.tensor([[-1.0] * 4, [1.0] * 4]))
                self.model_[4].bias.zero_()
            self.device_ = None

        def prep_(self, x):
            return x.float() / 255

    X = np.zeros((2, 16, 16, 1), np.uint8)
    X[0, 2:6, 2:6] = 255
    X[1, 9:14, 10:15] = 255
    cams, pred = grad_cam(Est(), X)
    assert list(pred) == [1, 1]
    for cam, img in zip(cams, X[..., 0]):
        bright = img > 0
        assert cam[bright].mean() > 0.5 and cam[~bright].mean() < 0.2 * cam[bright].mean()
