"""`runs` and `compare`: the store from the terminal."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.datasets import SplitOptions
from bench.runner import Job, run_grid

SPLIT = SplitOptions(max_train=200, max_val=60, max_test=60)


@pytest.fixture
def two_runs(tracker):
    res = run_grid([Job("digits", "pixels-knn", 0, {}, SPLIT), Job("digits", "pixels-logreg", 0, {}, SPLIT)],
                   tracker=tracker, log=lambda m: None)
    assert [r.status for r in res] == ["FINISHED", "FINISHED"]
    return res


def test_runs_lists_newest_first_and_filters(two_runs, capsys):
    assert main(["runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["digits/pixels-logreg/0", "digits/pixels-knn/0"]  # newest first
    assert {r["run_id"] for r in rows} == {r.run_id for r in two_runs}
    assert rows[1]["test_acc"] == pytest.approx(two_runs[0].metrics["test_accuracy"])
    assert main(["runs", "-p", "*-knn"]) == 0
    out = capsys.readouterr().out
    assert "digits/pixels-knn/0" in out and "pixels-logreg" not in out
    assert main(["runs", "--status", "failed"]) == 0
    assert "no runs match" in capsys.readouterr().out
    assert main(["runs", "--status", "nonsense"]) == 2
    assert "--status 'nonsense'" in capsys.readouterr().err


def test_compare_shows_only_differences_by_name_or_id(two_runs, capsys):
    knn, logreg = two_runs
    assert main(["compare", "digits/pixels-knn/0", logreg.run_id[:10]]) == 0
    out = capsys.readouterr().out
    assert knn.run_id[:8] in out and logreg.run_id[:8] in out
    assert "pixels-knn" in out and "pixels-logreg" in out and "test_accuracy" in out
    assert "split_hash" not in out  # the same split: not a difference
    assert main(["compare", "--all", "digits/pixels-knn/0", knn.run_id]) == 0
    assert "split_hash" in capsys.readouterr().out
    assert main(["compare", "digits/pixels-knn/0", knn.run_id]) == 0
    assert "the same params, metrics and tags" in capsys.readouterr().out
    assert main(["compare", "digits/nope/0", knn.run_id]) == 2
    assert "no run with that id or name" in capsys.readouterr().err
