"""cvbench harness: datasets, runner, tracking, reports and the command line."""

__version__ = "0.1.0"
