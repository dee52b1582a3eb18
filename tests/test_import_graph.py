"""The import graph (tools/import_graph.py, pure ast): no cycle and no layering violation in the packages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ig():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["import_graph"]


def test_no_import_cycle_or_rule_violation(ig, capsys):
    rc = ig.main(["--root", str(ROOT)])
    assert rc == 0, capsys.readouterr().out


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_finds_lazy_and_relative_cycles_and_violations(ig, tmp_path, capsys):
    _write(tmp_path, {
        "bench/__init__.py": "",
        "bench/a.py": "def f():\n    from bench.b import g\n",  # lazy
        "bench/b.py": "from . import a\n",  # relative
        "bench/report/__init__.py": "",
        "bench/report/r.py": "import bench.runner\n",
        "bench/runner.py": "",
        "bench/datasets/__init__.py": "from ..c import x\n",
        "bench/c.py": "from pipelines.p import y\n",
        "pipelines/__init__.py": "",
        "pipelines/p.py": "import numpy\nfrom bench import c\n",
        "cvbench_util/__init__.py": "",
    })
    edges = ig.graph(tmp_path)
    assert edges["bench.b"] == {"bench.a"} and edges["bench.datasets"] == {"bench.c"}
    assert ig.cycles(edges) == [("bench.a", "bench.b"), ("bench.c", "pipelines.p")]
    assert {(s, d) for s, d, _ in ig.violations(edges)} == {("bench.report.r", "bench.runner"),
                                                            ("pipelines.p", "bench.c")}
    assert ig.main(["--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "cycle: bench.a <-> bench.b" in out and "rule: pipelines.p imports bench.c" in out
