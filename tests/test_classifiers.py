"""Every classical classifier reaches a stated accuracy on ``digits``; tuning uses the validation split only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from pipelines import classifiers, registry
from pipelines.classifiers import (
    BuildContext,
    KernelSVM,
    TunedFeatureClassifier,
    make_classifier,
    register_classifier,
)
from pipelines.features.hog import HOGFeatures
from pipelines.features.pixels import PixelFeatures

# (classifier, features, minimum test accuracy on digits' 360 test images)
TARGETS = [
    ("knn", PixelFeatures, 0.97),
    ("logreg", PixelFeatures, 0.92),
    ("ridge", PixelFeatures, 0.90),
    ("linsvm", PixelFeatures, 0.93),
    ("rbfsvm", PixelFeatures, 0.97),
    ("chi2svm", HOGFeatures, 0.90),  # HOG is a non-negative histogram feature
]


def _fit(d, name, feats, **kw):
    clf, grid = make_classifier(name, seed=0, histogram=(name == "chi2svm"))
    est = TunedFeatureClassifier(feats(), clf, grid, **kw)
    return est.fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val)


@pytest.mark.parametrize("name,feats,target", TARGETS, ids=[t[0] for t in TARGETS])
def test_classifier_accuracy_on_digits(digits_split, name, feats, target):
    d = digits_split
    est = _fit(d, name, feats)
    acc = float(np.mean(est.predict(d.X_test) == d.y_test))
    assert acc >= target, f"{name}: {acc:.3f} < {target}"
    info = est.fit_info_
    assert info["chosen_params"] and len(info["tuning"]) >= 3
    # scored on the validation split: each accuracy is a count of its images (not of the 360 test images)
    n_val = len(d.y_val)
    assert all(abs(t["val_accuracy"] * n_val - round(t["val_accuracy"] * n_val)) < 1e-6 for t in info["tuning"])
    # the chosen values are the best on the VALIDATION split (first best in grid order)
    best = max(t["val_accuracy"] for t in info["tuning"])
    first_best = next(t["params"] for t in info["tuning"] if t["val_accuracy"] == best)
    assert info["chosen_params"] == first_best


def test_knn_grid_shortcut_matches_sklearn(digits_split):
    d = digits_split
    est = _fit(d, "knn", PixelFeatures)
    F, Fv = PixelFeatures().transform(d.X_train), PixelFeatures().transform(d.X_val)
    for t in est.fit_info_["tuning"]:
        k = t["params"]["n_neighbors"]
        ref = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(F, d.y_train).predict(Fv)
        assert t["val_accuracy"] == pytest.approx(np.mean(ref == d.y_val))


def test_kernel_svm_switches_to_nystroem_above_threshold(digits_split):
    d = digits_split
    F, Ft = PixelFeatures().transform(d.X_train), PixelFeatures().transform(d.X_test)
    exact = KernelSVM(C=10, gamma_scale=2, exact_max_n=10_000).fit(F, d.y_train)
    approx = KernelSVM(C=10, gamma_scale=2, exact_max_n=500, n_components=600).fit(F, d.y_train)
    assert exact.mode_ == "exact" and approx.mode_ == "nystroem"
    assert np.mean(approx.predict(Ft) == d.y_test) >= 0.95
    assert np.mean(exact.predict(Ft) == d.y_test) >= 0.97
    # size_hint: a grid searched on a subset uses the model the full training set will get
    assert KernelSVM(exact_max_n=500, n_components=100, size_hint=5000).fit(F[:300], d.y_train[:300]).mode_ \
        == "nystroem"


def test_tuning_on_a_subset_then_refit_on_everything(digits_split):
    d = digits_split
    est = _fit(d, "linsvm", PixelFeatures, tune_max_train=300)
    assert est.fit_info_["tune_n_train"] == 300
    chosen = est.fit_info_["chosen_params"]
    clf, _ = make_classifier("linsvm", seed=0)
    ref = clf.set_params(**chosen).fit(PixelFeatures().transform(d.X_train), d.y_train)
    Ft = PixelFeatures().transform(d.X_test)
    np.testing.assert_array_equal(est.classifier_.predict(Ft), ref.predict(Ft))  # refitted on all training data
    again = _fit(d, "linsvm", PixelFeatures, tune_max_train=300)
    assert again.fit_info_["chosen_params"] == chosen  # seeded: same subset, same choice
    np.testing.assert_array_equal(again.predict(d.X_test), est.predict(d.X_test))


def test_unknown_classifier_names_the_choices():
    with pytest.raises(ValueError, match="linsvm"):
        make_classifier("svm-ish")


def test_a_new_classifier_is_one_registration(digits_split, monkeypatch):
    """One ``@register_classifier`` gives a ``<feature>-<name>`` pipeline for every feature it suits, with its
    parameters, grid and subsample cap; the registrations are dropped after the test."""
    from sklearn.neighbors import NearestCentroid

    from pipelines.catalogue.classical import combos
    from pipelines.registry import create, get_spec, list_pipelines

    list_pipelines()  # the catalogue is loaded before the registries are copied
    monkeypatch.setattr(classifiers, "CLASSIFIERS", dict(classifiers.CLASSIFIERS))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_classifier("centroid", grid={"nearestcentroid__shrink_threshold": [0.1, 0.5, 1.0]},
                         tuned={"shrink": "nearestcentroid__shrink_threshold"}, tune_max_train=200,
                         suits=("histogram", "hog"))
    def centroid(ctx: BuildContext, shrink: float = 0.5, metric: str = "euclidean") -> object:
        """standardised nearest class centroid (shrinkage tuned)"""
        return ctx.scaled(NearestCentroid(shrink_threshold=shrink, metric=metric))

    assert list_pipelines("*-centroid") == ["colorhist-centroid", "hog-centroid", "lbp-centroid"]
    assert "centroid" in combos()["lbp"] and "centroid" not in combos()["pixels"]
    spec = get_spec("hog-centroid")
    assert (spec.family, spec.features, spec.classifier) == ("classical", "hog", "centroid")
    assert spec.description == "HOG (OpenCV) → standardised nearest class centroid (shrinkage tuned)."
    assert {"shrink": None, "metric": "euclidean", "tune_max_train": 200, "cell": None}.items() <= \
        spec.defaults.items()
    d = digits_split
    est = create("hog-centroid").fit(d.X_train, d.y_train, X_val=d.X_val, y_val=d.y_val)
    assert [t["params"] for t in est.fit_info_["tuning"]] == \
        [{"nearestcentroid__shrink_threshold": v} for v in (0.1, 0.5, 1.0)]
    assert est.fit_info_["tune_n_train"] == 200 and np.mean(est.predict(d.X_test) == d.y_test) > 0.8
    assert create("hog-centroid", shrink=1.0).param_grid is None  # a value given is fixed, not searched
    with pytest.raises(ValueError, match="already registered"):
        register_classifier("centroid", grid={})(centroid)

    monkeypatch.undo()
    assert "centroid" not in classifiers.CLASSIFIERS and not list_pipelines("*-centroid")


def test_linear_svm_matches_liblinear(digits_split):
    """LinearSVM optimises LinearSVC's objective: the two agree on nearly every prediction."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from pipelines.classifiers import LinearSVM

    d = digits_split
    sc = StandardScaler().fit(PixelFeatures().transform(d.X_train))
    F, Ft = sc.transform(PixelFeatures().transform(d.X_train)), sc.transform(PixelFeatures().transform(d.X_test))
    ours = LinearSVM(C=0.01).fit(F, d.y_train).predict(Ft)
    ref = LinearSVC(C=0.01, dual=True, max_iter=5000).fit(F, d.y_train).predict(Ft)
    assert np.mean(ours == ref) >= 0.95
    assert np.mean(ours == d.y_test) >= np.mean(ref == d.y_test) - 0.02
