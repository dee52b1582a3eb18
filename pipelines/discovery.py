"""Discovery of the built-in modules that register something (pipelines, networks), by a package walk.

A registry imports nothing that registers into it, and no list of modules has to be kept in step with the
files: every module under the package is imported once, and its decorators register what it defines.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def import_submodules(package: str) -> tuple[str, ...]:
    """Import every module under ``package`` (recursively, in name order) once; returns their names."""
    pkg = importlib.import_module(package)
    names = tuple(sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, f"{package}.")))
    for name in names:
        importlib.import_module(name)
    return names
