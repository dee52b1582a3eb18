"""Numbers you can publish: each pipeline is what its name says, costs do not depend on job order or the cache,
the data is part of a job's identity, nonsense input is refused before anything is recorded, tuned parameters
never fall back silently, and no job's randomness depends on what ran before it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from bench.cli import main
from bench.datasets import SplitOptions
from bench.runner import Job, run_grid
from pipelines import registry
from pipelines.base import ImageFeatures
from pipelines.registry import create, get_spec, list_pipelines, register


# -- 1. every pipeline is what its name says --------------------------------------------------------------------
def _what_it_is(est) -> tuple[str, str]:
    """(features, classifier) read off a built estimator, independently of the registry's metadata."""
    from sklearn.kernel_approximation import AdditiveChi2Sampler
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.neighbors import KNeighborsClassifier

    from pipelines.airbench import AirbenchClassifier
    from pipelines.classifiers import KernelSVM, LinearSVM
    from pipelines.features.bovw import BoVWFeatures
    from pipelines.features.concat import ConcatFeatures
    from pipelines.features.encoding import FisherVectorFeatures, VLADFeatures
    from pipelines.intersection import IntersectionSVM
    from pipelines.training import NetClassifier
    from pipelines.transfer import BackboneFeatures, FineTuneClassifier

    if isinstance(est, FineTuneClassifier):
        return est.backbone, "softmax"
    if isinstance(est, AirbenchClassifier):
        return "cnn", "softmax"
    if isinstance(est, NetClassifier):
        return ("pixels" if est.arch == "mlp" else "cnn"), ("mlp" if est.arch == "mlp" else "softmax")
    f, c = est.features, est.classifier
    if isinstance(f, ConcatFeatures) and all(isinstance(p, BackboneFeatures) for p in f.parts):
        f = f.parts[0]
    if isinstance(f, BackboneFeatures):
        feat = f.backbone
    elif isinstance(f, ConcatFeatures):
        feat = "hogcolor"
    elif isinstance(f, BoVWFeatures):  # a dense grid pooled over a three-level pyramid: spatial pyramid matching
        feat = f"{f.method}-{'spm' if f.detector == 'dense' and len(f.pyramid) == 3 else 'bovw'}"
    elif isinstance(f, FisherVectorFeatures | VLADFeatures):
        feat = f"{f.method}-{'fv' if isinstance(f, FisherVectorFeatures) else 'vlad'}"
    else:
        feat = {"PixelFeatures": "pixels", "ColorHistFeatures": "colorhist", "HOGFeatures": "hog",
                "LBPFeatures": "lbp", "TinyImageFeatures": "tiny"}[type(f).__name__]
    steps = [s for _, s in c.steps] if hasattr(c, "steps") else [c]
    last = steps[-1]
    if isinstance(last, KNeighborsClassifier):
        clf = "knn"
    elif isinstance(last, LogisticRegression):
        clf = "logreg"
    elif isinstance(last, RidgeClassifier):
        clf = "ridge"
    elif isinstance(last, IntersectionSVM):
        clf = "hiksvm"
    elif isinstance(last, KernelSVM):
        clf = "rbfsvm"
    elif isinstance(last, LinearSVM):
        clf = "chi2svm" if any(isinstance(s, AdditiveChi2Sampler) for s in steps) else "linsvm"
    else:
        raise AssertionError(f"unrecognised classifier {last!r}")
    return feat, clf


