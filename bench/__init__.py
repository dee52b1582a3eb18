"""cvbench harness: datasets, runner, tracking, reports and the command line."""

__version__ = "0.1.0"

# Results tagged with another ``cvbench.code_version`` are not comparable with today's (reports exclude them).
# Neutral home so that readers of the store (bench.report) need not import bench.runner; bench.runner's
# CODE_VERSION must equal it (tests/test_report.py checks).
CODE_VERSION = "1"
