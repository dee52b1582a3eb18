"""A job (one dataset × pipeline × seed cell of a grid, with everything that determines its result) and its
outcome. Plain data: the runner plans them, executors run them, reports never see them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench import CODE_VERSION  # bump it there when a change makes earlier results incomparable
from bench.datasets import SplitData, SplitOptions
from bench.errors import ConfigError
from pipelines.registry import get_spec


@dataclass(frozen=True)
class Job:
    """One (dataset, pipeline, seed) cell of the grid, with everything that determines its result."""

    dataset: str
    pipeline: str
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    split: SplitOptions = field(default_factory=SplitOptions)
    image_size: int | None = None
    split_hash: str | None = None  # the data this job sees (split indices + image content), once loaded

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed {self.seed!r}: a seed must be a non-negative integer")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size < 8):
            raise ConfigError(f"--image-size {self.image_size!r}: must be an integer ≥ 8 (pixels)")

    def resolved_params(self) -> dict[str, Any]:
        spec = get_spec(self.pipeline)
        params = spec.resolve_params(**self.params)
        if "seed" in params:
            params["seed"] = self.seed
        return params

    def for_data(self, data: SplitData) -> Job:
        """This job bound to the data it will see: the identity then covers the images themselves, so a
        changed ``folder:`` dataset is a new job."""
        if self.split_hash not in (None, data.split_hash):
            raise RuntimeError(f"{self.run_name}: the dataset changed since the job was planned "
                               f"(split hash {self.split_hash} → {data.split_hash}); rerun the command")
        return replace(self, split_hash=data.split_hash)

    def identity(self) -> str:
        blob = {"dataset": self.dataset, "split": self.split.as_params(), "image_size": self.image_size,
                "split_hash": self.split_hash, "pipeline": self.pipeline, "params": self.resolved_params(),
                "seed": self.seed, "code_version": CODE_VERSION}
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:20]

    @property
    def run_name(self) -> str:
        return f"{self.dataset}/{self.pipeline}/{self.seed}"

    def as_config(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolved_params"] = self.resolved_params()
        d["identity"] = self.identity()
        return d


@dataclass
class JobResult:
    job: Job
    status: str  # FINISHED | SKIPPED | FAILED | KILLED
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def experiment_name(dataset: str) -> str:
    return dataset


