"""Reliability: messy inputs, archives, bad names and config, interruptions, the tracking store, concurrency,
determinism and security. Each case checks what the user actually sees."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.datasets import SplitOptions, load_dataset, prepare
from bench.errors import DatasetError

ROOT = Path(__file__).resolve().parents[1]


def _cli(args: list[str], env_extra: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def _png(path: Path, value: int, size=(12, 12), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(path)


# --------------------------------------------------------------------------------------------------- messy input
def _messy_tree(root: Path) -> Path:
    for cls, v in (("bright", 220), ("dark", 30)):
        for i in range(8):
            _png(root / cls / f"{i}.png", v + i)
    a, b = root / "bright", root / "dark"
    good = (a / "0.png").read_bytes()
    Image.new("RGB", (40, 40), (200, 200, 200)).save(a / "real.jpg", quality=90)
    (a / "corrupt.jpg").write_bytes((a / "real.jpg").read_bytes()[:60])  # truncated JPEG
    (a / "zero.png").write_bytes(b"")
    (a / "text.png").write_text("I am text pretending to be a PNG")
    (b / "notes.txt").write_text("not an image at all")
    (b / "unreadable.png").symlink_to(root / "does-not-exist.png")  # reading fails even as root
    (b / ".DS_Store").write_bytes(b"\0junk")
    (b / ".hidden.png").write_bytes(good)
    (root / "__MACOSX" / "bright").mkdir(parents=True)
    (root / "__MACOSX" / "bright" / "._0.png").write_bytes(b"resource fork")
    (root / "empty_class").mkdir()
    _png(root / "lonely" / "only.png", 128)
    Image.new("L", (10_000, 10_000), 210).save(a / "huge.png")
    Image.new("L", (1, 1), 215).save(a / "tiny.png")
    for mode in ("LA", "P", "RGBA", "CMYK", "I;16"):
        img = Image.new("RGB", (12, 12), (225, 225, 225))
        img = Image.fromarray(np.full((12, 12), 225 * 257, np.uint16)) if mode == "I;16" else img.convert(mode)
        img.save(a / f"mode_{mode.replace(';', '')}.{'tiff' if mode in ('CMYK', 'I;16') else 'png'}")
    return root


def test_messy_folder_loads_what_it_can_and_lists_the_rest(tmp_path, capsys):
    root = _messy_tree(tmp_path / "messy")
    d = prepare(f"folder:{root}", SplitOptions(test_fraction=0.25))
    reasons = {Path(f).name: why for f, why in d.meta["skipped"]}
    assert "0 bytes" in reasons["zero.png"]
    assert "not a decodable image" in reasons["corrupt.jpg"] or "truncated" in reasons["corrupt.jpg"].lower()
    assert "not a decodable image" in reasons["text.png"]
    assert "not a decodable image" in reasons["notes.txt"]
    assert "unreadable file" in reasons["unreadable.png"]
    assert "empty folder" in reasons["empty_class"]
    assert "has 1 training image(s)" in reasons["lonely"] and "at least 3" in reasons["lonely"]
    assert "lonely" in capsys.readouterr().err  # the user is told which class was dropped and why
    assert not any(n.startswith(".") or n == "__MACOSX" for n in reasons)  # junk is ignored, not "skipped"
    assert d.class_names == ["bright", "dark"]
    n = len(d.y_train) + len(d.y_val) + len(d.y_test)
    assert n == 8 + 8 + 3 + 5  # good pngs, real.jpg + huge + tiny, five odd modes
    X = np.concatenate([d.X_train, d.X_val, d.X_test])
    y = np.concatenate([d.y_train, d.y_val, d.y_test])
    assert X[y == 0].min() > 150 and X[y == 1].max() < 60  # every mode decoded to the right brightness


def test_skipped_files_are_logged_with_the_run(tmp_path, tracker):
    from bench.runner import Job, run_grid

    root = _messy_tree(tmp_path / "messy")
    (res,) = run_grid([Job(f"folder:{root}", "pixels-knn", params={"tune": False})], tracker=tracker,
                      log=lambda m: None)
    run = tracker.client.get_run(res.run_id)
    assert int(run.data.params["n_skipped_files"]) == 7
    path = tracker.download_artifact(res.run_id, "skipped_files.csv", str(tmp_path / "dl"))
    text = Path(path).read_text()
    assert "zero.png" in text and "0 bytes" in text and "lonely" in text


def test_nothing_usable_names_the_path(tmp_path):
    root = tmp_path / "junk"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_text("nope")
    (root / "b").mkdir()
    (root / "b" / "y.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match=re.escape(str(root))):
        load_dataset(f"folder:{root}")


def test_one_usable_class_is_an_error(tmp_path):
    for i in range(5):
        _png(tmp_path / "one" / "a" / f"{i}.png", 10 * i)
    _png(tmp_path / "one" / "b" / "0.png", 100)
    with pytest.raises(DatasetError, match="fewer than two classes"):
        prepare(f"folder:{tmp_path / 'one'}")


# ------------------------------------------------------------------------------------------------------ archives
def test_zip_traversal_and_bomb_are_refused_and_nothing_is_written_outside(tmp_path, capsys):
    import io

    buf = io.BytesIO()
    Image.new("L", (8, 8), 99).save(buf, "PNG")
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for cls in ("a", "b"):
            for i in range(4):
                zf.writestr(f"{cls}/{i}.png", buf.getvalue())
        zf.writestr("../../outside.png", buf.getvalue())
        zf.writestr("/etc/cvbench-abs.png", buf.getvalue())
        zf.writestr("a/bomb.png", b"\0" * (120 << 20))  # 120 MB of zeros: ~1000:1
    before = set(tmp_path.parent.iterdir())
    ds = load_dataset(f"folder:{z}", cache_dir=tmp_path / "cache")
    reasons = [why for _, why in ds.meta["skipped"]]
    assert sum("unsafe path" in r for r in reasons) == 2
    assert any("zip bomb" in r for r in reasons)
    assert len(ds.y_train) == 8
    assert set(tmp_path.parent.iterdir()) == before and not Path("/etc/cvbench-abs.png").exists()
    # the run goes ahead on what is safe (kNN's k grid shrinks to the 6 training images) and says what it skipped
    capsys.readouterr()
    assert main(["run", "-d", f"folder:{z}", "-p", "pixels-knn", "--no-table"]) == 0  # in-process: same CLI
    out = capsys.readouterr().out
    assert "1 finished" in out, out
    assert "skipped 3 file(s), listed with their reasons in each run's skipped_files.csv" in out
    assert "../../outside.png (unsafe path in archive" in out


# ---------------------------------------------------------------------------------------------- names and config
@pytest.mark.parametrize("text, expect", [
    ("datasets: [digits]\npipelines: [pixels-knn\n", r"bad\.yaml, line \d+: invalid YAML"),
    ("datasets: [digits]\npipelines:\n  - pixels-knn\n  - {name: cnn-small, parms: {}}\n",
     r"bad\.yaml, line 4: each pipeline must be"),
    ("datasets: [digits]\nseeds: [zero]\npipelines: [pixels-knn]\n", r"bad\.yaml, line 2: 'seeds' must be"),
    ("datasets: [digits]\npipelines: [pixels-knn]\noptions:\n  max_trian: 5\n",
     r"bad\.yaml, line 4: unknown option 'max_trian'"),
    # mis-indented list: YAML reads one name "pixels-knn - hog-linsvm"; the line and the closest names are given
    ("datasets: [digits]\npipelines:\n  - pixels-knn\n   - hog-linsvm\n",
     r"bad\.yaml, line 3: unknown pipeline 'pixels-knn - hog-linsvm'\. Did you mean: .*hog-linsvm"),
    ("datasets:\n  - digits\n  - mnist5kk\npipelines: [pixels-knn]\n",
     r"bad\.yaml, line 3: unknown dataset 'mnist5kk'\. Did you mean: mnist5k"),
])
def test_invalid_suite_yaml_names_file_and_line(tmp_path, capsys, text, expect):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    assert main(["run", "--suite", str(f)]) == 2
    err = capsys.readouterr().err
    assert re.search(expect, err), err
    assert "Traceback" not in err


def test_unknown_names_and_params_are_messages(capsys):
    assert main(["run", "-d", "digits", "-p", "pixels-knnn"]) == 2
    assert "Did you mean: pixels-knn" in capsys.readouterr().err
    assert main(["run", "-d", "mnist-5k", "-p", "pixels-knn"]) == 2
    assert "mnist5k" in capsys.readouterr().err
    assert main(["run", "-d", "digits", "-p", "pixels-knn", "--param", "pixels-knn.kay=3"]) == 2
    assert "has no parameter(s) ['kay']" in capsys.readouterr().err
    assert main(["run", "--suite", "no-such-suite"]) == 2
    assert "built-in suites: " in capsys.readouterr().err
    from pipelines.features.bovw import surf_unavailable_reason

    if surf_unavailable_reason():  # asked for by name, an unavailable pipeline is refused before any run
        assert main(["run", "-d", "digits", "-p", "surf-bovw-linsvm"]) == 2
        err = capsys.readouterr().err
        assert "pipeline 'surf-bovw-linsvm' is unavailable: SURF is patented" in err and "Traceback" not in err


@pytest.mark.timeout(120)
def test_offline_torchvision_dataset_fails_fast_naming_files(tmp_path, capsys, monkeypatch):
    """No network here, whatever the machine has: every download request fails. It fails fast because the
    loader bounds socket operations while downloading (a stalled network would otherwise hang the run)."""
    import socket
    import urllib.error
    import urllib.request

    timeouts = []

    def offline(*a, **k):
        timeouts.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["run", "-d", "cifar10", "-p", "pixels-knn", "--data-dir", str(tmp_path / "tv")]) == 2
    err = capsys.readouterr().err
    assert timeouts and all(t is not None and t <= 30 for t in timeouts), timeouts  # never an unbounded wait
    assert socket.getdefaulttimeout() is None  # and the process-wide default is restored afterwards
    assert "cifar-10-batches-py" in err and str(tmp_path / "tv") in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------- interruptions
def _statuses(results: Path, pipeline: str, dataset: str = "digits") -> list[str]:
    from bench.runner import experiment_name
    from bench.tracking import Tracker

    t = Tracker(f"sqlite:///{results / 'mlflow.db'}")
    exp = t.client.get_experiment_by_name(experiment_name(dataset))
    if exp is None:
        return []
    runs = t.client.search_runs([exp.experiment_id], f"tags.pipeline = '{pipeline}'")
    return sorted(r.info.status for r in runs)


def _interrupt_and_rerun(tmp_path: Path, args: list[str], marker: str, sig: int, dataset: str,
                         pipeline: str, capsys, before_rerun=None) -> tuple[str, list[str], list[str], str]:
    """Run ``bench run ARGS`` in a subprocess, send ``sig`` as soon as a line starting with ``marker`` is printed
    (it must exit 130 saying it was interrupted, leaving only complete cache entries), call
    ``before_rerun(results)`` if given, then run the same command again to completion, in this process (the
    store and caches are the subprocess's: the test's results directory; no second interpreter to start).
    Returns (output of the interrupted run, run statuses after it, statuses after the rerun, rerun output).
    Tests request ``tracker`` so that the store already exists: creating MLflow's schema takes seconds."""
    res = tmp_path / "results"
    assert os.environ["CVBENCH_RESULTS"] == str(res) and (res / "mlflow.db").exists()  # isolated_results, tracker
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "bench", "run", *args, "--no-table"]
    # a shell running us in the background may ignore SIGINT, and children inherit that: restore the default
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(marker):
            proc.send_signal(sig)
            break
    out = "".join(lines) + proc.stdout.read()
    proc.wait(timeout=60)
    assert proc.returncode == 130 and "interrupted" in out, out
    after_signal = _statuses(res, pipeline, dataset)
    # every cache entry is complete: no temporary files, every feature array has its metadata and loads
    assert not [p for p in res.rglob("*") if p.name.startswith(".tmp")], "temporary cache files left behind"
    for npy in (res / "cache").rglob("*.npy"):
        assert "features" not in npy.parts or npy.with_suffix(".json").exists()
        np.load(npy, allow_pickle=False)
    if before_rerun is not None:
        before_rerun(res)
    capsys.readouterr()
    assert main(["run", *args, "--no-table"]) == 0
    return out, after_signal, _statuses(res, pipeline, dataset), capsys.readouterr().out


