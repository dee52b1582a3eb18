"""Command-line pieces shared by ``python -m bench run`` (:mod:`bench.cli`) and ``study``
(:mod:`bench.studies.cli`): the split-contract options and ``--param`` overrides.

A module of its own so that neither CLI imports the other.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.errors import ConfigError


def _yaml_scalar(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--param PIPELINE_OR_WILDCARD.key=value`` or ``--param key=value`` (all pipelines)."""
    out: dict[str, dict[str, Any]] = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--param {it!r}: expected key=value or pipeline.key=value")
        k, v = it.split("=", 1)
        target, _, key = k.rpartition(".")
        out.setdefault(target or "*", {})[key] = _yaml_scalar(v)
    return out


def add_split_args(p: argparse.ArgumentParser) -> None:
    """The split-contract options (``--val-fraction``, ``--max-train``, ``--image-size``…) on ``p``."""
    g = p.add_argument_group("split contract (shared by every pipeline)")
    g.add_argument("--val-fraction", type=float, help="validation fraction of the training pool (default 0.1)")
    g.add_argument("--test-fraction", type=float, help="test fraction when the dataset has no test split (default 0.2)")
    g.add_argument("--split-seed", type=int, help="seed of the split (default 0; independent of --seed)")
    g.add_argument("--train-per-class", type=int, help="N training images per class (nested across N)")
    g.add_argument("--max-train", type=int, help="at most N training images (stratified)")
    g.add_argument("--max-val", type=int, help="at most N validation images (stratified)")
    g.add_argument("--max-test", type=int, help="at most N test images (stratified)")
    g.add_argument("--test-rest", action="store_true", default=None,
                   help="no test split: use every image outside train/val as test (classic protocol)")
    g.add_argument("--image-size", type=int, help="resize: shorter side to S, then centre crop S×S")


def split_options(a: argparse.Namespace, base: dict[str, Any]) -> tuple[Any, int | None]:
    """The :class:`~bench.datasets.SplitOptions` and image size of the parsed options over ``base``."""
    from bench.datasets import SplitOptions

    opts = {k: v for k, v in base.items() if k != "image_size"}
    for k in ("val_fraction", "test_fraction", "split_seed", "train_per_class", "max_train", "max_val",
              "max_test", "test_rest"):
        v = getattr(a, k)
        if v is not None:
            opts[k] = v
    return SplitOptions(**opts), (a.image_size if a.image_size is not None else base.get("image_size"))
