"""The registered recipes. Importing this package registers every pipeline (one module per family)."""

from pipelines.catalogue import classical, scratch, transfer  # noqa: F401
