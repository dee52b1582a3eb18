"""Reports read the tracking store only (never the runner's memory)."""