# SIGTERM becomes a KeyboardInterrupt in bench.cli's handler, installed before any work: from there both signals
# take the same path. Each is sent where no run exists yet (loading) and in one phase with an open run.
@pytest.mark.slow
@pytest.mark.timeout(300)  # the marker never printed: a hang, not a wait
def test_signal_during_training_marks_killed_and_rerun_completes(tmp_path, tracker, capsys):
    """Ctrl-C (SIGINT) while a network trains."""
    args = ["-d", "digits", "-p", "cnn-small", "--param", "epochs=6", "--param", "width=8"]
    _, killed, done, _ = _interrupt_and_rerun(tmp_path, args, "  epoch 1/", signal.SIGINT, "digits", "cnn-small",
                                              capsys)
    assert killed == ["KILLED"] and done == ["FINISHED", "KILLED"]
    assert main(["run", *args, "--no-table"]) == 0  # a third time: done, so skipped
    assert "1 skipped" in capsys.readouterr().out
    assert _statuses(tmp_path / "results", "cnn-small") == ["FINISHED", "KILLED"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_loading_leaves_no_run_and_no_cache_then_rerun_completes(tmp_path, sig, tracker, capsys):
    """One "image" is a named pipe: decoding blocks on it until a writer appears, so the signal lands while
    loading whatever the machine's speed, before any run exists. The rerun finds a real image there."""
    src = tmp_path / "imgs"
    for c, v in (("c0", 40), ("c1", 200)):
        for i in range(8):
            _png(src / c / f"{i}.png", v + i)
    blocker = src / "c0" / "9.png"
    os.mkfifo(blocker)

    def unblock(res: Path) -> None:
        assert not (res / "cache" / "datasets").exists() or not any((res / "cache" / "datasets").iterdir())
        blocker.unlink()
        _png(blocker, 49)

    spec = f"folder:{src}"
    out, after, done, _ = _interrupt_and_rerun(tmp_path, ["-d", spec, "-p", "pixels-knn"], "load", sig, spec,
                                               "pixels-knn", capsys, before_rerun=unblock)
    assert "run   " not in out  # the signal came while loading
    assert after == [] and done == ["FINISHED"]  # no run was opened, so none could be FINISHED


@pytest.mark.slow
@pytest.mark.timeout(300)  # the marker never printed: a hang, not a wait
def test_signal_during_feature_extraction_marks_killed_and_rerun_completes(tmp_path, tracker, capsys):
    """SIGTERM (a scheduler stopping the job) while fitting sift-bovw, which starts with dense SIFT on 700
    mnist5k images (seconds: the signal lands in it). Few test images: the rerun predicts them several times."""
    args = ["-d", "mnist5k", "-p", "sift-bovw-ridge", "--max-train", "600", "--max-val", "100", "--max-test", "100",
            "--param", "vocab_size=64", "--param", "tune=false"]
    out, killed, done, _ = _interrupt_and_rerun(tmp_path, args, "  fit   ", signal.SIGTERM, "mnist5k",
                                                "sift-bovw-ridge", capsys)
    assert "done  " not in out
    assert killed == ["KILLED"] and done == ["FINISHED", "KILLED"]


def test_interrupted_cache_writes_leave_nothing_trusted(tmp_path, monkeypatch):
    from bench import datasets as dsmod
    from pipelines import cache

    calls = {"n": 0}
    real_save = np.save

    def interrupted_save(f, arr, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # die in the middle of writing the second array
            raise KeyboardInterrupt
        return real_save(f, arr, **kw)

    monkeypatch.setattr(dsmod.np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("digits", cache_dir=tmp_path / "dcache")
    monkeypatch.setattr(dsmod.np, "save", real_save)
    assert not [p for p in (tmp_path / "dcache").iterdir()]  # neither an entry nor a temporary left behind
    assert load_dataset("digits", cache_dir=tmp_path / "dcache").meta["cache"] == "miss"
    assert load_dataset("digits", cache_dir=tmp_path / "dcache").meta["cache"] == "hit"

    cache.set_cache_dir(tmp_path / "fcache")
    X = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
    monkeypatch.setattr(cache.np, "save", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cache.cached_array("demo", {}, X, lambda: X.reshape(2, -1).astype(np.float32))
    assert not list((tmp_path / "fcache").rglob("*.npy"))
    monkeypatch.setattr(cache.np, "save", real_save)
    first = cache.cached_array("demo", {}, X, lambda: X.reshape(2, -1).astype(np.float32))
    # a corrupt entry (e.g. truncated by a crash outside our control) is recomputed, not trusted
    next((tmp_path / "fcache").rglob("*.npy")).write_bytes(b"\x93NUMPY garbage")
    again = cache.cached_array("demo", {}, X, lambda: X.reshape(2, -1).astype(np.float32))
    assert not first.cached and not again.cached
    np.testing.assert_array_equal(first.value, again.value)


# ------------------------------------------------------------------------------------------------ tracking store
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)
def test_unreachable_tracking_server_fails_fast_naming_uri(isolated_results, monkeypatch, capsys):
    """Fails fast: one health probe with a short timeout, no retries, before anything is written."""
    import urllib.request

    uri = f"http://127.0.0.1:{_free_port()}"
    probes = []
    real = urllib.request.urlopen

    def spy(url, *a, **k):
        probes.append((getattr(url, "full_url", url), k.get("timeout", a[1] if len(a) > 1 else None)))
        return real(url, *a, **k)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["run", "-d", "digits", "-p", "pixels-knn"]) == 2
    err = capsys.readouterr().err
    assert probes == [(uri + "/health", probes[0][1])] and 0 < probes[0][1] <= 10, probes
    assert uri in err and "unreachable" in err and "Traceback" not in err
    assert not isolated_results.exists()  # nothing written anywhere else instead


def test_unwritable_results_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    r = _cli(["run", "-d", "digits", "-p", "pixels-knn"], {"CVBENCH_RESULTS": str(blocker / "results")})
    assert r.returncode == 2 and "not writable" in r.stderr and "Traceback" not in r.stderr


def test_full_disk_during_dataset_cache_is_a_clear_error(tmp_path, monkeypatch):
    import errno

    from bench import datasets as dsmod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dsmod.np, "save", full)
    with pytest.raises(DatasetError, match="No space left on device.*Free disk space"):
        load_dataset("digits", cache_dir=tmp_path / "dcache")


# --------------------------------------------------------------------------------------------------- concurrency
@pytest.mark.slow
def test_two_processes_share_one_fresh_sqlite_store(tmp_path):
    env = {**os.environ, "CVBENCH_RESULTS": str(tmp_path / "res")}
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [subprocess.Popen([sys.executable, "-m", "bench", "run", "-d", "digits", "-p", "pixels-knn",
                               "-p", "pixels-logreg", "--seed", str(s), "--seed", str(s + 10), "--no-table",
                               "--param", "tune=false"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env, cwd=ROOT) for s in (1, 2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
        assert "4 finished" in out and "locked" not in out.lower()
    statuses = _statuses(tmp_path / "res", "pixels-knn") + _statuses(tmp_path / "res", "pixels-logreg")
    assert statuses == ["FINISHED"] * 8


# --------------------------------------------------------------------------------------------------- determinism
def test_cpu_network_training_is_deterministic(digits_split):
    from pipelines.registry import create

    d = digits_split
    runs = []
    for _ in range(2):
        est = create("cnn-small", epochs=2, width=8, seed=5)
        est.fit(d.X_train[:500], d.y_train[:500], X_val=d.X_val, y_val=d.y_val)
        runs.append((est.predict(d.X_test), [h["val_accuracy"] for h in est.history_],
                     [h["train_loss"] for h in est.history_]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]


@pytest.mark.slow
def test_every_classical_pipeline_gives_identical_predictions_for_one_seed(digits_split, tmp_path, monkeypatch):
    """Same seed, same data: identical features for every feature (bag-of-words vocabularies included,
    extracted twice with no cache), then identical predictions and chosen parameters for every usable
    classical pipeline, each fitted twice on those features."""
    from sklearn.base import clone

    from pipelines import cache
    from pipelines.catalogue.classical import FEATURES
    from pipelines.registry import create, get_spec, list_pipelines

    d = digits_split
    # 160 training images: determinism does not depend on the amount of data, the cost of ~45 fits × 2 does
    Xtr, ytr, Xva, yva, Xte = d.X_train[:160], d.y_train[:160], d.X_val[:60], d.y_val[:60], d.X_test[:80]
    small = {"vocab_size": 24, "sample": 4000}  # bag-of-words pipelines: a small vocabulary, same code path
    smaller = {"bovw": small, "sift-fv": {"n_gaussians": 16, "sample": 4000},
               "sift-vlad": {"n_clusters": 16, "sample": 4000}}
    names = [n for n in list_pipelines(family="classical") if get_spec(n).available]
    assert len(names) >= 40

    def make(name: str):
        return create(name, **next((v for k, v in smaller.items() if k in name), {}), seed=3)

    monkeypatch.setattr(cache, "_cache_dir", None)
    monkeypatch.delenv("CVBENCH_FEATURE_CACHE", raising=False)
    for feature in FEATURES:
        usable = [n for n in names if n.startswith(f"{feature}-")]
        if not usable:
            continue  # e.g. surf-bovw without the non-free build
        f1, f2 = (clone(make(usable[0]).features).fit(Xtr, ytr) for _ in range(2))
        np.testing.assert_array_equal(f1.transform(Xte), f2.transform(Xte), err_msg=feature)
    cache.set_cache_dir(tmp_path / "features")  # features now identical: reuse them for the classifiers
    for name in names:
        a, b = (make(name).fit(Xtr, ytr, X_val=Xva, y_val=yva) for _ in range(2))
        assert a.fit_info_.get("chosen_params") == b.fit_info_.get("chosen_params"), name
        np.testing.assert_array_equal(a.predict(Xte), b.predict(Xte), err_msg=name)


# ------------------------------------------------------------------------------------------------------ security
def test_servers_bind_localhost_by_default():
    mk = (ROOT / "Makefile").read_text()
    assert re.search(r"^HOST\s*\?=\s*127\.0\.0\.1$", mk, re.M)
    for line in mk.replace("\\\n", " ").splitlines():  # join continuation lines
        if re.search(r"mlflow (ui|server)", line):
            assert "--host $(HOST)" in line, line


def test_no_unsafe_deserialisation_in_the_code():
    offenders = []
    for path in list((ROOT / "bench").rglob("*.py")) + list((ROOT / "pipelines").rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in m.group(1):
                offenders.append(f"{path.name}: torch.load without weights_only=True")
        for line in text.splitlines():
            # Unpickling is allowed only for files the suite wrote itself, and must say so on the line.
            if re.search(r"\bpickle\.loads?\(|joblib\.load\(|allow_pickle=True", line) \
                    and "trusted: written by cvbench" not in line:
                offenders.append(f"{path.name}: unpickling: {line.strip()}")
    assert not offenders, offenders
