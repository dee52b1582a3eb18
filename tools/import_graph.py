"""Module import graph of bench/, pipelines/ and cvbench_util/ by static analysis (stdlib ast, nothing imported).

Every import counts, lazy ones inside functions too; relative imports are resolved. Prints the
import cycles (strongly connected components) and the layering rule violations, and exits 1 if
any is found that is not allow-listed below.

    python tools/import_graph.py [--root DIR]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGES = ("bench", "pipelines", "cvbench_util")

# Layering rules: (importer prefix, imported prefix, why). A prefix matches the module or a submodule.
RULES: tuple[tuple[str, str, str], ...] = (
    ("pipelines", "bench", "pipelines must never import bench"),
    ("bench.datasets", "pipelines", "data must know no pipeline"),
    ("bench.report", "bench.runner", "the report reads tracked runs, not the runner"),
    ("cvbench_util", "bench", "the shared helpers import neither bench nor pipelines"),
    ("cvbench_util", "pipelines", "the shared helpers import neither bench nor pipelines"),
)

# Known cycles still to break, each as the sorted tuple of its modules. Keep this empty.
ALLOWED_CYCLES: frozenset[tuple[str, ...]] = frozenset()


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of a source file under root (a package's __init__ is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect(root: Path) -> dict[str, Path]:
    """All modules of the analysed packages, by dotted name."""
    return {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The longest analysed module that `target` names or lies in, or None (third-party, stdlib)."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The analysed modules that module `name` imports, anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import mod` imports the submodule pkg.mod when there is one, else a name of pkg.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in (_resolve(t, modules) for t in targets) if t)
    found.discard(name)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    """Adjacency: module -> the analysed modules it imports."""
    modules = collect(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[str, ...]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(tuple(sorted(component)))
    return sorted(out)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(edges: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    """(importer, imported, rule) for every import that breaks a layering rule."""
    return [(src, dst, why) for src in sorted(edges) for dst in sorted(edges[src])
            for frm, to, why in RULES if _within(src, frm) and _within(dst, to)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root holding the packages")
    args = parser.parse_args(argv)
    edges = graph(args.root)
    failed = False
    found = cycles(edges)
    for component in found:
        allowed = component in ALLOWED_CYCLES
        failed |= not allowed
        print(f"cycle{' (allowed)' if allowed else ''}: {' <-> '.join(component)}")
    for src, dst, why in violations(edges):
        failed = True
        print(f"rule: {src} imports {dst} ({why})")
    n_edges = sum(map(len, edges.values()))
    print(f"{len(edges)} modules, {n_edges} imports, {len(found)} cycle(s): {'FAIL' if failed else 'ok'}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
