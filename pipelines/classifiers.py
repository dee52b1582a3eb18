"""Classifiers for feature vectors, each with the small validation grid it is tuned over.

``make_classifier(name, **params)`` returns ``(estimator, param_grid)``; the grid keys are the estimator's
``get_params`` names so :class:`TunedFeatureClassifier` can search them on the validation split.

Grids (chosen so that the classical suite stays within its budget; every value is fitted on the training
split, scored on the validation split, and the best one refitted):

=========  ==================================================================  ==========================
name       model                                                               grid
=========  ==================================================================  ==========================
knn        k-nearest neighbours, Euclidean or ``metric="manhattan"`` (L1)     k ∈ {1, 3, 5, 7, 9}
           (brute force, all cores)
logreg     standardise → multinomial logistic regression (lbfgs)              C ∈ {0.01, 0.1, 1} (*)
ridge      standardise → ``RidgeClassifier`` (linear regression on ±1 codes)   alpha ∈ {1, 10, 100, 1000} (*)
linsvm     standardise → :class:`LinearSVM` (LinearSVC's objective, L-BFGS)    C ∈ {0.001, 0.01, 0.1} (*)
rbfsvm     :class:`KernelSVM`: exact ``SVC`` up to ``exact_max_n`` training    C ∈ {1, 10},
           images, else Nyström features + :class:`LinearSVM` (never quadratic);    gamma_scale ∈ {1, 2, 4}
           histogram features first go through the additive χ² map
chi2svm    additive χ² feature map (``AdditiveChi2Sampler``) → LinearSVM       C ∈ {0.1, 1, 10}
           (histogram features only: colour, LBP, bag of words)
hiksvm     :class:`~pipelines.intersection.IntersectionSVM`: histogram-         C ∈ {1, 10, 100}
           intersection kernel, exact ``SVC`` up to ``exact_max_n`` images,
           else additive χ² map + LinearSVM (bag of words + spatial pyramid)
=========  ==================================================================  ==========================

(*) without standardisation (normalised encodings: bag of words, Fisher vectors, VLAD): logreg C ∈ {0.1, 1, 10},
ridge alpha ∈ {0.1, 1, 10, 100}, linsvm C ∈ {0.01, 0.1, 1, 10} (15-Scene Fisher vectors chose C = 10 on
validation once it was offered).

``gamma_scale`` multiplies scikit-learn's ``gamma="scale"`` (``1 / (n_features · Var(X))``), so one grid
fits every feature type. Expensive grids (SVMs, logistic regression) are searched on a seeded stratified
subset of at most ``tune_max_train`` training images; the chosen values are then refitted on all of them.

Each classifier is one :func:`register_classifier` entry below, beside the function that builds it: its
parameters (the function's keyword defaults), grid, tuned parameters, subsample cap, description and the feature
kinds it is offered with. ``make_classifier`` and the classical catalogue (one ``<feature>-<classifier>``
pipeline per suited feature) read nothing else.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.kernel_approximation import AdditiveChi2Sampler, Nystroem
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import ParameterGrid
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from cvbench_util.progress import progress
from pipelines.base import FeatureClassifier, ImageFeatures, check_images
from pipelines.features.concat import ConcatFeatures
from pipelines.features.registry import FEATURE_KINDS as FEATURE_KINDS  # re-exported: what ``suits`` names
from pipelines.intersection import IntersectionSVM


class LinearSVM(ClassifierMixin, BaseEstimator):
    """One-vs-rest linear SVM: ``LinearSVC``'s objective (L2-regularised squared hinge, one weight vector per
    class), all classes solved at once by L-BFGS.

    Hand-written because liblinear (behind ``LinearSVC``) is single-threaded, works one class at a time and
    its coordinate descent barely converges on dense, non-separable data (see docs/measurements.md#classifiers).
    Here each L-BFGS step is two dense matrix products (BLAS). Unlike liblinear the intercept is not
    regularised. ``max_iter`` caps L-BFGS iterations.
    """

    def __init__(self, C: float = 0.01, max_iter: int = 300, tol: float = 1e-5):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearSVM:
        from scipy.optimize import minimize

        X = np.ascontiguousarray(X, dtype=np.float32)
        self.classes_, yi = np.unique(y, return_inverse=True)
        n, d = X.shape
        k = len(self.classes_)
        Y = np.where(yi[:, None] == np.arange(k)[None, :], 1.0, -1.0).astype(np.float32)
        C = float(self.C)

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W = theta[: d * k].reshape(d, k)
            b = theta[d * k:]
            S = X @ W.astype(np.float32) + b.astype(np.float32)
            M = np.maximum(0.0, 1.0 - Y * S)  # hinge margins
            f = 0.5 * float(np.dot(theta[: d * k], theta[: d * k])) + C * float(np.sum(M.astype(np.float64) ** 2))
            G = -2.0 * C * (Y * M)  # d loss / d S
            gW = W + (X.T @ G).astype(np.float64)
            gb = G.sum(axis=0, dtype=np.float64)
            return f, np.concatenate([gW.ravel(), gb])

        # One BLAS thread: features are extracted on all cores, classifiers run one per process
        # (why: see docs/measurements.md#classifiers).
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            res = minimize(fun, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                           options={"maxiter": self.max_iter, "gtol": self.tol})
        self.coef_ = res.x[: d * k].reshape(d, k).T.astype(np.float32)
        self.intercept_ = res.x[d * k:].astype(np.float32)
        self.n_iter_ = int(res.nit)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32) @ self.coef_.T + self.intercept_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


class KernelSVM(ClassifierMixin, BaseEstimator):
    """Gaussian-kernel SVM that stays sub-quadratic on large training sets.

    Up to ``exact_max_n`` training images: libsvm's exact ``SVC``. Above: ``Nystroem`` features
    (``n_components`` landmarks, seeded) followed by :class:`LinearSVM`, linear in n. ``chi2_map`` first applies
    the additive χ² feature map (for non-negative histogram features). ``size_hint`` makes the choice as if
    training on that many images, so that a grid searched on a subset uses the same model as the final fit.
    """

    def __init__(self, C: float = 10.0, gamma_scale: float = 1.0, chi2_map: bool = False,
                 exact_max_n: int = 10_000, n_components: int = 3000, size_hint: int | None = None,
                 seed: int = 0):
        self.C = C
        self.gamma_scale = gamma_scale
        self.chi2_map = chi2_map
        self.exact_max_n = exact_max_n
        self.n_components = n_components
        self.size_hint = size_hint
        self.seed = seed

    def _map(self, X: np.ndarray) -> np.ndarray:
        return self.chi2_.transform(X) if self.chi2_map else X

    def fit(self, X: np.ndarray, y: np.ndarray) -> KernelSVM:
        X = np.asarray(X, dtype=np.float32)
        if self.chi2_map:
            self.chi2_ = AdditiveChi2Sampler(sample_steps=2).fit(X)
        Z = self._map(X)
        var = float(Z.var())
        self.gamma_ = self.gamma_scale / (Z.shape[1] * var) if var > 0 else self.gamma_scale
        n = max(len(Z), self.size_hint or 0)
        if n <= self.exact_max_n:
            self.mode_ = "exact"
            self.model_ = SVC(C=self.C, kernel="rbf", gamma=self.gamma_, cache_size=1000).fit(Z, y)
        else:
            self.mode_ = "nystroem"
            self.model_ = make_pipeline(
                Nystroem(kernel="rbf", gamma=self.gamma_, n_components=min(self.n_components, len(Z)),
                         random_state=self.seed),
                LinearSVM(C=self.C)).fit(Z, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._map(np.asarray(X, dtype=np.float32)))


@dataclass(frozen=True)
class BuildContext:
    """What a classifier factory is told besides its own parameters."""

    seed: int = 0
    n_jobs: int = -1
    histogram: bool = False  # non-negative histogram features: kernels apply the χ² map first
    standardise: bool = True  # False: features are normalised vectors already (no scaler before linear models)

    def scaled(self, est: Any) -> Any:
        """``est`` after a ``StandardScaler``, or alone in a one-step pipeline when not standardising."""
        return make_pipeline(StandardScaler(), est) if self.standardise else make_pipeline(est)


@dataclass(frozen=True)
class ClassifierSpec:
    """Everything about one classifier: one :func:`register_classifier` entry.

    ``factory(ctx, **params)`` builds the unfitted estimator; its keyword defaults are the classifier's
    parameters. ``tuned`` maps the parameters searched on validation to their ``grid`` key (their factory
    default is the value used when there is nothing to search); ``unscaled_grid`` replaces ``grid`` for
    unstandardised features. ``feature_params`` are feature defaults this classifier wants wherever the feature
    has them.
    """

    name: str
    factory: Callable[..., Any]
    grid: dict[str, list]
    tuned: dict[str, str]
    tune_max_train: int | None
    description: str
    suits: tuple[str, ...]
    unscaled_grid: dict[str, list] | None = None
    feature_params: dict[str, Any] = field(default_factory=dict)

    @property
    def fallbacks(self) -> dict[str, Any]:
        """Every parameter's factory default (a tuned one's value when it is not searched)."""
        params = list(inspect.signature(self.factory).parameters.values())[1:]  # after ctx
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    @property
    def defaults(self) -> dict[str, Any]:
        """The parameters as a pipeline shows them: tuned ones ``None`` (searched on validation)."""
        return {k: None if k in self.tuned else v for k, v in self.fallbacks.items()}

    def suits_feature(self, feature: str, kind: str) -> bool:
        """Whether this classifier is offered with ``feature`` (of kind ``kind``)."""
        return "*" in self.suits or kind in self.suits or feature in self.suits


CLASSIFIERS: dict[str, ClassifierSpec] = {}
_LISTENERS: list[Callable[[ClassifierSpec], None]] = []


def register_classifier(name: str, *, grid: dict[str, list], tuned: dict[str, str] | None = None,
                        tune_max_train: int | None = None, suits: tuple[str, ...] = ("*",),
                        unscaled_grid: dict[str, list] | None = None, feature_params: dict[str, Any] | None = None,
                        description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory(ctx: BuildContext, **params) -> estimator`` as classifier ``name``.

    ``suits``: feature kinds (:data:`FEATURE_KINDS`) or feature names it is offered with, ``"*"`` for all; the
    classical catalogue then registers ``<feature>-<name>`` for each (features: ``@register_feature`` in
    :mod:`pipelines.features.registry`). ``description`` defaults to the factory's docstring (first paragraph).
    """
    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in CLASSIFIERS:
            raise ValueError(f"classifier {name!r} is already registered")
        doc = (inspect.getdoc(factory) or "").split("\n\n")[0]
        spec = ClassifierSpec(name=name, factory=factory, grid=dict(grid), tuned=dict(tuned or {}),
                              tune_max_train=tune_max_train, description=description or " ".join(doc.split()),
                              suits=tuple(suits), unscaled_grid=unscaled_grid,
                              feature_params=dict(feature_params or {}))
        missing = set(spec.tuned) - set(spec.fallbacks)
        if missing or not set(spec.tuned.values()) <= set(grid):
            raise ValueError(f"classifier {name!r}: tuned parameters need a factory default and a grid key")
        CLASSIFIERS[name] = spec
        for listener in _LISTENERS:
            listener(spec)
        return factory

    return deco


