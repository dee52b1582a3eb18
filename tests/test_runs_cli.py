"""The command line around the store: `runs`, `compare`, `--dry-run`, empty results, `--device` and `--threads`."""

from __future__ import annotations

import json
import os

import pytest

from bench import cli
from bench.cli import main
from bench.datasets import SplitOptions
from bench.runner import Job, run_grid
from pipelines.features.parallel import effective_n_jobs

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


def test_dry_run_lists_jobs_and_skips_without_running(two_runs, tracker, capsys):
    n_runs = len(tracker.runs_frame(finished_only=False, include_parents=True))
    args = ["run", "-d", "digits", "-p", "pixels-knn", "-p", "pixels-ridge", "--max-train", "200",
            "--max-val", "60", "--max-test", "60", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skip  digits/pixels-knn/0" in out and "plan  digits/pixels-ridge/0" in out
    assert "1 job(s) would run, 1 skipped as done" in out
    assert len(tracker.runs_frame(finished_only=False, include_parents=True)) == n_runs  # nothing was run
    assert main([*args[:-1], "-d", "lfw-faces", "--dry-run"]) == 0  # a dataset with no experiment yet
    assert "lfw-faces" not in [e.name for e in tracker.experiments()]


def test_empty_results_say_so(tracker, capsys):
    assert main(["list", "zzz*"]) == 1
    assert "no pipeline matches 'zzz*'" in capsys.readouterr().err
    assert main(["export", "-d", "nope"]) == 1
    assert "no FINISHED runs for dataset(s) nope" in capsys.readouterr().err
    assert main(["runs"]) == 0
    assert "no runs match" in capsys.readouterr().out


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_flag_is_checked_before_anything_runs(tracker, capsys):
    base = ["run", "-d", "digits", "-p", "cnn-small", "--max-train", "100"]
    assert main([*base, "--device", "cuda"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert main([*base, "--param", "device=cuda:1"]) == 2  # the same check for the parameter
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--device", "gpu"])
    assert "use auto, cpu, cuda, cuda:N or mps" in capsys.readouterr().err
    assert tracker.experiments() == []  # nothing was created
    from pipelines.training import pick_device

    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")


def test_device_and_threads_reach_the_jobs(tracker, capsys, monkeypatch):
    monkeypatch.delenv("CVBENCH_THREADS", raising=False)
    seen = {}
    real_jobs = cli._jobs
    monkeypatch.setattr(cli, "_jobs", lambda a: seen.update(threads=os.environ.get("CVBENCH_THREADS"),
                                                            n_jobs=effective_n_jobs()) or real_jobs(a))
    assert main(["run", "-d", "digits", "-p", "cnn-small", "-p", "pixels-knn", "--device", "cpu", "--threads", "1",
                 "--max-train", "100", "--dry-run"]) == 0
    out = capsys.readouterr().out
    cnn = next(line for line in out.splitlines() if "plan  digits/cnn-small/0" in line)
    assert '"device": "cpu"' in cnn
    assert seen == {"threads": "1", "n_jobs": 1}  # while the command ran
    assert "CVBENCH_THREADS" not in os.environ  # and not after it
    assert main(["run", "-d", "digits", "-p", "pixels-knn", "--threads", "0", "--dry-run"]) == 2


def test_export_formats_keep_integers_and_iso_times(two_runs, capsys):
    assert main(["export", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["pipeline"] for r in rows} == {"pixels-knn", "pixels-logreg"}
    for r in rows:
        assert isinstance(r["n_train"], int) and isinstance(r["seed"], int) and isinstance(r["concurrency"], int)
        assert r["start_time"][:4].isdigit() and r["start_time"][10] == "T" and r["start_time"].endswith("+00:00")
    # an integer parameter stays an integer; one a pipeline does not cap is null, not NaN or a string
    assert {r["pipeline"]: r["param.tune_max_train"] for r in rows} == {"pixels-knn": None, "pixels-logreg": 10_000}
    assert all(isinstance(r["param.tune_max_train"], int) for r in rows if r["pipeline"] == "pixels-logreg")
    assert main(["export", "--format", "md"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| section") and set(md[1]) <= set("|-: ") and len(md) == 4
    assert main(["export", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert tex.startswith("\\begin{tabular}") and "test\\_accuracy" in tex and "\\bottomrule" in tex
    assert f"& {rows[0]['n_train']} &" in tex  # an integer, not 200.0000


def test_progress_counts_jobs_and_prints_readable_numbers(tracker, capsys):
    from bench.execute import _readable

    assert _readable(15960.4) == "15,960" and _readable(2.9e-05) == "2.9e-05" and _readable(0.97312) == "0.9731"
    args = ["run", "-d", "digits", "-p", "pixels-knn", "-p", "mlp", "--param", "mlp.epochs=2", "--max-train", "200",
            "--max-val", "60", "--max-test", "60", "--no-table"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[1/2] run   digits/pixels-knn/0  (elapsed" in out
    assert "[2/2] run   digits/mlp/0" in out and "ETA" in out
    assert "  epoch 2/2: " in out and "e+0" not in out
    assert main([*args, "--force", "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "run   " not in quiet and "epoch" not in quiet and "2 job(s) in" in quiet
