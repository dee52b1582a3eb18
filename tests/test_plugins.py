"""Your own pipelines without editing cvbench: the README's Gabor plugin, in-process and in pool workers
(reports read the store only, so they need no plugin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "docs" / "examples" / "gabor_plugin.py"


def bench(*args: str, results: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "CVBENCH_PLUGINS"}
    full_env.update(CVBENCH_RESULTS=str(results), **(env or {}))
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.timeout(600)
def test_plugin_pipeline_runs_lists_and_reaches_pool_workers(tmp_path, monkeypatch, capsys):
    split = ["--max-train", "300", "--max-val", "100", "--max-test", "100"]
    r = bench("--plugin", str(PLUGIN), "list", "gabor-*", "--json", results=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [s["name"] for s in json.loads(r.stdout)] == ["gabor-linsvm"]
    r = bench("--plugin", str(PLUGIN), "run", "-d", "digits", "-p", "gabor-linsvm", *split, "--no-table",
              results=tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "1 finished" in r.stdout
    # pool workers are other processes: they load the plugin from CVBENCH_PLUGINS
    r = bench("--plugin", str(PLUGIN), "run", "-d", "digits", "-p", "gabor-linsvm", "-s", "1", "-s", "2",
              "--jobs", "2", *split, "--no-table", results=tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "2 finished" in r.stdout
    # reports and exports read the store only: no plugin, and no need for another process
    from bench.cli import main

    monkeypatch.setenv("CVBENCH_RESULTS", str(tmp_path))
    capsys.readouterr()
    assert main(["export", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["seed"] for row in rows if row["pipeline"] == "gabor-linsvm") == [0, 1, 2]
    assert all(row["test_accuracy"] > 0.5 for row in rows)  # it really learns digits


def test_plugin_errors_are_clear(tmp_path):
    r = bench("--plugin", str(tmp_path / "nope.py"), "list", results=tmp_path)
    assert r.returncode == 2 and "--plugin" in r.stderr and "no such file" in r.stderr
    r = bench("--plugin", "no_such_module_xyz", "list", results=tmp_path)
    assert r.returncode == 2 and "no such module" in r.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    r = bench("--plugin", str(bad), "list", results=tmp_path)
    assert r.returncode == 2 and "importing it failed: RuntimeError: boom" in r.stderr
    r = bench("list", "gabor-*", results=tmp_path)  # without the plugin, no such pipeline
    assert r.returncode == 1
