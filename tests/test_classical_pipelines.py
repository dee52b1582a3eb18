"""The classical catalogue: every feature × classifier registered; end to end through the runner with caching."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from bench.runner import Job, run_grid
from pipelines import classifiers, registry
from pipelines.catalogue.classical import combos
from pipelines.classifiers import BuildContext, TunedFeatureClassifier, register_classifier
from pipelines.discovery import import_submodules
from pipelines.features import registry as feature_registry
from pipelines.features.registry import FEATURES, register_feature
from pipelines.registry import create, get_spec, list_pipelines

QUIET = {"log": lambda *_: None}


def test_every_combination_is_registered():
    for feature, suited in combos().items():
        for clf in suited:
            spec = get_spec(f"{feature}-{clf}")
            assert (spec.family, spec.features, spec.classifier) == ("classical", feature, clf)
            assert {"tune", "tune_max_train", "seed"} <= set(spec.defaults)
            assert FEATURES[feature].defaults.keys() <= spec.defaults.keys()
            assert spec.unavailable_reason == FEATURES[feature].unavailable_reason()
            if spec.available:
                est = create(spec.name)
                assert isinstance(est, TunedFeatureClassifier)
    assert {"hog-linsvm", "sift-bovw-rbfsvm", "colorhist-knn", "pixels-ridge", "lbp-chi2svm"} <= \
        set(list_pipelines(family="classical"))
    assert {"pixels", "colorhist", "hog", "hogcolor", "lbp", "sift-bovw", "orb-bovw", "akaze-bovw", "surf-bovw",
            "tiny", "sift-fv", "sift-vlad"} <= set(combos())  # each registered where it is defined


# A feature extractor as someone would add one: a single new file in pipelines/features/ with one decorator.
NEW_FEATURE_MODULE = textwrap.dedent('''
    """Mean intensity of each ``cell × cell``-pixel cell of the grayscale image."""

    import numpy as np

    from pipelines.base import ImageFeatures
    from pipelines.features.registry import register_feature


    @register_feature("cellmean", kind="vector", description="Mean intensity per cell")
    class CellMeanFeatures(ImageFeatures):
        def __init__(self, cell: int = 2):
            self.cell = cell

        def _extract(self, X):
            g = X.astype(np.float32).mean(axis=3) / 255.0
            n, h, w = g.shape
            c = self.cell
            return g[:, :h - h % c, :w - w % c].reshape(n, h // c, c, w // c, c).mean(axis=(2, 4)).reshape(n, -1)
''')


@pytest.fixture
def scratch_registries(monkeypatch):
    """The catalogue loaded, then every registry swapped for a copy: what a test registers is dropped after it."""
    list_pipelines()
    monkeypatch.setattr(feature_registry, "FEATURES", dict(feature_registry.FEATURES))
    monkeypatch.setattr(classifiers, "CLASSIFIERS", dict(classifiers.CLASSIFIERS))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return monkeypatch


def test_a_new_feature_is_one_file_with_one_decorator(digits_split, scratch_registries, tmp_path):
    """A module dropped into pipelines/features/ is found by the package walk the catalogue does, and its one
    ``@register_feature`` gives ``<feature>-<classifier>`` for every classifier suiting its kind, including
    classifiers registered after it."""
    import pipelines.features

    monkeypatch = scratch_registries
    (tmp_path / "cellmean.py").write_text(NEW_FEATURE_MODULE)
    monkeypatch.setattr(pipelines.features, "__path__", [*pipelines.features.__path__, str(tmp_path)])
    # the module and its attribute on the package are recorded as absent, so that undo() removes them again
    monkeypatch.setitem(sys.modules, "pipelines.features.cellmean", None)
    del sys.modules["pipelines.features.cellmean"]
    monkeypatch.setattr(pipelines.features, "cellmean", None, raising=False)
    assert "pipelines.features.cellmean" in import_submodules.__wrapped__("pipelines.features")

    spec = feature_registry.FEATURES["cellmean"]
    assert (spec.kind, spec.defaults, spec.unavailable_reason()) == ("vector", {"cell": 2}, None)
    suited = {c for c, s in classifiers.CLASSIFIERS.items() if s.suits_feature("cellmean", "vector")}
    assert {"knn", "logreg", "ridge", "linsvm", "rbfsvm"} <= suited and not {"chi2svm", "hiksvm"} & suited
    assert list_pipelines("cellmean-*") == sorted(f"cellmean-{c}" for c in suited)
    assert combos()["cellmean"] == tuple(c for c in classifiers.CLASSIFIERS if c in suited)
    knn = get_spec("cellmean-knn")
    assert (knn.family, knn.features, knn.classifier) == ("classical", "cellmean", "knn")
    assert knn.description.startswith("Mean intensity per cell → k-nearest neighbours")
    assert {"cell": 2, "k": None, "seed": 0}.items() <= knn.defaults.items()

    d = digits_split  # sklearn's load_digits, 8×8: 2×2-pixel cells give 16 numbers
    est = create("cellmean-logreg").fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val)
    assert est.fit_info_["n_features"] == 16 and est.fit_info_["tuned"]
    assert np.mean(est.predict(d.X_test) == d.y_test) > 0.8
    assert create("cellmean-knn", cell=4).fit(d.X_train, d.y_train).transform(d.X_test[:3]).shape == (3, 4)

    # the other order: a classifier registered after the feature is offered with it too
    @register_classifier("centroid", grid={"nearestcentroid__shrink_threshold": [0.1, 0.5]},
                         tuned={"shrink": "nearestcentroid__shrink_threshold"}, suits=("vector",))
    def centroid(ctx: BuildContext, shrink: float = 0.5) -> object:
        """standardised nearest class centroid (shrinkage tuned)"""
        from sklearn.neighbors import NearestCentroid

        return ctx.scaled(NearestCentroid(shrink_threshold=shrink))

    assert {"cellmean-centroid", "hog-centroid", "pixels-centroid"} <= set(list_pipelines("*-centroid"))
    assert "lbp-centroid" not in list_pipelines("*-centroid")  # a histogram feature
    with pytest.raises(ValueError, match="already registered"):
        register_feature("cellmean", kind="vector", description="again")(spec.builder)

    monkeypatch.undo()
    assert "cellmean" not in feature_registry.FEATURES and not list_pipelines("cellmean-*")
    assert "pipelines.features.cellmean" not in sys.modules and not hasattr(pipelines.features, "cellmean")


def test_register_feature_checks_kind_and_recipe(scratch_registries):
    from pipelines.features.hog import HOGFeatures

    with pytest.raises(ValueError, match="kind must be one of"):
        register_feature("hog2", kind="vectors", description="HOG again")
    with pytest.raises(ValueError, match="no parameter"):
        register_feature("hog2", kind="vector", description="HOG again", recipe={"cells": 4})(HOGFeatures)
    assert "hog2" not in feature_registry.FEATURES


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
