"""Studies beyond a leaderboard: data efficiency, robustness to classic nuisances, significance, a gallery.

Modules: :mod:`.corruptions` (the nuisances), :mod:`.statistics` (McNemar, bootstrap, seeds),
:mod:`.data_efficiency`, :mod:`.robustness`, :mod:`.gallery`, and :mod:`.results` (reading study outputs back
from the tracking store, for the report). Nothing here imports :mod:`bench.runner` at module level, so the
report may import :mod:`.results` and :mod:`.statistics` without depending on the runner.
"""

import os as _os

# Study commands download many small artifacts (predictions, CSVs); MLflow's per-download progress bars are noise.
_os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
