"""Benchmark scripts: run with ``python -m bench.benchmarks.NAME``; they print measured ratios side by side."""
