"""Your own pipelines without editing cvbench: the README's Gabor plugin, in this process and in pool workers
(fresh interpreters that load it from CVBENCH_PLUGINS); reports read the store only, so they need no plugin.
The command line runs in-process (``main``): an interpreter start costs seconds and proves nothing more."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import plugins
from bench.cli import main
from pipelines import registry

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "docs" / "examples" / "gabor_plugin.py"


@pytest.fixture
def own_registry(monkeypatch):
    """Plugins loaded in this process register into a copy of the registry, and are forgotten afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.delenv(plugins.ENV, raising=False)  # restored (unset) afterwards, whatever load_plugins sets


@pytest.mark.timeout(600)
def test_plugin_pipeline_runs_lists_and_reaches_pool_workers(own_registry, tracker, capsys):
    # in this process (the pool workers below are the fresh interpreters); the registry is restored afterwards
    assert main(["--plugin", str(PLUGIN), "list", "gabor-*", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["gabor-linsvm"]
    split = ["--max-train", "300", "--max-val", "100", "--max-test", "100"]
    assert main(["--plugin", str(PLUGIN), "run", "-d", "digits", "-p", "gabor-linsvm", *split, "--no-table"]) == 0
    assert "1 finished" in capsys.readouterr().out
    assert os.environ[plugins.ENV] == str(PLUGIN)  # what the workers below are given
    # pool workers are other (spawned) processes: they load the plugin from CVBENCH_PLUGINS
    assert main(["--plugin", str(PLUGIN), "run", "-d", "digits", "-p", "gabor-linsvm", "-s", "1", "-s", "2",
                 "--jobs", "2", *split, "--no-table"]) == 0
    out = capsys.readouterr().out
    assert "local pool ×2" in out and "2 finished" in out, out
    # reports and exports read the store only: they work where the plugin is not loaded
    del registry._REGISTRY["gabor-linsvm"]
    os.environ.pop(plugins.ENV)
    plugins._loaded.clear()
    assert main(["export", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["seed"] for row in rows if row["pipeline"] == "gabor-linsvm") == [0, 1, 2]
    assert all(row["test_accuracy"] > 0.5 for row in rows)  # it really learns digits


def test_plugin_errors_are_clear(tmp_path, own_registry, capsys):
    assert main(["--plugin", str(tmp_path / "nope.py"), "list"]) == 2
    err = capsys.readouterr().err
    assert "--plugin" in err and "no such file" in err
    assert main(["--plugin", "no_such_module_xyz", "list"]) == 2
    assert "no such module" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert main(["--plugin", str(bad), "list"]) == 2
    assert "importing it failed: RuntimeError: boom" in capsys.readouterr().err
    assert main(["list", "gabor-*"]) == 1  # without the plugin, no such pipeline
