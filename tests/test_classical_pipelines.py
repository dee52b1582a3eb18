"""The classical catalogue: every feature × classifier registered; end to end through the runner with caching."""

from __future__ import annotations

import numpy as np

from bench.runner import Job, run_grid
from pipelines.catalogue.classical import FEATURES, UNAVAILABLE, combos
from pipelines.classifiers import TunedFeatureClassifier
from pipelines.registry import create, get_spec, list_pipelines

QUIET = {"log": lambda *_: None}


def test_every_combination_is_registered():
    for feature, classifiers in combos().items():
        for clf in classifiers:
            spec = get_spec(f"{feature}-{clf}")
            assert (spec.family, spec.features, spec.classifier) == ("classical", feature, clf)
            assert {"tune", "tune_max_train", "seed"} <= set(spec.defaults)
            assert FEATURES[feature].defaults.keys() <= spec.defaults.keys()
            reason = UNAVAILABLE[feature]() if feature in UNAVAILABLE else None
            assert spec.unavailable_reason == reason
            if spec.available:
                est = create(spec.name)
                assert isinstance(est, TunedFeatureClassifier)
    assert {"hog-linsvm", "sift-bovw-rbfsvm", "colorhist-knn", "pixels-ridge", "lbp-chi2svm"} <= \
        set(list_pipelines(family="classical"))


def test_a_features_defaults_are_its_class_defaults_and_all_overridable():
    from pipelines.features.colorhist import ColorHistFeatures
    from pipelines.features.hog import HOGFeatures

    assert FEATURES["hog"].defaults == HOGFeatures().get_params()
    assert FEATURES["colorhist"].defaults == {**ColorHistFeatures().get_params(), "space": "rgb+hsv"}
    assert create("hog-knn", min_size=24).features.min_size == 24
    assert create("colorhist-knn", sqrt=True).features.sqrt is True
    assert "chunk_images" not in get_spec("sift-bovw-knn").defaults  # cache_exclude: does not change the features
    assert get_spec("sift-fv-logreg").defaults["max_iter"] == 200  # the classifier's, not the GMM's


def test_five_classifiers_share_one_hog_extraction(tracker):
    jobs = [Job("digits", p) for p in ("hog-linsvm", "hog-knn")]
    first, second = run_grid(jobs, tracker=tracker, **QUIET)
    assert first.status == second.status == "FINISHED"
    assert first.metrics["test_accuracy"] > 0.9 and second.metrics["test_accuracy"] > 0.9
    t1, t2 = tracker.run_data(first.run_id), tracker.run_data(second.run_id)
    assert t1["tags"]["features_cached"] == "false" and t2["tags"]["features_cached"] == "true"
    # the run that reused the features reports the time they originally took
    assert t2["metrics"]["feature_time_s"] == first.metrics["feature_time_s"]
    assert t1["params"]["tuned.linearsvm__C"] and t2["params"]["tuned.n_neighbors"]


def test_reused_test_features_still_count_in_inference_time(tracker, monkeypatch):
    """The second job reads the test set's HOG from the cache: its inference time still includes the
    extraction (here made slow on purpose: 50 ms a call, where reading the cache takes a few), and its latency
    is timed without the cache. Every extraction sleeps, ~60 calls here, so the delay is kept short."""
    import time

    from pipelines.features.hog import HOGFeatures

    delay = 0.05
    real = HOGFeatures._extract
    monkeypatch.setattr(HOGFeatures, "_extract", lambda self, X: (time.sleep(delay), real(self, X))[1])
    first, second = run_grid([Job("digits", p) for p in ("hog-linsvm", "hog-knn")], tracker=tracker, **QUIET)
    for r in (first, second):
        assert r.metrics["predict_time_s"] >= delay
        assert r.metrics["latency_ms_per_img"] >= 1000 * delay


def test_bovw_pipeline_end_to_end_and_cached(tracker):
    params = {"vocab_size": 64, "sample": 20_000, "pyramid": [1, 2]}
    first, second = run_grid([Job("digits", "sift-bovw-linsvm", params=params),
                              Job("digits", "sift-bovw-knn", params=params)], tracker=tracker, **QUIET)
    assert first.status == second.status == "FINISHED"
    assert first.metrics["test_accuracy"] > 0.7  # 8×8 digits upscaled: weak for SIFT, far above chance
    assert "n_empty_images" in first.metrics and first.metrics["n_features"] == 64 * 5
    d2 = tracker.run_data(second.run_id)
    assert d2["tags"]["features_cached"] == "true"
    assert d2["metrics"]["feature_time_s"] == first.metrics["feature_time_s"]


def test_same_command_twice_same_result(digits_split):
    d = digits_split
    a = create("colorhist-rbfsvm").fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val)
    b = create("colorhist-rbfsvm").fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val)
    assert a.fit_info_["chosen_params"] == b.fit_info_["chosen_params"]
    np.testing.assert_array_equal(a.predict(d.X_test), b.predict(d.X_test))