def test_every_pipeline_builds_what_its_name_and_metadata_claim(capsys):
    assert main(["list", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    names = list_pipelines()
    assert len(names) > 40 and set(names) <= set(listed)
    for name in names:
        spec = get_spec(name)
        feat, clf = _what_it_is(create(name))
        assert (feat, clf) == (spec.features, spec.classifier) == (listed[name]["features"],
                                                                  listed[name]["classifier"]), name
        assert name.startswith(feat) or spec.family == "scratch", name  # <features>-<classifier> names
    # the fine-tune pipelines train the backbone they are named after (they all trained efficientnet_lite0)
    for b in ("resnet18", "alexnet", "vgg16", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "googlenet"):
        assert create(f"{b}-finetune").backbone == b


# -- 2. costs do not depend on job order or on the feature cache ------------------------------------------------
SLEEP_S = 0.05  # every extraction (a whole split, or one image for latency) takes at least this long


class SlowFeatures(ImageFeatures):
    """Mean intensity per row, after a fixed delay (``SLEEP_S``, read at call time): the extraction cost is
    known from below."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def _extract(self, X: np.ndarray) -> np.ndarray:
        time.sleep(SLEEP_S)
        return self.scale * X.mean(axis=(2, 3), dtype=np.float32)


@pytest.fixture
def slow_pipelines(monkeypatch):
    from pipelines.classifiers import TunedFeatureClassifier, make_classifier

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    for clf in ("knn", "ridge"):
        def factory(k: int | None = None, seed: int = 0, _clf: str = clf) -> TunedFeatureClassifier:
            est, grid = make_classifier(_clf, seed=seed, k=k) if _clf == "knn" else make_classifier(_clf, seed=seed)
            return TunedFeatureClassifier(SlowFeatures(), est, grid, seed=seed)

        register(f"slow-{clf}", family="classical", features="slow", classifier=clf)(factory)
    return ["slow-knn", "slow-ridge"]


def test_cost_columns_do_not_depend_on_job_order(slow_pipelines, tracker, tmp_path, monkeypatch):
    """Two pipelines sharing features, in both orders: the second one reads them from the cache, yet both report
    the extraction they need (charged at the cache's recorded time), in fit and in prediction."""
    split = SplitOptions(max_train=200, max_val=60, max_test=60)
    metrics = {}
    for order in (slow_pipelines, slow_pipelines[::-1]):
        monkeypatch.setenv("CVBENCH_FEATURE_CACHE", str(tmp_path / "-".join(order)))  # fresh cache per order
        res = run_grid([Job("digits", p, 0, {}, split) for p in order], tracker=tracker, force=True,
                       log=lambda m: None)
        assert [r.status for r in res] == ["FINISHED", "FINISHED"]
        first, second = res
        assert tracker.client.get_run(second.run_id).data.tags["features_cached"] == "true"
        for r in res:
            m = r.metrics
            metrics[order[0], r.job.pipeline] = m
            assert m["fit_time_s"] == pytest.approx(m["feature_time_s"] + m["train_time_s"])
            assert m["feature_time_s"] >= 2 * SLEEP_S  # train + validation features, cached or not
            assert m["fit_time_s"] >= 2 * SLEEP_S
            assert m["predict_feature_time_s"] >= SLEEP_S and m["predict_time_s"] >= SLEEP_S
            assert m["predict_time_s"] == pytest.approx(m["predict_feature_time_s"] + m["predict_classifier_time_s"])
            assert m["latency_ms_per_img"] >= 1000 * SLEEP_S  # latency extracts for real (no cache)
        # the job that reused the cache is charged exactly what the first one measured
        assert second.metrics["feature_time_s"] == first.metrics["feature_time_s"]
        assert second.metrics["predict_feature_time_s"] == first.metrics["predict_feature_time_s"]


def test_suite_order_flags_only_shifts_beyond_the_spread_between_processes():
    """The benchmark behind the order clause: a cell counts as order-dependent only when the two orders' samples
    do not overlap and their medians differ by more than 10%; process-to-process scatter is not flagged."""
    from bench.benchmarks.suite_order import order_effects

    def runs(col: str, values: list[float]) -> list[dict]:
        return [{"p": {col: v, "test_accuracy": 0.9}} for v in values]

    scatter = order_effects(runs("predict_time_s", [4.0, 5.9, 4.2]), runs("predict_time_s", [5.8, 4.1, 6.0]))
    close = order_effects(runs("fit_time_s", [1.00, 1.01, 1.02]), runs("fit_time_s", [1.05, 1.06, 1.07]))
    shifted = order_effects(runs("peak_rss_mb", [94, 95, 96]), runs("peak_rss_mb", [129, 130, 131]))
    assert scatter == [] and close == []  # overlapping ranges; disjoint but within 10%
    assert shifted == [("p", "peak_rss_mb")]


def test_cache_hits_are_charged_the_peak_memory_their_computation_recorded(slow_pipelines, tracker, tmp_path,
                                                                            monkeypatch):
    """A job that reads its features from the cache reports at least the peak their extraction recorded, as if it
    had extracted them; a cache entry without a recorded peak is recomputed, never charged nothing."""
    monkeypatch.setitem(globals(), "SLEEP_S", 0.0)  # memory, not time: no need to wait
    monkeypatch.setenv("CVBENCH_FEATURE_CACHE", str(tmp_path / "cache"))
    split = SplitOptions(max_train=200, max_val=60, max_test=60)
    job = Job("digits", "slow-ridge", 0, {}, split)
    first = run_grid([job], tracker=tracker, force=True, log=lambda m: None)[0]
    assert first.metrics["peak_rss_mb"] < 10_000
    metas = sorted((tmp_path / "cache" / "SlowFeatures").glob("*.json"))
    assert len(metas) == 3  # train, val, test features
    for meta in metas:  # pretend the extraction had peaked at 10 GB
        info = json.loads(meta.read_text())
        assert info["compute_peak_mb"] >= 0 and info["compute_residue_mb"] >= 0
        meta.write_text(json.dumps({**info, "compute_peak_mb": 10_000.0}))
    second = run_grid([job], tracker=tracker, force=True, log=lambda m: None)[0]
    assert tracker.client.get_run(second.run_id).data.tags["features_cached"] == "true"
    for k in ("fit_peak_rss_mb", "predict_peak_rss_mb", "peak_rss_mb"):
        assert second.metrics[k] >= 10_000
    for meta in metas:  # what an extraction left resident is carried to the end of the job that reads it
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "compute_peak_mb": 0.0,
                                    "compute_residue_mb": 5_000.0}))
    carried = run_grid([job], tracker=tracker, force=True, log=lambda m: None)[0]
    assert carried.metrics["fit_peak_rss_mb"] >= 10_000  # train + validation features' residues
    assert carried.metrics["predict_peak_rss_mb"] >= 5_000
    for meta in metas:  # an entry from before peaks were recorded: recomputed, and its peak recorded
        info = json.loads(meta.read_text())
        del info["compute_peak_mb"], info["compute_residue_mb"]
        meta.write_text(json.dumps(info))
    third = run_grid([job], tracker=tracker, force=True, log=lambda m: None)[0]
    assert tracker.client.get_run(third.run_id).data.tags["features_cached"] == "false"
    assert third.metrics["peak_rss_mb"] < 10_000
    assert all("compute_peak_mb" in json.loads(m.read_text()) for m in metas)


