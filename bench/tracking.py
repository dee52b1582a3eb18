"""The only module that talks to MLflow: store resolution, runs with honest status, search into pandas.

Default store: SQLite at ``<results>/mlflow.db`` with artifacts under ``<results>/mlartifacts`` (``results`` is
``CVBENCH_RESULTS`` or ``./results``). ``MLFLOW_TRACKING_URI`` overrides it (e.g. an ``mlflow server``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bench.errors import TrackingError

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

T = TypeVar("T")
MAX_PARAM_LEN = 6000


def results_dir() -> Path:
    return Path(os.environ.get("CVBENCH_RESULTS", "results")).resolve()


def default_uri() -> str:
    return f"sqlite:///{results_dir() / 'mlflow.db'}"


def resolve_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def _retry(fn: Callable[[], T], what: str, attempts: int = 8) -> T:
    """Retry SQLite lock contention with backoff (several processes may write one store)."""
    for i in range(attempts):
        try:
            return fn()
        except MlflowException as e:
            if "locked" not in str(e).lower() or i == attempts - 1:
                raise
            time.sleep(0.2 * 2**i)
    raise AssertionError("unreachable")


class Tracker:
    """A handle on one tracking store. All MLflow calls of the suite go through here."""

    def __init__(self, uri: str | None = None):
        self.uri = resolve_uri(uri)
        self._check_and_init()
        self.client = MlflowClient(tracking_uri=self.uri)
        mlflow.set_tracking_uri(self.uri)

    # -- store ---------------------------------------------------------------------------------------------
    @property
    def is_local_sqlite(self) -> bool:
        return self.uri.startswith("sqlite:///")

    def _check_and_init(self) -> None:
        if self.uri.startswith(("http://", "https://")):
            import urllib.error
            import urllib.request

            try:
                urllib.request.urlopen(self.uri.rstrip("/") + "/health", timeout=5).read()
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise TrackingError(
                    f"tracking server {self.uri} is unreachable ({getattr(e, 'reason', e)}). Start it "
                    "(`make server`) or unset MLFLOW_TRACKING_URI to use the local store; nothing was run."
                ) from None
            return
        if self.is_local_sqlite:
            db = Path(self.uri[len("sqlite:///"):])
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
                probe = db.parent / f".write-probe-{os.getpid()}"
                probe.write_text("ok")
                probe.unlink()
            except OSError as e:
                raise TrackingError(f"results directory {db.parent} is not writable ({e.strerror}); "
                                    "fix its permissions, free space, or set CVBENCH_RESULTS.") from None
            # Create the schema under an exclusive lock: several processes creating one fresh DB race on it.
            with open(db.parent / ".mlflow-init.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    MlflowClient(tracking_uri=self.uri).search_experiments(max_results=1)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def existing_experiment_id(self, name: str) -> str | None:
        """The experiment's id, or ``None`` when there is none (nothing is created)."""
        exp = _retry(lambda: self.client.get_experiment_by_name(name), "get experiment")
        return exp.experiment_id if exp is not None else None

    def experiment_id(self, name: str) -> str:
        exp = _retry(lambda: self.client.get_experiment_by_name(name), "get experiment")
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                _retry(lambda: self.client.restore_experiment(exp.experiment_id), "restore experiment")
            return exp.experiment_id
        kw: dict[str, Any] = {}
        if self.is_local_sqlite:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
            kw["artifact_location"] = (Path(self.uri[len("sqlite:///"):]).parent / "mlartifacts" / safe).as_uri()
        try:
            return _retry(lambda: self.client.create_experiment(name, **kw), "create experiment")
        except MlflowException:
            exp = self.client.get_experiment_by_name(name)  # created concurrently by another process
            if exp is None:
                raise
            return exp.experiment_id

    # -- runs ----------------------------------------------------------------------------------------------
    def finished_runs(self, experiment_id: str, job_id: str) -> list[str]:
        runs = _retry(lambda: self.client.search_runs(
            [experiment_id], f"tags.`cvbench.job_id` = '{job_id}' and attributes.status = 'FINISHED'",
            max_results=10), "search runs")
        return [r.info.run_id for r in runs]

    def start_run(self, experiment_id: str, name: str, tags: dict[str, str], parent_id: str | None = None) -> str:
        tags = dict(tags)
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        run = _retry(lambda: self.client.create_run(experiment_id, run_name=name, tags=tags), "create run")
        return run.info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        _retry(lambda: self.client.set_terminated(run_id, status), "end run")

    @contextlib.contextmanager
    def run(self, experiment_id: str, name: str, tags: dict[str, str], parent_id: str | None = None
            ) -> Iterator[str]:
        """A run that ends FINISHED only when the body completes: KILLED on interrupt, FAILED on error."""
        run_id = self.start_run(experiment_id, name, tags, parent_id)
        try:
            yield run_id
        except (KeyboardInterrupt, SystemExit):
            self._safe_end(run_id, "KILLED")
            raise
        except BaseException as e:
            with contextlib.suppress(Exception):
                self.set_tags(run_id, {"cvbench.error": f"{type(e).__name__}: {e}"[:5000]})
            self._safe_end(run_id, "FAILED")
            raise
        else:
            self.end_run(run_id, "FINISHED")

    def _safe_end(self, run_id: str, status: str) -> None:
        with contextlib.suppress(Exception):
            self.end_run(run_id, status)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(k, _param_str(v)) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):
            _retry(lambda b=items[i:i + 100]: self.client.log_batch(run_id, params=b), "log params")

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, step) for k, v in metrics.items() if v is not None]
        if items:
            _retry(lambda: self.client.log_batch(run_id, metrics=items), "log metrics")

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        items = [RunTag(k, str(v)[:5000]) for k, v in tags.items()]
        if items:
            _retry(lambda: self.client.log_batch(run_id, tags=items), "set tags")

    def log_artifacts(self, run_id: str, files: dict[str, bytes | str]) -> None:
        """Upload ``{relative name: content}`` as the run's artifacts."""
        with tempfile.TemporaryDirectory() as d:
            for name, content in files.items():
                p = Path(d) / name
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(content if isinstance(content, bytes) else content.encode())
            _retry(lambda: self.client.log_artifacts(run_id, d), "log artifacts")

    def download_artifact(self, run_id: str, path: str, dst: str) -> str:
        """Download the run's artifact ``path`` (file or directory) into ``dst``; its local path."""
        return self.client.download_artifacts(run_id, path, dst)

    def artifact_bytes(self, run_id: str, path: str) -> bytes:
        """The content of the run's artifact file ``path`` (MLflow downloads it; no path into the store is built
        here, so local and server-proxied artifact stores read alike)."""
        with tempfile.TemporaryDirectory() as d:
            return Path(self.download_artifact(run_id, path, d)).read_bytes()

    def artifact_text(self, run_id: str, path: str) -> str:
        """The run's artifact file ``path`` as UTF-8 text."""
        return self.artifact_bytes(run_id, path).decode("utf-8")

    def artifact_dict(self, run_id: str, path: str) -> Any:
        """The run's JSON artifact ``path``, parsed."""
        return json.loads(self.artifact_text(run_id, path))

    def artifact_files(self, run_id: str, path: str) -> dict[str, bytes]:
        """Every file under the run's artifact directory ``path``: ``{path relative to it (POSIX): content}``."""
        with tempfile.TemporaryDirectory() as d:
            root = Path(self.download_artifact(run_id, path, d))
            return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    # -- search --------------------------------------------------------------------------------------------
    def experiments(self) -> list[Any]:
        return [e for e in self.client.search_experiments() if e.name != "Default"]

    def runs_frame(self, experiment_names: list[str] | None = None, finished_only: bool = True,
                   include_parents: bool = False):
        """Runs as a pandas DataFrame (MLflow's ``search_runs``): columns ``metrics.*``, ``params.*``, ``tags.*``."""
        import pandas as pd

        exps = self.experiments()
        if experiment_names:
            exps = [e for e in exps if e.name in experiment_names]
        if not exps:
            return pd.DataFrame()
        flt = "attributes.status = 'FINISHED'" if finished_only else ""
        mlflow.set_tracking_uri(self.uri)  # search_runs reads the global URI: make it this tracker's store
        df = mlflow.search_runs(experiment_ids=[e.experiment_id for e in exps], filter_string=flt,
                                output_format="pandas")
        if df.empty:
            return df
        if not include_parents and "tags.cvbench.kind" in df:
            df = df[df["tags.cvbench.kind"] == "job"]
        return df.reset_index(drop=True)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def run_data(self, run_id: str) -> dict[str, dict[str, Any]]:
        """One run's latest ``metrics``, ``params`` and ``tags`` as plain dicts."""
        d = _retry(lambda: self.client.get_run(run_id), "get run").data
        return {"metrics": dict(d.metrics), "params": dict(d.params), "tags": dict(d.tags)}


def _param_str(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s[:MAX_PARAM_LEN]
