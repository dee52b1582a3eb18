"""Suites: YAML files naming datasets, pipelines (names or wildcards, with per-pipeline params), seeds, options.

```yaml
datasets: [mnist5k]
seeds: [0]
options: {max_train: 2000, val_fraction: 0.1}   # split options and image_size
pipelines:
  - pixels-knn
  - name: cnn-small
    params: {epochs: 3}
```
A suite can also be another one under a second name (``deep`` is ``deep-gpu``):
```yaml
alias_of: deep-gpu     # a built-in suite's name, or a path relative to this file
description: ...
```
Errors name the file, the line and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from bench.datasets import SplitOptions
from bench.errors import ConfigError

SUITES_DIR = Path(__file__).parent
OPTION_KEYS = {f.name for f in fields(SplitOptions)} | {"image_size"}


@dataclass
class Suite:
    name: str
    datasets: list[str]
    pipelines: list[tuple[str, dict[str, Any]]]  # (name or wildcard, params)
    seeds: list[int] = field(default_factory=lambda: [0])
    options: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def _where(path: Path, node: yaml.Node | None) -> str:
    return f"{path}, line {node.start_mark.line + 1}" if node is not None else str(path)


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def load_suite(name_or_path: str, _seen: tuple[Path, ...] = ()) -> Suite:
    """Load a suite by name (``bench/suites/NAME.yaml``) or path, validating every field."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"suite {name_or_path!r} not found (looked for {path}); "
                          f"built-in suites: {', '.join(suite_names())}")
    text = path.read_text()
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{_where(path, node)}: expected a mapping with keys datasets, pipelines, seeds, options")
    if "alias_of" in raw:
        return _load_alias(path, node, raw, _seen)
    allowed = {"name", "description", "datasets", "pipelines", "seeds", "options", "alias_of"}
    for k in raw:
        if k not in allowed:
            raise ConfigError(f"{_where(path, _child(node, k))}: unknown key {k!r}; expected one of {sorted(allowed)}")

    def str_list(key: str, required: bool) -> list[str]:
        v = raw.get(key)
        if v is None:
            if required:
                raise ConfigError(f"{path}: missing key {key!r} (a list of names)")
            return []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{_where(path, _child(node, key))}: {key!r} must be a list of names")
        return v

    datasets = str_list("datasets", required=False)
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = [seeds]
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{_where(path, _child(node, 'seeds'))}: 'seeds' must be a list of integers")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{_where(path, _child(node, 'options'))}: 'options' must be a mapping")
    for k in options:
        if k not in OPTION_KEYS:
            raise ConfigError(f"{_where(path, _child(_child(node, 'options'), k))}: unknown option {k!r}; "
                              f"expected one of {sorted(OPTION_KEYS)}")
    pl_raw = raw.get("pipelines")
    pl_node = _child(node, "pipelines")
    if not isinstance(pl_raw, list) or not pl_raw:
        raise ConfigError(f"{_where(path, pl_node)}: 'pipelines' must be a non-empty list of names or "
                          "{name: ..., params: {...}} entries")
    pipelines: list[tuple[str, dict[str, Any]]] = []
    for item, item_node in zip(pl_raw, pl_node.value):
        if isinstance(item, str):
            pipelines.append((item, {}))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "params"} \
                and isinstance(item.get("params", {}), dict):
            pipelines.append((item["name"], dict(item.get("params") or {})))
        else:
            raise ConfigError(f"{_where(path, item_node)}: each pipeline must be a name or a mapping "
                              "{name: <pipeline or wildcard>, params: {...}}")
        _check_name(path, item_node, pipelines[-1][0], pipeline=True)
    ds_node = _child(node, "datasets")
    for i, name in enumerate(datasets):
        _check_name(path, ds_node.value[i] if isinstance(ds_node, yaml.SequenceNode) else ds_node, name,
                    pipeline=False)
    return Suite(raw.get("name", path.stem), datasets, pipelines, seeds, options, path)


def _load_alias(path: Path, node: yaml.Node, raw: dict[str, Any], seen: tuple[Path, ...]) -> Suite:
    """``alias_of: OTHER``: suite OTHER under this file's name (only ``name`` and ``description`` may go beside)."""
    for k in raw:
        if k not in {"alias_of", "name", "description"}:
            raise ConfigError(f"{_where(path, _child(node, k))}: an alias suite holds only 'alias_of', 'name' and "
                              f"'description', not {k!r}")
    target = raw["alias_of"]
    where = _where(path, _child(node, "alias_of"))
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}: 'alias_of' must be a suite name or a path")
    if Path(target).suffix:
        target = str(path.parent / target)
    if path.resolve() in seen:
        raise ConfigError(f"{where}: suite aliases loop ({' → '.join(p.name for p in (*seen, path.resolve()))})")
    try:
        suite = load_suite(target, (*seen, path.resolve()))
    except ConfigError as e:
        raise ConfigError(f"{where}: alias_of {raw['alias_of']!r}: {e}") from None
    return replace(suite, name=raw.get("name", path.stem), path=path)


def _check_name(path: Path, node: yaml.Node | None, name: str, pipeline: bool) -> None:
    """Unknown pipeline or dataset names fail at load time, with the file and line (and the closest names)."""
    from bench.datasets import dataset_info
    from bench.errors import DatasetError
    from pipelines.registry import UnknownPipelineError, expand

    try:
        if pipeline:
            expand([name])
        elif not name.startswith("folder:"):
            dataset_info(name)
    except (UnknownPipelineError, DatasetError) as e:
        raise ConfigError(f"{_where(path, node)}: {e}") from None