def test_peak_memory_is_the_blocks_own_footprint():
    from bench.measure import PeakRSS

    samples = iter([5000 * 2**20, 5000 * 2**20, 5100 * 2**20, 5050 * 2**20])
    last = [5000 * 2**20]
    all_read = threading.Event()  # the sampler has read every value: no sleep to hope it had time to

    def rss() -> int:
        last[0] = next(samples, None) or all_read.set() or last[0]
        return last[0]

    with PeakRSS(interval_s=0.001, rss=rss) as m:
        assert all_read.wait(timeout=60)
    assert m.start_bytes == 5000 * 2**20
    assert m.peak_mb == pytest.approx(100.0)  # not the 5,100 MiB the process holds


@pytest.mark.skipif(not __import__("pipelines.memory", fromlist=["x"])._reset_high_water_mark(),
                    reason="no resettable VmHWM (not Linux)")
def test_peak_memory_catches_a_transient_between_samples_and_nests():
    """The kernel's high-water mark sees a 160 MiB block mapped, written and unmapped between two samples; a
    nested probe (the feature cache's, inside a job's) resets it without losing the outer block's peak. The
    blocks are anonymous mappings, not ``malloc``: their pages are fresh whatever the allocator kept resident
    from earlier tests (with ``np.ones`` a heap that had free pages made the inner block look smaller)."""
    from bench.measure import PeakRSS

    with PeakRSS(interval_s=60) as outer:
        _touch(160)
        with PeakRSS(interval_s=60) as inner:
            _touch(40)
    assert outer.peak_mb > 150 and 38 < inner.peak_mb < 120, (outer.peak_mb, inner.peak_mb)


def _touch(mib: int) -> None:
    """Map ``mib`` MiB of fresh anonymous pages, make each resident, unmap them (not ``malloc``: the pages are
    new whatever the allocator kept from earlier tests)."""
    import mmap

    with mmap.mmap(-1, mib << 20) as m:
        view = np.frombuffer(m, dtype=np.uint8)
        view[::4096] = 1
        del view


@pytest.mark.skipif(not __import__("pipelines.memory", fromlist=["x"])._reset_high_water_mark(),
                    reason="no resettable VmHWM (not Linux)")
