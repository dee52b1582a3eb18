"""The ONE split contract every pipeline sees: train / validation / test indices, seeded and hashed.

1. Test: the dataset's own test split when it has one. Otherwise a stratified ``test_fraction`` is carved from
   the pool (or, with ``train_per_class`` and ``test_rest=True``, every image not used for train/val).
2. Validation: a stratified ``val_fraction`` of the training pool (capped by ``max_val``), seeded.
3. Train: the rest of the pool, optionally reduced with ``train_per_class`` (the first N per class in a seeded
   order, so smaller subsets are nested in larger ones) and ``max_train`` (stratified, same order).
4. ``max_test`` reduces the test set the same way.

Every choice depends only on the labels and ``split_seed``, never on the pipeline or the run's seed, so all
pipelines see exactly the same images; :attr:`Split.hash` proves it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from bench.errors import DatasetError


@dataclass(frozen=True)
class SplitOptions:
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    train_per_class: int | None = None
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None
    test_rest: bool = False

    def __post_init__(self) -> None:
        """Refuse nonsense before anything is loaded or logged, naming the option and what it allows."""
        from bench.errors import ConfigError

        def bad(flag: str, why: str) -> ConfigError:
            v = getattr(self, flag)
            return ConfigError(f"--{flag.replace('_', '-')} {v!r}: {why}")

        for f in ("val_fraction", "test_fraction"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
                raise bad(f, "must be a fraction, at least 0 and below 1")
        if not 0 < self.test_fraction:
            raise bad("test_fraction", "must be above 0")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int) or self.split_seed < 0:
            raise bad("split_seed", "must be a non-negative integer")
        for f, least in (("train_per_class", 1), ("max_train", 1), ("max_val", 0), ("max_test", 1)):
            v = getattr(self, f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least):
                raise bad(f, f"must be an integer ≥ {least} (or left out)")
        if not isinstance(self.test_rest, bool):
            raise bad("test_rest", "must be true or false")

    def as_params(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Split:
    """Indices into the training pool (``train``, ``val``) and into the test pool (``test``).

    ``test_from_pool`` is True when the dataset had no test split and ``test`` indexes the training pool.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_from_pool: bool
    hash: str


def _order(n: int, seed: int, salt: int) -> np.ndarray:
    """A seeded random rank for each of ``n`` items (lower rank = chosen first)."""
    return np.random.default_rng([seed, salt]).permutation(n)


def stratified_take(idx: np.ndarray, y: np.ndarray, n: int, rank: np.ndarray) -> np.ndarray:
    """Choose ``n`` of ``idx`` with class proportions kept (largest remainder), lowest ``rank`` first."""
    if n >= len(idx):
        return np.sort(idx)
    classes, counts = np.unique(y[idx], return_counts=True)
    exact = counts * (n / len(idx))
    quota = np.floor(exact).astype(int)
    rest = n - quota.sum()
    if rest > 0:
        quota[np.argsort(-(exact - quota), kind="stable")[:rest]] += 1
    chosen = []
    for c, q in zip(classes, quota):
        members = idx[y[idx] == c]
        chosen.append(members[np.argsort(rank[members], kind="stable")[:q]])
    return np.sort(np.concatenate(chosen)) if chosen else idx[:0]


def per_class_take(idx: np.ndarray, y: np.ndarray, n: int, rank: np.ndarray) -> np.ndarray:
    out = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        out.append(members[np.argsort(rank[members], kind="stable")[:n]])
    return np.sort(np.concatenate(out))


def _check_classes(y: np.ndarray, idx: np.ndarray, class_names: list[str], need: int, what: str) -> None:
    counts = np.bincount(y[idx], minlength=len(class_names))
    small = [(class_names[c], int(counts[c])) for c in range(len(class_names)) if 0 < counts[c] < need]
    if small:
        listed = ", ".join(f"{n!r} has {k}" for n, k in small)
        raise DatasetError(f"classes too small for the {what}: {listed}; each class needs at least {need} "
                           "images (add images, drop the class folder, or lower --val-fraction).")


def make_split(y_pool: np.ndarray, y_test: np.ndarray | None, opts: SplitOptions,
               class_names: list[str]) -> Split:
    """Apply the split contract (see module docstring) and hash the result."""
    n = len(y_pool)
    rank = _order(n, opts.split_seed, 1)
    pool = np.arange(n)
    test_from_pool = y_test is None
    if test_from_pool and not opts.test_rest:
        _check_classes(y_pool, pool, class_names, 3, "train/validation/test split")
        n_test = max(int(round(opts.test_fraction * n)), len(np.unique(y_pool)))
        test = stratified_take(pool, y_pool, n_test, _order(n, opts.split_seed, 2))
        pool = np.setdiff1d(pool, test)
    else:
        _check_classes(y_pool, pool, class_names, 2, "train/validation split")
    n_val = int(round(opts.val_fraction * len(pool)))
    if opts.max_val is not None:
        n_val = min(n_val, opts.max_val)
    val = stratified_take(pool, y_pool, n_val, _order(n, opts.split_seed, 3)) if n_val > 0 else pool[:0]
    train = np.setdiff1d(pool, val)
    if opts.train_per_class is not None:
        train = per_class_take(train, y_pool, opts.train_per_class, rank)
    if opts.max_train is not None:
        train = stratified_take(train, y_pool, opts.max_train, rank)
    if test_from_pool and opts.test_rest:
        test = np.setdiff1d(np.setdiff1d(np.arange(n), train), val)
    elif not test_from_pool:
        test = np.arange(len(y_test))
    y_t = y_pool if test_from_pool else y_test
    if opts.max_test is not None:
        test = stratified_take(test, y_t, opts.max_test, _order(len(y_t), opts.split_seed, 4))
    if len(train) == 0 or len(test) == 0:
        raise DatasetError(f"the split left {len(train)} training and {len(test)} test images; "
                           "relax --max-train / --max-test / --train-per-class.")
    h = hashlib.sha256()
    for part in (train, val, test):
        h.update(np.asarray(part, dtype=np.int64).tobytes())
        h.update(b"|")
    h.update(b"pool" if test_from_pool else b"own-test")
    return Split(train, val, test, test_from_pool, h.hexdigest()[:16])


def split_hash(split: Split, digest: str) -> str:
    """The hash of the data a split serves: its indices (:attr:`Split.hash`) and the images' content ``digest``
    (the dataset's ``meta["digest"]``)."""
    return hashlib.sha256(f"{split.hash}:{digest}".encode()).hexdigest()[:16]
