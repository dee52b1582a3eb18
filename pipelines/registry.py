"""Pipeline registry, timm-style: ``register`` a factory, ``create`` by name, ``list_pipelines`` by wildcard.

A pipeline factory is a plain function whose keyword arguments (with defaults) are the pipeline's whole
configuration. It returns an estimator with scikit-learn's ``fit(X, y)`` / ``predict(X)`` where ``X`` is a
``uint8`` array of images shaped ``(N, H, W, C)``.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.discovery import import_submodules
from pipelines.params import Interval, InvalidParameterError, check_params

__all__ = ["InvalidParameterError", "PipelineSpec", "create", "derived_factory", "expand", "get_spec", "list_pipelines",
           "register"]

FAMILIES = ("classical", "scratch", "transfer")


class UnknownPipelineError(KeyError):
    """Raised for a pipeline name that is not registered; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class PipelineUnavailableError(RuntimeError):
    """Raised when creating a registered pipeline whose requirements are missing (e.g. SURF)."""


@dataclass(frozen=True)
class PipelineSpec:
    """What the registry knows about one pipeline."""

    name: str
    factory: Callable[..., Any]
    family: str
    features: str
    classifier: str
    description: str = ""
    unavailable_reason: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    ranges: dict[str, Interval] = field(default_factory=dict)  # allowed ranges beyond pipelines.params'

    @property
    def available(self) -> bool:
        return self.unavailable_reason is None

    @property
    def defaults(self) -> dict[str, Any]:
        """The factory's keyword defaults: the configuration used when nothing is overridden."""
        sig = inspect.signature(self.factory)
        return {
            k: p.default
            for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD
        }

    def resolve_params(self, **overrides: Any) -> dict[str, Any]:
        """Defaults updated with ``overrides``; unknown names raise ``TypeError`` naming the valid ones, values
        the factory's type hints or ranges refuse raise :class:`InvalidParameterError`."""
        params = self.defaults
        unknown = sorted(set(overrides) - set(params))
        if unknown:
            raise TypeError(
                f"pipeline {self.name!r} has no parameter(s) {unknown}; valid parameters: {sorted(params)}"
            )
        check_params(self.name, self.factory, overrides, self.ranges)
        params.update(overrides)
        return params

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "features": self.features,
            "classifier": self.classifier,
            "params": self.defaults,
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "description": self.description,
        }


_REGISTRY: dict[str, PipelineSpec] = {}


def derived_factory(name: str, estimator: type, description: str, fixed: dict[str, Any] | None = None,
                    hide: tuple[str, ...] = (), **recipe: Any) -> Callable[..., Any]:
    """A factory for pipeline ``name`` whose parameters are ``estimator``'s own constructor arguments (all but
    ``fixed`` and ``hide``) at the ``recipe``'s values where it gives one, else the estimator's defaults: one
    line per pipeline, nothing re-typed, so a default changed in the estimator is the catalogue's at once."""
    fixed = fixed or {}
    sig = inspect.signature(estimator)
    hints = typing.get_type_hints(estimator.__init__, include_extras=True)
    unknown = set(recipe) - set(sig.parameters)
    if unknown:
        raise TypeError(f"{name}: {estimator.__name__} has no parameter(s) {sorted(unknown)}")
    params = [p.replace(default=recipe.get(p.name, p.default), annotation=hints.get(p.name, p.annotation),
                        kind=inspect.Parameter.KEYWORD_ONLY)
              for p in sig.parameters.values() if p.name not in (*fixed, *hide)]

    def factory(**kw: Any) -> Any:
        return estimator(**fixed, **kw)

    factory.__signature__ = sig.replace(parameters=params, return_annotation=estimator)  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = description
    return factory


def register(
    name: str | None = None,
    *,
    family: str,
    features: str,
    classifier: str,
    unavailable_reason: str | None = None,
    tags: tuple[str, ...] = (),
    ranges: dict[str, Interval] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory`` under ``name`` (default: the function name with ``_`` -> ``-``)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__.replace("_", "-")
        if key in _REGISTRY and _REGISTRY[key].factory is not factory:
            raise ValueError(f"pipeline {key!r} is already registered")
        doc = inspect.getdoc(factory) or ""
        _REGISTRY[key] = PipelineSpec(
            name=key,
            factory=factory,
            family=family,
            features=features,
            classifier=classifier,
            description=doc.splitlines()[0] if doc else "",
            unavailable_reason=unavailable_reason,
            tags=tuple(tags),
            ranges=dict(ranges or {}),
        )
        return factory

    return deco


def _ensure_catalogue() -> None:
    # Importing every module of the catalogue runs each @register decorator exactly once.
    import_submodules("pipelines.catalogue")


def get_spec(name: str) -> PipelineSpec:
    """The spec registered under ``name``; unknown names raise with the closest matches."""
    _ensure_catalogue()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownPipelineError(
            f"unknown pipeline {name!r}.{hint} Run `python -m bench list` for the catalogue."
        ) from None


def create(name: str, **params: Any) -> Any:
    """Build the estimator registered as ``name`` with ``params`` overriding its defaults."""
    spec = get_spec(name)
    if not spec.available:
        raise PipelineUnavailableError(f"pipeline {name!r} is unavailable: {spec.unavailable_reason}")
    return spec.factory(**spec.resolve_params(**params))


def list_pipelines(pattern: str | list[str] = "*", *, family: str | None = None,
                   include_unavailable: bool = False) -> list[str]:
    """Registered names matching the wildcard pattern(s), sorted; unavailable ones only on request."""
    _ensure_catalogue()
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    out = []
    for key, spec in sorted(_REGISTRY.items()):
        if not any(fnmatch.fnmatchcase(key, p) for p in patterns):
            continue
        if family and spec.family != family:
            continue
        if not spec.available and not include_unavailable:
            continue
        out.append(key)
    return out


def expand(patterns: list[str]) -> list[str]:
    """Expand names and wildcards in order, without duplicates; a non-matching pattern, or an unavailable
    pipeline asked for by name, is an error (wildcards skip unavailable pipelines)."""
    out: list[str] = []
    for p in patterns:
        if any(ch in p for ch in "*?["):
            names = list_pipelines(p)
            if not names:
                raise UnknownPipelineError(f"pattern {p!r} matches no available pipeline")
        else:
            spec = get_spec(p)
            if not spec.available:  # asked for by name: say why now, rather than record a FAILED run
                raise PipelineUnavailableError(f"pipeline {p!r} is unavailable: {spec.unavailable_reason}")
            names = [p]
        out.extend(n for n in names if n not in out)
    return out
