"""The feature registry: ``@register_feature`` where a feature is defined, read by the classical catalogue.

A feature of the classical catalogue is one decorator on its class (or on a function building one) in any
module of :mod:`pipelines.features`; every module of that package is imported before the catalogue pairs
the features with the classifiers (:func:`pipelines.discovery.import_submodules`), so a new file with one
decorated class is all it takes::

    @register_feature("cells", kind="vector", description="Mean intensity per grid cell")
    class CellMeans(ImageFeatures):
        def __init__(self, grid: int = 4): ...

The catalogue (:mod:`pipelines.catalogue.classical`) then registers ``<feature>-<classifier>`` for every
classifier that suits the feature's ``kind``, whichever of the two is registered first
(:func:`on_register_feature`, :func:`pipelines.classifiers.on_register_classifier`). This module imports
nothing that registers into it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FEATURE_KINDS = ("vector", "histogram", "bovw", "encoding")
"""What a feature is, for the classifiers it is offered with (``register_classifier(..., suits=...)``): generic
vectors (pixels, HOG), non-negative histograms (colour, LBP), bag-of-words histograms, and high-dimensional
normalised encodings (Fisher vectors, VLAD)."""


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the catalogue: one :func:`register_feature` entry.

    Its pipeline parameters are the builder's constructor arguments, at the builder's own defaults except
    ``recipe`` (this catalogue's configuration); ``seed`` is the pipeline's, and arguments that do not change
    the features (the class's ``cache_exclude``) or are ``hidden`` stay at their default. ``kind``
    (:data:`FEATURE_KINDS`) says which classifiers it is offered with; ``"histogram"`` also turns on the kernel
    SVMs' χ² map. ``unavailable`` says why the feature cannot be used here (``None`` when it can).
    """

    name: str
    builder: Callable[..., Any]
    kind: str
    description: str
    recipe: dict[str, Any] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()  # e.g. a name a classifier's parameter also uses
    unavailable: Callable[[], str | None] | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        """The feature's parameters and their defaults, in the constructor's order."""
        skip = {"seed", *self.hidden, *getattr(self.builder, "cache_exclude", ())}
        out = {k: p.default for k, p in inspect.signature(self.builder).parameters.items()
               if p.default is not inspect.Parameter.empty and k not in skip}
        unknown = set(self.recipe) - set(out)
        if unknown:
            raise ValueError(f"{self.builder.__name__} has no parameter(s) {sorted(unknown)}")
        return {**out, **self.recipe}

    def unavailable_reason(self) -> str | None:
        """Why the feature cannot be used with what is installed, or ``None`` when it can."""
        return self.unavailable() if self.unavailable is not None else None


FEATURES: dict[str, FeatureSpec] = {}
_LISTENERS: list[Callable[[FeatureSpec], None]] = []


def register_feature(name: str, *, kind: str, description: str, recipe: dict[str, Any] | None = None,
                     hidden: tuple[str, ...] = (),
                     unavailable: Callable[[], str | None] | None = None) -> Callable[[Any], Any]:
    """Decorator registering a feature class (or a function returning a transformer) as feature ``name``.

    ``kind``: one of :data:`FEATURE_KINDS`. ``description``: the short text pipelines show before their
    classifier's (``"HOG (OpenCV)"`` → ``HOG (OpenCV) → standardised linear SVM (C tuned).``). ``recipe``: the
    catalogue's values where they differ from the builder's defaults. ``hidden``: constructor arguments kept
    out of the pipeline's parameters. ``unavailable()``: why it cannot run here, or ``None``. Decorators stack:
    one class can be several features with different recipes. The builder is returned unchanged.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"feature {name!r}: kind must be one of {FEATURE_KINDS}, got {kind!r}")

    def deco(builder: Any) -> Any:
        if name in FEATURES:
            raise ValueError(f"feature {name!r} is already registered")
        spec = FeatureSpec(name=name, builder=builder, kind=kind, description=description,
                           recipe=dict(recipe or {}), hidden=tuple(hidden), unavailable=unavailable)
        _ = spec.defaults  # a recipe naming no parameter fails here, not when a pipeline is first built
        FEATURES[name] = spec
        for listener in list(_LISTENERS):
            listener(spec)
        return builder

    return deco


def on_register_feature(listener: Callable[[FeatureSpec], None], *, replay: bool = True) -> None:
    """Call ``listener(spec)`` for every feature registered later, and (``replay``) every one registered so far."""
    _LISTENERS.append(listener)
    if replay:
        for spec in list(FEATURES.values()):
            listener(spec)