@pytest.mark.timeout(120)
def test_peak_memory_of_a_transient_is_not_shortened_by_child_processes():
    """The high-water mark covers this process only: child processes alive at entry (pool workers) must not be
    subtracted from it (they were, and a 40 MiB block with a 60 MB child beside it measured 0)."""
    from bench.measure import PeakRSS

    child = subprocess.Popen([sys.executable, "-c", "import sys, time; x = bytearray(60 << 20); "
                              "print('ready', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with PeakRSS(interval_s=60) as m:
            _touch(40)
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert 38 < m.peak_mb < 100, m.peak_mb


@pytest.mark.skipif(__import__("pipelines.memory", fromlist=["x"]).allocated_bytes() is None,
                    reason="no mallinfo2 (not glibc >= 2.33)")
def test_allocated_peak_does_not_depend_on_what_the_allocator_kept():
    """The same block (500 arrays of 100 KiB held at once) gets the same allocated peak in a fresh heap and in one
    riddled with freed holes that an earlier 'job' left resident (where the block's RSS barely grows)."""
    from bench.measure import PeakRSS, release_memory
    from pipelines.memory import allocated_bytes

    holding, sampled = threading.Event(), threading.Event()

    def allocated() -> int | None:
        """The real probe; it says when it has sampled while the block is held (sampling every 5 ms may miss a
        peak that lasts less, see PeakRSS: wait for a sample instead of sleeping and hoping)."""
        held = holding.is_set()  # read before sampling: the sample then includes the whole block
        a = allocated_bytes()
        if held:
            sampled.set()
        return a

    def block() -> float:
        holding.clear()
        sampled.clear()
        with PeakRSS(interval_s=60, allocated=allocated) as m:
            held = [np.ones(12_800) for _ in range(500)]
            holding.set()
            assert sampled.wait(timeout=60)
            del held
        assert m.alloc_peak_mb is not None
        return m.alloc_peak_mb

    release_memory()
    fresh = block()
    earlier = [np.ones(12_800) for _ in range(1000)]
    del earlier[::2]  # 500 freed 100-KiB holes, kept resident by the allocator
    riddled = block()
    del earlier
    assert fresh == pytest.approx(500 * 12_800 * 8 / 2**20, rel=0.05)
    assert riddled == pytest.approx(fresh, rel=0.05)


def test_allocated_peak_is_sampled_above_the_start():
    from bench.measure import PeakRSS

    samples = iter([700 * 2**20, 760 * 2**20, 720 * 2**20])
    last = [700 * 2**20]
    all_read = threading.Event()

    def allocated() -> int:
        last[0] = next(samples, None) or all_read.set() or last[0]
        return last[0]

    with PeakRSS(interval_s=60, allocated=allocated, alloc_interval_s=0.001) as m:
        assert all_read.wait(timeout=60)
    assert m.alloc_peak_mb == pytest.approx(60.0)


def test_backbone_features_build_their_network_once(monkeypatch):
    """Batch-1 latency must not pay a model copy (or a compilation) per call."""
    from pipelines import transfer

    calls = []
    real = transfer.load_embedder
    monkeypatch.setattr(transfer, "load_embedder", lambda *a, **k: calls.append(a) or real(*a, **k))
    f = transfer.BackboneFeatures(resolution=32, weights="random", multiscale=False, device="cpu")
    X = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    a = f.transform(X)
    for i in range(3):
        f.transform(X[i % 2:i % 2 + 1])
    assert len(calls) == 1
    assert np.allclose(f.transform(X), a, atol=1e-5)


# -- 3. contended timings are recorded as such ------------------------------------------------------------------
def test_concurrency_is_recorded_and_separates_hardware(tracker):
    from bench.executors import Context, Task, run_job
    from bench.report.analysis import load_runs

    exp = tracker.experiment_id("digits")
    job = Job("digits", "pixels-ridge", 0, {}, SplitOptions(max_train=100, max_val=40, max_test=40))
    for conc in (1, 2):
        res = run_job(Task(job, exp), Context(tracker.uri, {"cache_dir": None}, concurrency=conc))
        assert res.status == "FINISHED", res.error
        assert tracker.client.get_run(res.run_id).data.tags["cvbench.concurrency"] == str(conc)
    used = load_runs(tracker).used
    assert len(used) == 2  # the contended run neither supersedes nor is averaged with the exclusive one
    assert sorted(used["concurrency"]) == [1, 2]
    assert used["hardware"].nunique() == 2 and used["hardware"].str.contains("contended: 2 jobs").sum() == 1


def test_machines_with_one_model_name_but_other_instruction_sets_are_other_hardware(tmp_path, monkeypatch):
    from bench import measure

    head = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
    files = {"amx": head + "flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n",
             "bf16": head + "flags\t\t: fpu sse avx2 avx512f avx512_bf16\n",
             "arm": "processor\t: 0\nFeatures\t: fp asimd sve bf16\n"}
    seen = {}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        monkeypatch.setattr(measure, "CPUINFO", str(tmp_path / name))
        monkeypatch.setattr(measure, "_ENV", None)  # computed once per process: recompute for each machine
        seen[name] = measure.environment_tags()
    assert seen["amx"]["env.cpu_isa"] == "avx2 avx512f avx512_bf16 amx_bf16"
    assert seen["bf16"]["env.cpu_isa"] == "avx2 avx512f avx512_bf16"
    assert seen["arm"]["env.cpu_isa"] == "asimd sve bf16"
    assert seen["amx"]["env.cpu"] == seen["bf16"]["env.cpu"] == "Intel(R) Xeon(R) Processor"
    # one model name, two machines: the report keeps their runs in separate rows and never averages their timings
    assert seen["amx"]["env.hardware"] != seen["bf16"]["env.hardware"]
    assert "[avx2 avx512f avx512_bf16 amx_bf16]" in seen["amx"]["env.hardware"]
    monkeypatch.setattr(measure, "CPUINFO", str(tmp_path / "absent"))
    assert measure._cpu_isa() == ""


# -- 7. a changed dataset is a new job --------------------------------------------------------------------------
def _folder(root, n=6, shift=0):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, base in (("dark", 40), ("light", 200)):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                px = np.clip(base + shift + rng.integers(-20, 20, (8, 8)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(d / f"{i}.png")


def test_changed_folder_dataset_is_rerun_not_skipped(tracker, tmp_path):
    _folder(tmp_path / "imgs")
    job = Job(f"folder:{tmp_path / 'imgs'}", "pixels-ridge", 0, {}, SplitOptions(val_fraction=0.3))
    log = []
    assert [r.status for r in run_grid([job], tracker=tracker, log=log.append)] == ["FINISHED"]
    assert [r.status for r in run_grid([job], tracker=tracker, log=log.append)] == ["SKIPPED"]
    _folder(tmp_path / "imgs", shift=7)  # same file names, other pixels
    res = run_grid([job], tracker=tracker, log=log.append)
    assert [r.status for r in res] == ["FINISHED"]
    hashes = {r.data.params["split_hash"] for r in tracker.client.search_runs(
        [tracker.experiment_id(job.dataset)], "tags.`cvbench.kind` = 'job'")}
    assert len(hashes) == 2


# -- 8. nonsense input is refused before anything is recorded ---------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["--param", "k=-3"], "k=-3 is out of range; k must be ≥ 1"),
    (["--param", "k=abc"], "k='abc' is not allowed"),
    (["-p", "cnn-small", "--param", "epochs=0"], "epochs=0 is out of range"),
    (["-p", "cnn-small", "--param", "epochs=2.5"], "epochs=2.5 is not allowed; epochs must be an integer"),
    (["-p", "cnn-small", "--param", "optimizer=adam"], "choose one of sgd, adamw"),
    (["--max-train", "-5"], "--max-train -5: must be an integer ≥ 1"),
    (["--val-fraction", "1.5"], "--val-fraction 1.5: must be a fraction"),
    (["--seed", "-1"], "--seed -1: a seed must be a non-negative integer"),
])
def test_nonsense_input_is_refused_before_any_run(args, says, tracker, capsys):
    argv = ["run", "-d", "digits", *([] if "-p" in args else ["-p", "pixels-knn"]), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err
    assert tracker.client.search_experiments(filter_string="name = 'digits'") == []


@pytest.mark.parametrize("dataset, says", [("nope", "unknown dataset"), ("folder:/no/such/dir", "no/such/dir")])
def test_failed_load_leaves_no_experiment_or_run(dataset, says, tracker, capsys):
    assert main(["run", "-d", dataset, "-p", "pixels-knn"]) == 2
    assert says in capsys.readouterr().err
    assert [e.name for e in tracker.client.search_experiments()] in ([], ["Default"])


def test_one_class_folder_is_refused(tmp_path, tracker, capsys):
    _folder(tmp_path / "imgs")
    import shutil

    for split in ("train", "test"):
        shutil.rmtree(tmp_path / "imgs" / split / "light")
    assert main(["run", "-d", f"folder:{tmp_path / 'imgs'}", "-p", "pixels-knn"]) == 2
    assert "at least two" in capsys.readouterr().err
    assert [e.name for e in tracker.client.search_experiments()] in ([], ["Default"])


# -- 9. no silent fallbacks for tuned parameters ----------------------------------------------------------------
def test_without_validation_split_the_constructor_values_are_used_and_tagged(tracker):
    job = Job("digits", "pixels-knn", 0, {}, SplitOptions(val_fraction=0.0, max_train=300, max_test=60))
    (res,) = run_grid([job], tracker=tracker, log=lambda m: None)
    run = tracker.client.get_run(res.run_id)
    assert run.data.tags["tuned"] == "false"
    assert "tuned.n_neighbors" not in run.data.params
    from pipelines.classifiers import get_classifier

    est = create("pixels-knn").fit(*_digits(300))  # no X_val: the documented fallback, not the grid's first k
    assert est.classifier_.n_neighbors == get_classifier("knn").fallbacks["k"] == 3


def _digits(n):
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images[:n] * 16).clip(0, 255).astype(np.uint8)[..., None]
    return X, d.target[:n]


def test_a_given_tuned_parameter_is_fixed_not_searched():
    X, y = _digits(400)
    tuned = create("pixels-knn").fit(X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    assert tuned.fit_info_["tuned"] and "n_neighbors" in tuned.fit_info_["chosen_params"]
    fixed = create("pixels-knn", k=7).fit(X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    assert fixed.classifier_.n_neighbors == 7 and not fixed.fit_info_["tuned"]
    assert "tuning" not in fixed.fit_info_
    svm = create("pixels-rbfsvm", C=1.0)  # one of two tuned parameters fixed: the other is still searched
    assert svm.param_grid == {"gamma_scale": [1.0, 2.0, 4.0]} and svm.classifier.C == 1.0


# -- 10. no job's randomness depends on what ran before it ------------------------------------------------------
def test_finetune_gives_the_same_predictions_first_or_second_in_a_process(one_torch_thread):
    import torch

    from pipelines import transfer

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (24, 32, 32, 3), dtype=np.uint8)
    y = np.arange(24) % 3
    kw = dict(resolution=32, weights="random", warmup_epochs=1, epochs=0, batch_size=8, augment="none",
              device="cpu", seed=3)
    transfer._BACKBONE_CACHE.clear()  # first job of a process: the backbone is built now
    torch.manual_seed(123)
    state = torch.get_rng_state()
    p1 = create("efficientnet_lite0-finetune", **kw).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)  # no global seeding side effect
    torch.manual_seed(999)  # whatever ran before, the next job draws from its own seed
    p2 = create("efficientnet_lite0-finetune", **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)


# -- 11. protocol metrics -------------------------------------------------------------------------------------
def test_balanced_accuracy_is_recorded(tracker):
    from sklearn.metrics import balanced_accuracy_score

    from bench.studies.statistics import load_predictions

    (res,) = run_grid([Job("digits", "pixels-ridge", 0, {}, SplitOptions(max_train=100, max_val=40,
                                                                         max_test=80))],
                      tracker=tracker, log=lambda m: None)
    p = load_predictions(tracker, res.run_id)
    assert res.metrics["test_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(p["y_true"], p["y_pred"]))


def test_the_harness_turns_numpy_hugepage_advice_off_unless_the_user_chose():
    """Defect 2's last order effect: numpy advises hugepages for large arrays, and on a VM that hands freed memory
    back to its host, their first touch after a big job costs 0.1-0.5 s (docs/measurements.md#execute). numpy is
    imported first here, as a user's script would: the harness must still apply its setting at run time."""
    from pipelines.memory import numpy_hugepages

    code = ("import numpy, os, bench.execute; from pipelines.memory import numpy_hugepages; "
            "print(os.environ['NUMPY_MADVISE_HUGEPAGE'], numpy_hugepages())")
    for user, want in ((None, ["0", "False"]), ("1", ["1", "True"])):
        env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
        if user is not None:
            env["NUMPY_MADVISE_HUGEPAGE"] = user
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == want, out.stderr
    before = numpy_hugepages(None)
    try:
        assert numpy_hugepages(True) is True and numpy_hugepages(False) is False
    finally:
        numpy_hugepages(before)


def test_a_fast_prediction_is_timed_as_timeit_does(digits_split, monkeypatch):
    """A prediction under a second is timed again with the garbage collector paused, until at least 4 more
    passes and 0.2 s of them (best of all): a 5-ms prediction gets 40 passes, not a best of 5."""
    import functools
    import gc
    import itertools

    from bench import execute
    from cvbench_util import timing

    class FixedTimer:  # every timed block "takes" 5 ms, so the number of passes does not depend on the machine
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.seconds = 0.005

    class Counting:
        def fit(self, X, y):
            self.classes_, self.calls = np.unique(y), []
            return self

        def predict(self, X):
            self.calls.append((len(X), gc.isenabled()))
            return np.full(len(X), self.classes_[0])

    ticks = itertools.count()  # ... and so does each pass after it
    monkeypatch.setattr(execute, "Timer", FixedTimer)
    monkeypatch.setattr(execute, "passes_again",
                        functools.partial(timing.passes_again, clock=lambda: 0.005 * next(ticks)))
    d = digits_split
    est = Counting()
    m = execute.measure(est, d, "pixels-knn", {})
    on_test = [on for n, on in est.calls if n == len(d.X_test)]
    assert len(on_test) == 1 + 40  # the measured pass, then 0.2 s / 5 ms more
    assert on_test[0] and not any(on_test[1:])  # the collector paused for the repeats only ...
    assert gc.isenabled()  # ... and running again afterwards
    assert m.metrics["predict_time_s"] == pytest.approx(0.005)


def test_a_short_feature_computation_is_recorded_at_its_best_pass(tmp_path):
    """The feature cache records a short side-effect-free computation's time as the best of its passes (as a
    short prediction is timed), so one pass's first-touch page faults do not land in every job that reads the
    entry, and the passes hold no more memory than the first; a computation with side effects (a BoVW model
    fit) runs once, and a hit reads the recorded time."""
    import gc
    import weakref

    from pipelines import cache

    X = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8, 1)
    calls: list[bool] = []
    outputs: list[weakref.ref] = []
    alive: list[int] = []

    def compute() -> np.ndarray:
        calls.append(gc.isenabled())
        alive.append(sum(r() is not None for r in outputs))
        if len(calls) == 1:
            time.sleep(0.05)  # a slow first pass (at least 50 ms on any machine); the others take microseconds
        out = X.reshape(len(X), -1).astype(np.float32)
        outputs.append(weakref.ref(out))
        return out

    cache.set_cache_dir(tmp_path)
    try:
        miss = cache.cached_array("demo", {}, X, compute, pure=True)
        assert not miss.cached and len(calls) >= 5 and miss.compute_time_s < 0.05
        assert calls[0] and not any(calls[1:])  # the collector paused for the repeats only
        assert max(alive) == 0  # each pass's result freed before the next: no more memory than the first pass
        n = len(calls)
        hit = cache.cached_array("demo", {}, X, compute, pure=True)
        assert hit.cached and len(calls) == n and hit.compute_time_s == miss.compute_time_s
        # an entry whose short time was a single pass (written before CODE_VERSION 10) is computed again
        meta = next(tmp_path.rglob("demo-*.json"))
        meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "compute_passes"}))
        assert not cache.cached_array("demo", {}, X, compute, pure=True).cached and len(calls) > n
        calls.clear()
        once = cache.cached_array("demo-model", {}, X, compute)
        assert len(calls) == 1 and once.compute_time_s >= 0.05
        # the stateless extractors are pure: a miss runs their extraction again
        f = registry.create("pixels-logreg").features
        runs = []
        real = type(f)._extract
        f._extract = lambda Z: (runs.append(1), real(f, Z))[1]
        f.transform(np.zeros((3, 8, 8, 1), np.uint8))
        assert len(runs) >= 5 and not f.last_cached_
    finally:
        cache.set_cache_dir(None)
