"""Checking a pipeline's parameters against its factory's type hints and ranges, before anything runs.

A factory's keyword arguments are its whole configuration; their annotations say what each accepts
(``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, unions with ``None``, lists and tuples), and
``Annotated[int, Interval(ge=1)]`` adds a range. Parameters without an annotation take the type of their
default. Common names carry a range even where the annotation has none (``NAME_RANGES``: ``k ≥ 1``,
``epochs ≥ 1``, ``lr > 0``…), so that ``--param k=-3`` or ``--param epochs=2.5`` is refused with a message
naming the pipeline, the parameter, the value and what is allowed, rather than becoming a leaderboard row.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class InvalidParameterError(ValueError):
    """A pipeline parameter whose value its factory does not accept; the message says what is allowed."""


@dataclass(frozen=True)
class Interval:
    """Allowed range of a number: ``ge`` / ``gt`` lower bound, ``le`` / ``lt`` upper bound (``None``: open)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, v: float) -> bool:
        return not ((self.ge is not None and v < self.ge) or (self.gt is not None and v <= self.gt)
                    or (self.le is not None and v > self.le) or (self.lt is not None and v >= self.lt))

    def __str__(self) -> str:
        parts = [f"≥ {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else "",
                 f"≤ {self.le:g}" if self.le is not None else "", f"< {self.lt:g}" if self.lt is not None else ""]
        return " and ".join(p for p in parts if p)


_POS, _NONNEG, _POSNUM = Interval(ge=1), Interval(ge=0), Interval(gt=0)
# Ranges by parameter name, for factories that declare none (a factory's Annotated[..., Interval] wins).
NAME_RANGES: dict[str, Interval] = {
    **{k: _POS for k in ("k", "epochs", "batch_size", "width", "max_iter", "n_components", "sample",
                         "max_keypoints", "tune_max_train", "bins", "gray_bins", "grid", "orientations", "step",
                         "min_size", "cell", "block_cells", "size", "resolution", "extra_resolution")},
    **{k: _POSNUM for k in ("lr", "C", "alpha", "gamma_scale", "time_budget_s")},
    **{k: _NONNEG for k in ("seed", "warmup_epochs", "weight_decay", "patience", "exact_max_n",
                            "backbone_lr_mult")},
    "vocab_size": Interval(ge=2),
    "label_smoothing": Interval(ge=0, lt=1),
}


# Values of these names are a fixed set (the training loop's optimizers and schedules, pipelines.augment's
# policies, the transfer weights; tests/test_registry.py checks they match what those modules accept).
NAME_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("sgd", "adamw"),
    "schedule": ("onecycle", "cosine", "constant"),
    "augment": ("none", "standard", "strong"),
    "weights": ("imagenet", "random"),
    "metric": ("euclidean", "manhattan"),
}
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _type_name(t: Any) -> str:
    if t is type(None):
        return "null"
    if typing.get_origin(t) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(t))
    if typing.get_origin(t) is typing.Annotated:
        return _type_name(typing.get_args(t)[0])
    origin = typing.get_origin(t)
    if origin in (list, tuple):
        return "a list"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(t, str(t))


def _options(t: Any) -> list[Any]:
    """The alternatives of a union (``int | None`` → ``[int, NoneType]``), else ``[t]``."""
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return [a for u in typing.get_args(t) for a in _options(u)]
    return [t]


def _matches(value: Any, t: Any) -> tuple[bool, Interval | None]:
    """Whether ``value`` is of type ``t``, and the range ``t`` declares (Annotated), if any."""
    if typing.get_origin(t) is typing.Annotated:
        base, *meta = typing.get_args(t)
        ok, _ = _matches(value, base)
        return ok, next((m for m in meta if isinstance(m, Interval)), None)
    if t is Any or t is inspect.Parameter.empty:
        return True, None
    if t is type(None):
        return value is None, None
    if typing.get_origin(t) is typing.Literal:
        return value in typing.get_args(t) and type(value) in {type(a) for a in typing.get_args(t)}, None
    if t is bool:
        return isinstance(value, bool), None
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool), None
    if t is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value), None
    if t is str:
        return isinstance(value, str), None
    origin = typing.get_origin(t) or t
    if origin in (list, tuple):
        args = [a for a in typing.get_args(t) if a is not Ellipsis]
        if not isinstance(value, list | tuple):
            return False, None
        return all(any(_matches(v, a)[0] for a in args) for v in value) if args else True, None
    return isinstance(value, origin) if isinstance(origin, type) else True, None


def annotations_of(factory: Callable[..., Any]) -> dict[str, Any]:
    """The factory's parameter annotations (with ``Annotated`` extras); for a parameter without one, the
    type of its default (a ``None`` default accepts anything)."""
    try:
        hints = typing.get_type_hints(factory, include_extras=True)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    out = {}
    for name, p in inspect.signature(factory).parameters.items():
        if p.annotation is not inspect.Parameter.empty and not isinstance(p.annotation, str):
            out[name] = p.annotation  # a synthesized signature's own types
        elif name in hints:
            out[name] = hints[name]
        elif p.default is not inspect.Parameter.empty and p.default is not None:
            d = p.default
            out[name] = float if isinstance(d, float) else (list if isinstance(d, list | tuple) else type(d))
        else:
            out[name] = Any
    return out


def check_params(pipeline: str, factory: Callable[..., Any], params: dict[str, Any],
                 ranges: dict[str, Interval] | None = None) -> None:
    """Raise :class:`InvalidParameterError` for the first value ``factory`` does not accept."""
    hints = annotations_of(factory)
    for name, value in params.items():
        t = hints.get(name, Any)
        matched = [(ok, rng) for ok, rng in (_matches(value, o) for o in _options(t)) if ok]
        if not matched:
            allowed = " or ".join(_type_name(o) for o in _options(t))
            raise InvalidParameterError(f"pipeline {pipeline!r}: {name}={value!r} is not allowed; {name} must "
                                        f"be {allowed}")
        if name in NAME_CHOICES and isinstance(value, str) and value not in NAME_CHOICES[name]:
            raise InvalidParameterError(f"pipeline {pipeline!r}: {name}={value!r} is not allowed; choose one of "
                                        + ", ".join(NAME_CHOICES[name]))
        if name == "device" and isinstance(value, str) and not DEVICE.fullmatch(value):
            raise InvalidParameterError(f"pipeline {pipeline!r}: device={value!r} is not allowed; use auto, cpu, "
                                        "cuda, cuda:N or mps")
        rng = matched[0][1] or (ranges or {}).get(name) or NAME_RANGES.get(name)
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if rng is not None and isinstance(v, int | float) and not isinstance(v, bool) and not rng.contains(v):
                raise InvalidParameterError(f"pipeline {pipeline!r}: {name}={value!r} is out of range; {name} "
                                            f"must be {rng}")
