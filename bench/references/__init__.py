"""Published results as data: one YAML file per dataset family in this folder (``mnist.yaml``, …).

A file names its ``family``, the ``dataset`` that stands for it by default (``--dataset FAMILY=SOURCE`` replaces
it), optional row ``defaults`` and its ``rows``. A row says what was published and how cvbench measures it:

==============  =============================================================================================
``id``          short name, unique in its file (the table shows ``family/id``)
``method``      what the source calls the method
``cite``        short citation for the terminal table; ``source``: where exactly (paper or page, table)
``protocol``    the published protocol: ``train``, ``test`` (image counts), ``metric`` (``accuracy`` or
                ``mean_per_class_accuracy``), ``input`` (size and colour)
``published``   the published value in % (accuracy, not error): a number, or ``[low, high]`` for a range
                (``[98.5, 100]`` is "at least 98.5")
``pipeline``    the registered cvbench pipeline, its ``params``, the ``split`` options (``SplitOptions``
                fields), ``image_size`` and ``seeds``; ``pending``: why the pipeline is not there yet
``tolerance``   points the measurement may fall below / above the published value (a number: both ways),
                with ``reason``: why the band is that wide, or why a measured gap remains
``budget``      ``cpu``: a 2-core CPU finishes it in minutes to an hour; ``gpu``: it needs an accelerator or hours
==============  =============================================================================================

Pure data and arithmetic: imports neither the runner nor MLflow, so the report can use it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError

HERE = Path(__file__).resolve().parent
METRICS = {"accuracy": "test_accuracy", "mean_per_class_accuracy": "test_balanced_accuracy"}
BUDGETS = ("cpu", "gpu")
VERDICTS = ("within", "below", "above")
TAG_PREFIX = "cvbench.reference."  # + family/id: the tag (the row as JSON) on each run that measures a row
_REQUIRED = ("id", "method", "cite", "source", "protocol", "published", "pipeline", "tolerance", "reason",
             "budget")
_OPTIONAL = ("params", "split", "image_size", "seeds", "pending")
_PROTOCOL = ("train", "test", "metric", "input")


@dataclass(frozen=True)
class Reference:
    """One published result and the cvbench job(s) that measure it."""

    family: str
    id: str
    method: str
    cite: str
    source: str
    protocol: dict[str, Any]
    published: tuple[float, float]  # low, high (equal for a single value), accuracy in %
    pipeline: str
    tolerance: tuple[float, float]  # points allowed below low / above high
    reason: str
    budget: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    seeds: tuple[int, ...] = (0,)
    pending: str | None = None

    @property
    def key(self) -> str:
        return f"{self.family}/{self.id}"

    @property
    def metric_key(self) -> str:
        """The tracked metric this row compares (``test_accuracy`` or ``test_balanced_accuracy``)."""
        return METRICS[self.protocol["metric"]]

    def published_text(self) -> str:
        lo, hi = self.published
        if lo == hi:
            return f"{lo:.2f}"
        return f"≥ {lo:.2f}" if hi >= 100 else f"{lo:.2f}–{hi:.2f}"

    def protocol_text(self) -> str:
        p = self.protocol
        metric = "acc" if p["metric"] == "accuracy" else "mean per-class acc"
        return f"{_count(p['train'])}/{_count(p['test'])}, {metric}, {p['input']}"

    def tolerance_text(self) -> str:
        below, above = self.tolerance
        return f"±{below:g}" if below == above else f"−{below:g}/+{above:g}"

    def delta(self, measured: float) -> float:
        """Points from the published value (from the nearer end of a published range; 0 inside it)."""
        lo, hi = self.published
        return measured - lo if measured < lo else (measured - hi if measured > hi else 0.0)

    def verdict(self, measured: float) -> str:
        """``within``, ``below`` or ``above`` the tolerance band around the published value."""
        d = self.delta(measured)
        below, above = self.tolerance
        return "below" if d < -below - 1e-9 else ("above" if d > above + 1e-9 else "within")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Reference:
        d = {k: v for k, v in json.loads(text).items() if k in cls.__dataclass_fields__}  # tags of other versions
        return cls(**{**d, "published": tuple(d["published"]), "tolerance": tuple(d["tolerance"]),
                      "seeds": tuple(d.get("seeds", (0,)))})


@dataclass(frozen=True)
class Family:
    """One catalogue file: a dataset family, the dataset that stands for it, and its rows."""

    name: str
    dataset: str
    description: str
    rows: tuple[Reference, ...]


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _pair(v: Any, what: str, where: str, low: float = 0.0) -> tuple[float, float]:
    vals = v if isinstance(v, list | tuple) else [v, v]
    if len(vals) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vals):
        raise ConfigError(f"{where}: {what} must be a number or a [low, high] pair, got {v!r}")
    a, b = float(vals[0]), float(vals[1])
    if a < low or b < low or (what == "published" and (a > b or b > 100)):
        raise ConfigError(f"{where}: {what} {v!r} is out of range")
    return a, b


def _row(family: str, d: dict[str, Any], where: str) -> Reference:
    """Validate one row (after defaults) and build its :class:`Reference`."""
    from bench.datasets import SplitOptions

    missing = [k for k in _REQUIRED if k not in d]
    unknown = sorted(set(d) - set(_REQUIRED) - set(_OPTIONAL))
    if missing or unknown:
        raise ConfigError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])))
    p = d["protocol"]
    if not isinstance(p, dict) or sorted(p) != sorted(_PROTOCOL) or p["metric"] not in METRICS:
        raise ConfigError(f"{where}: protocol needs exactly {', '.join(_PROTOCOL)} with metric one of "
                          f"{', '.join(METRICS)}, got {p!r}")
    if d["budget"] not in BUDGETS:
        raise ConfigError(f"{where}: budget must be one of {', '.join(BUDGETS)}, got {d['budget']!r}")
    seeds = d.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    try:
        SplitOptions(**d.get("split", {}))
    except (TypeError, ConfigError) as e:
        raise ConfigError(f"{where}: split: {e}") from None
    return Reference(family=family, id=str(d["id"]), method=d["method"], cite=d["cite"], source=d["source"],
                     protocol=dict(p), published=_pair(d["published"], "published", where),
                     pipeline=d["pipeline"], tolerance=_pair(d["tolerance"], "tolerance", where),
                     reason=" ".join(str(d["reason"]).split()), budget=d["budget"],
                     params=dict(d.get("params") or {}), split=dict(d.get("split") or {}),
                     image_size=d.get("image_size"), seeds=tuple(seeds), pending=d.get("pending"))


def load_family(path: str | Path) -> Family:
    """One catalogue file, validated; a mistake raises :class:`ConfigError` naming the file and the row."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"reference catalogue {path}: {e}") from None
    if not isinstance(doc, dict) or not {"family", "dataset", "rows"} <= set(doc):
        raise ConfigError(f"reference catalogue {path}: needs family, dataset and rows")
    defaults = doc.get("defaults") or {}
    rows, seen = [], set()
    for i, r in enumerate(doc["rows"] or []):
        where = f"{path.name} row {i + 1} ({r.get('id', '?') if isinstance(r, dict) else '?'})"
        if not isinstance(r, dict):
            raise ConfigError(f"{where}: a row is a mapping")
        merged = {**defaults, **r, "protocol": {**defaults.get("protocol", {}), **r.get("protocol", {})}}
        ref = _row(doc["family"], merged, where)
        if ref.id in seen:
            raise ConfigError(f"{where}: duplicate id {ref.id!r}")
        seen.add(ref.id)
        rows.append(ref)
    return Family(doc["family"], doc["dataset"], doc.get("description", ""), tuple(rows))


def load_catalogue(path: str | Path | None = None) -> list[Family]:
    """Every family of the catalogue: a folder of YAML files (default: this package's) or one file."""
    p = Path(path) if path else HERE
    if not p.exists():
        raise ConfigError(f"reference catalogue {p} does not exist")
    files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    families = [load_family(f) for f in files]
    names = [f.name for f in families]
    if len(set(names)) < len(names):
        raise ConfigError(f"reference catalogue {p}: a family appears in more than one file")
    return families


def select(rows: list[Reference], pattern: str | None) -> list[Reference]:
    """Rows whose ``family/id`` or ``id`` matches the wildcard ``pattern`` or one of its comma-separated
    alternatives (all rows when ``None``)."""
    if not pattern:
        return list(rows)
    pats = [q.strip() for q in pattern.split(",") if q.strip()]
    return [r for r in rows if any(fnmatchcase(r.key, q) or fnmatchcase(r.id, q) for q in pats)]
