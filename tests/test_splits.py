"""The split contract: deterministic, stratified, disjoint, nested, and hashed identically for every pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from bench.datasets import SplitOptions, prepare
from bench.datasets.splits import make_split
from bench.errors import DatasetError


def test_split_is_deterministic_and_disjoint():
    a = prepare("digits", SplitOptions(split_seed=3))
    b = prepare("digits", SplitOptions(split_seed=3))
    assert a.split_hash == b.split_hash
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a.split, part), getattr(b.split, part))
    # digits has no test split of its own: all three index the same pool and must be disjoint
    assert a.split.test_from_pool
    sets = [set(a.split.train), set(a.split.val), set(a.split.test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797


def test_different_split_seed_changes_hash():
    assert prepare("digits", SplitOptions(split_seed=0)).split_hash != \
        prepare("digits", SplitOptions(split_seed=1)).split_hash


def test_split_is_stratified():
    d = prepare("digits", SplitOptions())
    full = np.bincount(np.concatenate([d.y_train, d.y_val, d.y_test])) / 1797
    for y in (d.y_train, d.y_val, d.y_test):
        assert np.abs(np.bincount(y, minlength=10) / len(y) - full).max() < 0.02


def test_own_test_split_is_kept_and_options_subsample():
    d = prepare("mnist5k", SplitOptions(max_train=500, max_test=200, max_val=100))
    assert not d.split.test_from_pool
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (500, 100, 200)
    assert np.bincount(d.y_train).min() >= 45  # stratified: about 50 per class


def test_train_per_class_subsets_are_nested():
    y = np.repeat(np.arange(5), 40)
    small = make_split(y, None, SplitOptions(train_per_class=5), [str(i) for i in range(5)])
    big = make_split(y, None, SplitOptions(train_per_class=12), [str(i) for i in range(5)])
    assert set(small.train) <= set(big.train)
    assert np.all(np.bincount(y[small.train]) == 5)
    np.testing.assert_array_equal(small.val, big.val)  # validation does not move with the training size
    np.testing.assert_array_equal(small.test, big.test)


def test_same_split_hash_across_pipelines(tracker):
    from bench.runner import Job, run_grid

    jobs = [Job("digits", "pixels-knn", params={"tune": False}),
            Job("digits", "pixels-logreg", params={"tune": False, "max_iter": 50})]
    res = run_grid(jobs, tracker=tracker, log=lambda m: None)
    hashes = {tracker.client.get_run(r.run_id).data.params["split_hash"] for r in res}
    assert len(hashes) == 1


def test_class_too_small_is_a_clear_error():
    y = np.array([0] * 10 + [1] * 1)
    with pytest.raises(DatasetError, match=r"'b' has 1.*at least 3"):
        make_split(y, None, SplitOptions(), ["a", "b"])
