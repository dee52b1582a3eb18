"""Your own pipelines without editing cvbench: ``--plugin path/to/file.py`` (or a module name) imports code that
registers pipelines with :func:`pipelines.registry.register`; installed packages can expose the entry-point
group ``cvbench.pipelines``. The plugins in use are kept in ``CVBENCH_PLUGINS`` so that pool and Ray workers
(which inherit or receive it) load them too."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path

from bench.errors import ConfigError

ENV = "CVBENCH_PLUGINS"
ENTRY_POINT_GROUP = "cvbench.pipelines"
_loaded: set[str] = set()


def _import(spec: str) -> None:
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"--plugin {spec}: no such file (give a .py file or an importable module name)")
        name = f"cvbench_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        assert mod_spec is not None and mod_spec.loader is not None
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[name]
            raise ConfigError(f"--plugin {spec}: importing it failed: {type(e).__name__}: {e}") from e
    else:
        try:
            importlib.import_module(spec)
        except ImportError as e:
            raise ConfigError(f"--plugin {spec}: no such module ({e}); give a .py file or a module name") from e


def load_plugins(specs: list[str] | None = None) -> list[str]:
    """Import ``specs`` plus those named in ``CVBENCH_PLUGINS`` and the installed entry points, each once;
    record them all in ``CVBENCH_PLUGINS`` for workers. Returns the plugins loaded so far."""
    specs = [str(Path(s).resolve()) if s.endswith(".py") else s for s in specs or []]
    listed = [s for s in os.environ.get(ENV, "").split(os.pathsep) if s]
    for spec in dict.fromkeys(listed + specs):
        if spec not in _loaded:
            _import(spec)
            _loaded.add(spec)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry-point:{ep.value}"
        if key not in _loaded:
            try:
                ep.load()
            except Exception as e:
                raise ConfigError(f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP}): {type(e).__name__}: "
                                  f"{e}") from e
            _loaded.add(key)
    files = sorted(s for s in _loaded if not s.startswith("entry-point:"))
    if files:
        os.environ[ENV] = os.pathsep.join(files)
    return sorted(_loaded)