def on_register_classifier(listener: Callable[[ClassifierSpec], None]) -> None:
    """Call ``listener(spec)`` for every classifier registered so far and every one registered later."""
    _LISTENERS.append(listener)
    for spec in list(CLASSIFIERS.values()):
        listener(spec)


def get_classifier(name: str) -> ClassifierSpec:
    """The spec registered as ``name``; ``ValueError`` naming the choices otherwise."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; choose from {tuple(CLASSIFIERS)}")
    return CLASSIFIERS[name]


@register_classifier("knn", grid={"n_neighbors": [1, 3, 5, 7, 9]}, tuned={"k": "n_neighbors"})
def _knn(ctx: BuildContext, k: int = 3, metric: str = "euclidean") -> KNeighborsClassifier:
    """k-nearest neighbours, Euclidean or manhattan (L1) (k tuned)"""
    return KNeighborsClassifier(n_neighbors=k, algorithm="brute", n_jobs=ctx.n_jobs, metric=metric)


@register_classifier("logreg", grid={"logisticregression__C": [0.01, 0.1, 1.0]},
                     unscaled_grid={"logisticregression__C": [0.1, 1.0, 10.0]},
                     tuned={"C": "logisticregression__C"}, tune_max_train=10_000)
def _logreg(ctx: BuildContext, C: float = 0.1, max_iter: int = 200) -> Any:
    """standardised multinomial logistic regression (C tuned)"""
    return ctx.scaled(LogisticRegression(C=C, max_iter=max_iter, random_state=ctx.seed))


@register_classifier("ridge", grid={"ridgeclassifier__alpha": [1.0, 10.0, 100.0, 1000.0]},
                     unscaled_grid={"ridgeclassifier__alpha": [0.1, 1.0, 10.0, 100.0]},
                     tuned={"alpha": "ridgeclassifier__alpha"})
def _ridge(ctx: BuildContext, alpha: float = 10.0) -> Any:
    """standardised RidgeClassifier, linear regression (alpha tuned)"""
    return ctx.scaled(RidgeClassifier(alpha=alpha))


@register_classifier("linsvm", grid={"linearsvm__C": [0.001, 0.01, 0.1]},
                     unscaled_grid={"linearsvm__C": [0.01, 0.1, 1.0, 10.0]}, tuned={"C": "linearsvm__C"},
                     tune_max_train=10_000)
def _linsvm(ctx: BuildContext, C: float = 0.01, max_iter: int = 300) -> Any:
    """standardised linear SVM (C tuned)"""
    return ctx.scaled(LinearSVM(C=C, max_iter=max_iter))


@register_classifier("rbfsvm", grid={"C": [1.0, 10.0], "gamma_scale": [1.0, 2.0, 4.0]},
                     tuned={"C": "C", "gamma_scale": "gamma_scale"}, tune_max_train=5_000,
                     suits=("vector", "histogram", "bovw"))  # not the encodings' tens of thousands of dimensions
def _rbfsvm(ctx: BuildContext, C: float = 10.0, gamma_scale: float = 1.0, exact_max_n: int = 10_000,
            n_components: int = 3000) -> KernelSVM:
    """RBF SVM, exact up to 10k images else Nyström (C, gamma tuned)"""
    return KernelSVM(C=C, gamma_scale=gamma_scale, chi2_map=ctx.histogram, exact_max_n=exact_max_n,
                     n_components=n_components, seed=ctx.seed)


# the χ² map and the intersection want plain frequencies, not square roots: bag of words is L1-encoded for them
@register_classifier("chi2svm", grid={"linearsvm__C": [0.1, 1.0, 10.0]}, suits=("histogram", "bovw"),
                     feature_params={"encoding": "l1"}, tuned={"C": "linearsvm__C"}, tune_max_train=10_000)
def _chi2svm(ctx: BuildContext, C: float = 1.0, max_iter: int = 300) -> Any:
    """additive chi2 map + linear SVM (C tuned)"""
    return make_pipeline(AdditiveChi2Sampler(sample_steps=2), LinearSVM(C=C, max_iter=max_iter))


@register_classifier("hiksvm", grid={"C": [1.0, 10.0, 100.0]}, tuned={"C": "C"}, tune_max_train=5_000,
                     suits=("sift-bovw", "sift-spm"), feature_params={"encoding": "l1"})
def _hiksvm(ctx: BuildContext, C: float = 10.0, exact_max_n: int = 5_000, max_iter: int = 300) -> IntersectionSVM:
    """histogram-intersection kernel SVM, exact up to 5k images else additive chi2 map + linear SVM
    (C tuned)"""
    return IntersectionSVM(C=C, exact_max_n=exact_max_n, linear=LinearSVM(max_iter=max_iter))


def make_classifier(name: str, *, seed: int = 0, tune: bool = True, n_jobs: int = -1, histogram: bool = False,
                    standardise: bool = True, **params: Any) -> tuple[Any, dict[str, list] | None]:
    """Estimator and validation grid for classifier ``name`` (see ``CLASSIFIERS`` and the table above).

    ``params`` set the classifier's parameters (its factory's keywords: ``max_iter``, ``exact_max_n``,
    ``n_components``, the k-NN ``metric``…; others are ignored) and may fix tuned ones (``k``, ``C``,
    ``alpha``, ``gamma_scale``): a fixed value is used as given and left out of the grid; ``None`` (or absent)
    means tuned, with the estimator built at the factory's default. ``histogram`` marks non-negative histogram
    features (χ² map). ``standardise=False`` drops the scaler of the linear models, for features that are
    already normalised vectors (Hellinger bag-of-words, whose rare words standardisation would blow up); their
    grids (``unscaled_grid``) move up by a decade accordingly.
    """
    spec = get_classifier(name)
    kw = {p: params[p] for p in spec.fallbacks if p in params and not (p in spec.tuned and params[p] is None)}
    est = spec.factory(BuildContext(seed=seed, n_jobs=n_jobs, histogram=histogram, standardise=standardise), **kw)
    grid = spec.grid if standardise or spec.unscaled_grid is None else spec.unscaled_grid
    fixed = {key for p, key in spec.tuned.items() if params.get(p) is not None}
    grid = {k: list(v) for k, v in grid.items() if k not in fixed}
    return est, (grid if tune and grid else None)


def _stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a seeded, class-stratified subset of ``n`` labels (sorted)."""
    if n >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


