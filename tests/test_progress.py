"""Progress bars (a terminal only, never under --quiet, nothing numerical changed) and `study --dry-run`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from cvbench_util import progress as P

ROOT = Path(__file__).resolve().parents[1]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch):
    """A fake terminal; bars are drawn at once and at every step so that tiny loops show theirs. Tests call
    ``terminal.attach()`` first: pytest re-installs its own ``sys.stderr`` after fixtures are set up."""
    monkeypatch.delenv(P.ENV, raising=False)
    monkeypatch.setattr(P, "DELAY_S", 0.0)
    monkeypatch.setattr(P, "MININTERVAL_S", 0.0)
    term = FakeTerminal()
    term.attach = lambda: monkeypatch.setattr(sys, "stderr", term)
    return term


def _walk(**kw) -> None:
    for _ in P.progress(range(3), "walk", unit="step", **kw):
        pass


def test_bars_on_a_terminal_only_and_never_when_off(terminal, monkeypatch):
    terminal.attach()
    _walk()
    assert "walk" in terminal.getvalue() and "3/3" in terminal.getvalue() and "\r" in terminal.getvalue()
    pipe = io.StringIO()  # not a terminal: nothing at all
    _walk(file=pipe)
    assert pipe.getvalue() == ""
    monkeypatch.setenv(P.ENV, "1")  # forced on, even into a pipe
    _walk(file=pipe)
    assert "walk" in pipe.getvalue()
    monkeypatch.setenv(P.ENV, "0")  # what --quiet sets: off, even on a terminal
    terminal.truncate(0)
    terminal.seek(0)
    _walk()
    with P.stage("k-means"):
        pass
    assert terminal.getvalue() == ""


def test_short_loops_draw_nothing_within_the_delay(monkeypatch):
    monkeypatch.delenv(P.ENV, raising=False)
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    _walk()  # DELAY_S (0.5 s) never passes
    assert term.getvalue() == ""


def test_training_bar_shows_epoch_of_n_and_changes_no_number(terminal, digits_split, one_torch_thread, monkeypatch):
    terminal.attach()
    from pipelines.training import NetClassifier

    d = digits_split
    X, y = d.X_train[:400], d.y_train[:400]

    def fit():
        return NetClassifier("cnn-small", epochs=2, batch_size=100, seed=0).fit(X, y, d.X_val[:60], d.y_val[:60])

    on = fit()
    out = terminal.getvalue()
    assert "epoch 1/2" in out and "epoch 2/2" in out and "batch" in out and "8/8" in out  # whole-run total
    monkeypatch.setenv(P.ENV, "0")
    off = fit()
    assert [h["train_loss"] for h in on.history_] == [h["train_loss"] for h in off.history_]
    np.testing.assert_array_equal(on.predict(d.X_test), off.predict(d.X_test))


def test_airbench_bar(terminal, one_torch_thread):
    terminal.attach()
    from pipelines.registry import create

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 255, (200, 16, 16, 1), dtype=np.uint8), np.arange(200) % 4
    est = create("airbench-cnn", width=8, epochs=1.5, batch_size=100, precision="fp32", tta=0).fit(X, y)
    out = terminal.getvalue()
    assert est.fit_info_["steps"] == 3 and "epoch 1/2" in out and "epoch 2/2" in out and "3/3" in out


def test_tuning_and_encoding_bars(terminal, digits_split):
    terminal.attach()
    from pipelines.features.bovw import BoVWFeatures
    from pipelines.features.encoding import sift_size
    from pipelines.registry import create

    d = digits_split
    create("pixels-ridge").fit(d.X_train[:200], d.y_train[:200], d.X_val[:60], d.y_val[:60])
    assert "tune RidgeClassifier on 200 images" in terminal.getvalue() and "val " in terminal.getvalue()
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (12, 48, 48, 1), dtype=np.uint8)
    BoVWFeatures(detector="dense", step=8, sizes=(sift_size(4),), min_size=32, vocab_size=8, sample=400,
                 chunk_images=4).fit(imgs)
    out = terminal.getvalue()
    assert "BoVW sift descriptors (vocabulary sample)" in out and "BoVW fit on" in out


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != P.ENV}
    e.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=300)


def test_piped_run_prints_no_bar_control_characters(isolated_results):
    r = _run(["run", "-d", "digits", "-p", "cnn-small", "--param", "epochs=1", "--max-train", "300", "--no-table"])
    assert r.returncode == 0, r.stderr
    assert "epoch 1/1" in r.stdout  # the plain per-epoch line stays
    for text in (r.stdout, r.stderr):
        assert "\r" not in text and "\x1b" not in text


def test_quiet_turns_bars_off_even_on_a_terminal(terminal, monkeypatch):
    terminal.attach()
    args = ["run", "-d", "digits", "-p", "cnn-small", "--param", "epochs=1", "--max-train", "300", "--no-table"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert main([*args, "--quiet"]) == 0
    assert "epoch 1/1" not in terminal.getvalue() and "\r" not in terminal.getvalue()
    assert P.ENV not in os.environ  # restored after the command
    assert main([*args, "--seed", "1"]) == 0  # the same on a terminal without --quiet: bars
    assert "epoch 1/1" in terminal.getvalue() and "batch" in terminal.getvalue()


def test_study_dry_run_lists_jobs_and_creates_no_runs(tracker, capsys):
    de = ["study", "data-efficiency", "-d", "digits", "-p", "pixels-knn", "--per-class", "5,all", "--repeats", "1",
          "--max-train", "200", "--max-val", "60", "--max-test", "60"]
    assert main([*de, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "plan  digits/pixels-knn/0 (5/class)" in out and "plan  digits/pixels-knn/0 (all images)" in out
    assert "2 job(s) would run, 0 skipped as done; nothing was run" in out
    assert "digits" not in [e.name for e in tracker.experiments()]  # no experiment, so no run either
    rb = ["study", "robustness", "-d", "digits", "-p", "pixels-knn", "--corruption", "blur", "--severity", "1",
          "--max-train", "200", "--max-val", "60", "--max-test", "60"]
    assert main([*rb, "--dry-run"]) == 0
    assert "plan  digits/pixels-knn/0/robustness: fit, then 1 corruption(s) × 1 severity" in capsys.readouterr().out
    assert "digits" not in [e.name for e in tracker.experiments()]

    assert main([*de, "--per-class", "5"]) == 0  # run one cell for real, then plan again: it is done
    n_runs = len(tracker.runs_frame(finished_only=False, include_parents=True))
    capsys.readouterr()
    assert main([*de, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "skip  digits/pixels-knn/0 (5/class): FINISHED run" in out
    assert "plan  digits/pixels-knn/0 (all images)" in out and "1 job(s) would run, 1 skipped as done" in out
    assert main([*rb, "--dry-run"]) == 0
    assert "plan  digits/pixels-knn/0/robustness" in capsys.readouterr().out
    assert len(tracker.runs_frame(finished_only=False, include_parents=True)) == n_runs  # nothing more recorded
