"""The dataset record every loader returns, and the registry of dataset names."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.errors import DatasetError


@dataclass
class Dataset:
    """Decoded images (``uint8``, ``(N, H, W, C)``) and integer labels.

    ``X_test`` is ``None`` when the source has no test split of its own; the split contract then carves one.
    ``meta`` holds provenance: source, options, skipped files with reasons, ``allow_hflip``, content digest.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


Loader = Callable[..., Dataset]
_DATASETS: dict[str, dict[str, Any]] = {}


def register_dataset(name: str, *, kind: str, description: str = "", allow_hflip: bool = False
                     ) -> Callable[[Loader], Loader]:
    """Register ``loader(data_dir, image_size) -> Dataset`` under ``name``.

    ``kind`` is ``embedded`` (ships with a package) or ``download`` (fetched into the data directory).
    ``allow_hflip`` says whether a horizontal flip preserves labels (never for digits).
    """

    def deco(fn: Loader) -> Loader:
        _DATASETS[name] = {"loader": fn, "kind": kind, "description": description, "allow_hflip": allow_hflip}
        return fn

    return deco


def dataset_names() -> list[str]:
    return sorted(_DATASETS)


def dataset_info(name: str) -> dict[str, Any]:
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, list(_DATASETS), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise DatasetError(
            f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(sorted(_DATASETS))}, "
            "or folder:PATH for an ImageFolder directory or .zip."
        )
    return _DATASETS[name]
