"""The runner records what it must, skips finished jobs, honours --force and never marks a failure FINISHED."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from bench.cli import main
from bench.runner import Job, run_grid
from pipelines import registry
from pipelines.registry import register

REQUIRED_METRICS = {"test_accuracy", "test_macro_f1", "val_accuracy", "feature_time_s", "fit_time_s",
                    "predict_time_s", "inference_img_per_s", "latency_ms_per_img", "peak_rss_mb", "model_size_mb"}
QUIET = {"log": lambda m: None}


def _run(tracker, run_id):
    return tracker.client.get_run(run_id)


def test_job_run_records_params_metrics_tags_artifacts(tracker):
    (res,) = run_grid([Job("digits", "pixels-knn", seed=1)], tracker=tracker, **QUIET)
    assert res.status == "FINISHED"
    run = _run(tracker, res.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "digits/pixels-knn/1"
    m, p, t = run.data.metrics, run.data.params, run.data.tags
    assert REQUIRED_METRICS <= set(m)
    assert m["test_accuracy"] > 0.95  # kNN on digits is a solved problem; far lower would be a bug
    for key in ("dataset", "seed", "n_train", "n_val", "n_test", "split_hash", "image_size", "pipeline.size",
                "split.split_seed", "tuned.n_neighbors"):
        assert key in p, key
    assert int(p["n_train"]) + int(p["n_val"]) + int(p["n_test"]) == 1797
    for key in ("family", "features", "classifier", "env.git_commit", "env.cpu", "env.cores", "env.gpu",
                "env.torch_threads", "env.pkg.scikit-learn", "cvbench.job_id"):
        assert key in t, key
    assert t["env.numpy_hugepages"] == "off"  # the harness's default (bench/__init__.py): costs independent of order
    assert t["mlflow.parentRunId"]
    arts = {a.path for a in tracker.client.list_artifacts(res.run_id)}
    assert {"confusion_matrix.png", "confusion_matrix.csv", "per_class.csv", "job_config.json",
            "predictions.csv"} <= arts
    d = tracker.download_artifact(res.run_id, "confusion_matrix.csv", str(tracker_tmp(tracker)))
    rows = list(csv.reader(open(d)))
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == int(p["n_test"])
    cfg = json.loads(open(tracker.download_artifact(res.run_id, "job_config.json",
                                                    str(tracker_tmp(tracker)))).read())
    assert cfg["identity"] == t["cvbench.job_id"]


def tracker_tmp(tracker):
    import tempfile

    return tempfile.mkdtemp()


def test_network_logs_epoch_steps(tracker):
    (res,) = run_grid([Job("digits", "cnn-small", params={"epochs": 2, "width": 8})], tracker=tracker, **QUIET)
    hist = tracker.metric_history(res.run_id, "train_loss")
    assert [s for s, _ in hist] == [0, 1]
    assert len(tracker.metric_history(res.run_id, "val_accuracy")) >= 2
    assert _run(tracker, res.run_id).data.metrics["n_params"] > 1000


def test_skip_if_finished_and_force(tracker):
    job = Job("digits", "pixels-knn", params={"tune": False})
    (first,) = run_grid([job], tracker=tracker, **QUIET)
    (again,) = run_grid([job], tracker=tracker, **QUIET)
    assert again.status == "SKIPPED" and again.run_id == first.run_id
    (forced,) = run_grid([job], tracker=tracker, force=True, **QUIET)
    assert forced.status == "FINISHED" and forced.run_id != first.run_id
    # a different parameter is a different job identity
    (other,) = run_grid([Job("digits", "pixels-knn", params={"tune": False, "size": 6})], tracker=tracker, **QUIET)
    assert other.status == "FINISHED"


class _Boom:
    def fit(self, X, y):
        raise RuntimeError("deliberate failure")


def test_failed_job_is_failed_not_finished_and_is_redone(tracker, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register("boom", family="classical", features="none", classifier="none")(lambda fail=True: _Boom())
    results = run_grid([Job("digits", "boom"), Job("digits", "pixels-knn", params={"tune": False})],
                       tracker=tracker, **QUIET)
    assert [r.status for r in results] == ["FAILED", "FINISHED"]  # one failure does not stop the grid
    exp = tracker.experiment_id("digits")
    runs = tracker.client.search_runs([exp], "tags.pipeline = 'boom'")
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "deliberate failure" in runs[0].data.tags["cvbench.error"]
    (retry,) = run_grid([Job("digits", "boom")], tracker=tracker, **QUIET)
    assert retry.status == "FAILED"  # not skipped: no FINISHED run exists for it


def test_interrupted_job_is_killed(tracker, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class Interrupt:
        def fit(self, X, y):
            raise KeyboardInterrupt

    register("interrupt", family="classical", features="none", classifier="none")(lambda x=0: Interrupt())
    with pytest.raises(KeyboardInterrupt):
        run_grid([Job("digits", "interrupt")], tracker=tracker, **QUIET)
    runs = tracker.client.search_runs([tracker.experiment_id("digits")], "tags.pipeline = 'interrupt'")
    assert [r.info.status for r in runs] == ["KILLED"]


def test_same_seed_same_predictions(tracker):
    a, b = (run_grid([Job("digits", "pixels-logreg", params={"max_iter": 100})], tracker=tracker, force=True,
                     **QUIET)[0] for _ in range(2))
    preds = [tracker.download_artifact(r.run_id, "predictions.csv", tracker_tmp(tracker)) for r in (a, b)]
    assert open(preds[0]).read() == open(preds[1]).read()


def test_export_csv_and_json(tracker, capsys):
    run_grid([Job("digits", "pixels-knn", seed=s, params={"tune": False}) for s in (0, 1)], tracker=tracker,
             **QUIET)
    assert main(["export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and {r["seed"] for r in rows} == {"0", "1"}
    for col in ("dataset", "pipeline", "family", "features", "classifier", "test_accuracy", "fit_time_s"):
        assert col in rows[0]
    assert main(["export", "--format", "json", "--dataset", "digits"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 2 and np.isclose(data[0]["test_accuracy"], float(rows[0]["test_accuracy"]))


@pytest.mark.slow
def test_end_to_end_cli_quick_subset(tracker, capsys):  # tracker: the store exists (no schema to create)
    from bench.suites import load_suite
    from pipelines.registry import expand

    n = len(expand([name for name, _ in load_suite("quick").pipelines]))
    args = ["run", "--suite", "quick", "--max-train", "300", "--max-test", "200", "--max-val", "100",
            "--param", "epochs=1"]
    rc, cap = main(args), capsys.readouterr()
    # the whole output in the message: this test failed once (1 in ~20 runs, cause not found) without it
    assert rc == 0 and f"{n} finished" in cap.out, cap.out + cap.err
    assert "pixels-knn" in cap.out and "test_accuracy" in cap.out, cap.out
    rc, cap = main(args), capsys.readouterr()
    assert rc == 0 and f"{n} skipped" in cap.out, cap.out + cap.err