class TunedFeatureClassifier(FeatureClassifier):
    """:class:`~pipelines.base.FeatureClassifier` with budget-aware tuning and richer ``fit_info_``.

    * The grid is searched on at most ``tune_max_train`` (seeded, stratified) training images, scored on the
      whole validation split; the best values are refitted on the whole training split.
    * kNN grids over ``n_neighbors`` need one neighbour search for all k (votes counted per k), not one each.
    * Stateful features (bag of words) report their vocabulary time, cache state and ``n_empty_images``.
    """

    def __init__(self, features: Any, classifier: Any, param_grid: dict[str, list] | None = None,
                 tune_max_train: int | None = None, seed: int = 0):
        super().__init__(features, classifier, param_grid)
        self.tune_max_train = tune_max_train
        self.seed = seed

    def _featurize(self, est: Any, X: np.ndarray) -> tuple[np.ndarray, float, bool]:
        # the transformer's own compute time (without the cache write), so that a fresh run and a run that
        # reuses its features report the very same feature time; the wall time actually spent is added to
        # ``_feature_wall`` so the harness can replace it by the charged time in ``fit_time_s``
        t0 = time.perf_counter()
        F = est.transform(X)
        wall = time.perf_counter() - t0
        self._feature_wall += wall
        dt = float(getattr(est, "last_time_s_", wall))
        return F, dt, bool(getattr(est, "last_cached_", False))

    def _knn_grid(self, F: np.ndarray, y: np.ndarray, Fv: np.ndarray, yv: np.ndarray,
                  grid: list[dict]) -> list[float]:
        ks = [g["n_neighbors"] for g in grid]
        nn = clone(self.classifier).set_params(n_neighbors=max(ks)).fit(F, y)
        neigh = nn.kneighbors(Fv, return_distance=False)
        codes = np.searchsorted(nn.classes_, y)[neigh]  # (n_val, kmax) class index of each neighbour
        scores = []
        for k in ks:
            votes = np.zeros((len(Fv), len(nn.classes_)), dtype=np.int64)
            np.add.at(votes, (np.arange(len(Fv))[:, None], codes[:, :k]), 1)
            # argmax keeps the lowest class on ties, as KNeighborsClassifier's mode does
            scores.append(float(np.mean(nn.classes_[votes.argmax(axis=1)] == yv)))
        return scores

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> TunedFeatureClassifier:
        X = check_images(X)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.features_ = clone(self.features)
        t0 = time.perf_counter()
        self.features_.fit(X, y)
        fit_wall = time.perf_counter() - t0
        self._feature_wall = fit_wall
        # a cached vocabulary reports the time it originally took, like cached features do; stateless
        # features (whose fit does nothing) count only their extraction time
        stateless = isinstance(self.features_, ImageFeatures | ConcatFeatures)
        fit_feat = float(getattr(self.features_, "fit_time_s_", 0.0 if stateless else fit_wall))
        fit_cached = bool(getattr(self.features_, "fit_cached_", True))
        F, t_train, cached = self._featurize(self.features_, X)
        info: dict[str, Any] = {"features_cached": cached and fit_cached, "n_features": int(F.shape[1])}
        feature_time = fit_feat + t_train
        empty = int((~F.any(axis=1)).sum())
        grid = list(ParameterGrid(self.param_grid)) if self.param_grid else [{}]
        # tiny training sets: no more neighbours than training images
        grid = [g for g in grid if all(v <= len(y) for k, v in g.items() if k.endswith("n_neighbors"))] or [{}]
        base = clone(self.classifier)
        if "size_hint" in base.get_params():
            base.set_params(size_hint=len(y))
        if X_val is not None and grid != [{}]:
            Fv, t_val, cached_v = self._featurize(self.features_, check_images(X_val))
            y_val = np.asarray(y_val)
            feature_time += t_val
            info["features_cached"] = info["features_cached"] and cached_v
            empty += int((~Fv.any(axis=1)).sum())
            if isinstance(base, KNeighborsClassifier) and all(set(g) == {"n_neighbors"} for g in grid):
                val_scores = self._knn_grid(F, y, Fv, y_val, grid)
                models = [None] * len(grid)
            else:
                sub = _stratified_subset(y, self.tune_max_train or len(y), self.seed)
                info["tune_n_train"] = int(len(sub))
                models, val_scores = [], []
                name = type(base.steps[-1][1] if hasattr(base, "steps") else base).__name__
                bar = progress(grid, f"tune {name} on {len(sub)} images", unit="fit")  # a terminal only
                for params in bar:
                    m = clone(base).set_params(**params).fit(F[sub], y[sub])
                    val_scores.append(float(np.mean(m.predict(Fv) == y_val)))
                    bar.set_postfix_str(", ".join(f"{k.rpartition('__')[2]}={v}" for k, v in params.items())
                                        + f": val {val_scores[-1]:.4f}", refresh=False)  # shown with the next tick
                    models.append(m if len(sub) == len(y) else None)
            best_i = int(np.argmax(val_scores))  # first best in grid order: deterministic
            best_params = grid[best_i]
            best = models[best_i] or clone(base).set_params(**best_params).fit(F, y)
            info["chosen_params"] = best_params
            info["tuning"] = [{"params": p, "val_accuracy": s} for p, s in zip(grid, val_scores)]
        else:  # nothing to search, or no validation split: the constructor's values, never a grid point
            best = clone(base).fit(F, y)
        info["tuned"] = "chosen_params" in info
        if getattr(self.features_, "reports_empty_images", False):
            info["n_empty_images"] = empty
        if hasattr(best, "mode_"):
            info["svm_mode"] = best.mode_
        self.classifier_ = best
        # charged (what the features cost from raw images, cached or not) and actually spent in this call
        info["feature_time_s"], info["feature_wall_s"] = feature_time, self._feature_wall
        del self._feature_wall
        self.fit_info_ = info
        return self
