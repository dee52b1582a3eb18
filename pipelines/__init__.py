"""cvbench pipelines: features, classifiers and networks as plain scikit-learn-style estimators.

Nothing here imports the ``bench`` harness: every pipeline works in a notebook with no MLflow and no files.
"""

from pipelines.registry import create, get_spec, list_pipelines, register

__all__ = ["create", "get_spec", "list_pipelines", "register"]
