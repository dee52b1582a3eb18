"""Many processes writing one tracking store at once lose no run: through `mlflow server`, and to one SQLite file."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

N_WRITERS, RUNS_EACH = 4, 5

def _writer(uri: str, wid: int, barrier: str) -> None:
    """Wait at a file barrier so every writer hits the store at once, then log RUNS_EACH complete runs."""
    from bench.tracking import Tracker

    t = Tracker(uri)
    Path(barrier, f"ready-{wid}").touch()
    deadline = time.time() + 90
    while len(list(Path(barrier).glob("ready-*"))) < N_WRITERS and time.time() < deadline:
        time.sleep(0.02)
    exp = t.experiment_id("concurrency")
    for i in range(RUNS_EACH):
        with t.run(exp, f"w{wid}/r{i}", {"writer": str(wid), "index": str(i)}) as rid:
            t.log_params(rid, {"writer": wid, "index": i, "payload": "x" * 200})
            for step in range(3):
                t.log_metrics(rid, {"value": wid * 100 + i, "step_metric": step}, step=step)
            t.log_artifacts(rid, {"result.txt": f"{wid}:{i}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_writers(uri: str, tmp_path: Path) -> None:
    """N_WRITERS separate processes (forked: the test process has already imported MLflow, which is slow)."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(uri, w, str(barrier))) for w in range(N_WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=150)
    assert [p.exitcode for p in procs] == [0] * N_WRITERS


def _check_store(uri: str, tmp_path: Path) -> None:
    from bench.tracking import Tracker

    t = Tracker(uri)
    exp = t.experiment_id("concurrency")
    runs = t.client.search_runs([exp], max_results=1000)
    assert len(runs) == N_WRITERS * RUNS_EACH
    seen = {(r.data.tags["writer"], r.data.tags["index"]) for r in runs}
    assert seen == {(str(w), str(i)) for w in range(N_WRITERS) for i in range(RUNS_EACH)}
    for r in runs:
        w, i = int(r.data.tags["writer"]), int(r.data.tags["index"])
        assert r.info.status == "FINISHED"
        assert r.data.metrics["value"] == w * 100 + i
        assert r.data.params["payload"] == "x" * 200
        assert [m.step for m in t.client.get_metric_history(r.info.run_id, "step_metric")] == [0, 1, 2]
    sample = runs[len(runs) // 2]
    got = Path(t.download_artifact(sample.info.run_id, "result.txt", str(tmp_path)))
    assert got.read_text() == f"{sample.data.tags['writer']}:{sample.data.tags['index']}"


@pytest.mark.timeout(240)
def test_concurrent_writers_through_mlflow_server(tmp_path):
    """What `make server` starts (SQLite backend, proxied artifacts) takes concurrent writers without loss."""
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--serve-artifacts", "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:  # until it answers or dies; a server that never starts is bounded by the test's timeout
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        _run_writers(uri, tmp_path)
        _check_store(uri, tmp_path)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # uvicorn workers stop at once; the CLI parent may linger
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)
        log.close()


@pytest.mark.timeout(240)
def test_concurrent_writers_to_one_sqlite_file(tmp_path):
    """Without a server, writers share the SQLite file: schema creation is locked, 'database is locked' retried."""
    _run_writers(f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}", tmp_path)
    _check_store(f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}", tmp_path)
