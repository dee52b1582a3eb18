"""cvbench harness: datasets, runner, tracking, reports and the command line."""

import os as _os

__version__ = "0.1.0"

# numpy advises transparent hugepages for arrays of 4 MiB and more. On a VM that hands freed memory back to its
# host (virtio-balloon free page reporting, as on the 2-core machine), touching such pages for the first time
# after a big job freed its memory costs 0.1-0.5 s of system time, so a sub-second step's cost depended on the
# jobs run before it: the harness turns the advice off for itself and its workers unless the user set
# NUMPY_MADVISE_HUGEPAGE (see docs/measurements.md#execute; bench.measure applies it, runs record it).
_os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

# Results tagged with another ``cvbench.code_version`` are not comparable with today's (reports exclude them).
# Neutral home so that readers of the store (bench.report) need not import bench.runner; every job's identity
# (bench.jobs) includes it, and tests/test_report.py checks the report keeps the runs tagged with it. "2": EfficientNet-Lite0 now runs as trained (TF padding,
# [-1, 1] inputs), which changes every transfer result. "3": EfficientNet-Lite0 embeddings are multiscale by default
# and the frozen-feature logreg has its own C grid. "4": costs charged from raw images whatever the cache holds
# (fit/predict time, job-own peak memory), the split hash in the job identity, tuned parameters fixed when given
# and never a grid point without validation, fine-tune pipelines on their named backbone, per-job seeding.
# "5": cached features are charged the peak memory their extraction recorded and what it left resident, and a
# per-job warm-up pays a process's one-off costs, so peak memory no longer depends on job order; linsvm on
# unstandardised encodings also tries C = 10; k-NN has a metric parameter. "6": a prediction under a second is
# timed best of 5 (predict time and inference throughput), peak memory is also recorded in allocated bytes.
# "7": peak RSS no longer subtracts child processes' resident size from this process's high-water mark (a job
# run while pool workers were alive was reported short by their size).
# "8": scratch networks (NetClassifier) train and predict in bf16 autocast with channels_last on CPUs with
# native bf16 (precision="auto"), 2.2-2.4x faster there than the fp32 path of "7", with different weights; and
# numpy's hugepage advice is off in the harness (see above), so a short step's cost no longer depends on what
# ran before it.
# "9": a prediction under a second is timed again with the garbage collector paused until at least 4 more passes
# and 0.2 s of them, best of all (a 5-ms prediction: 40 passes instead of 5), as timeit does.
# "10": a feature extraction under a second is recorded (in the feature cache, and so charged in fit and predict
# time) as its best pass under the same rule, not a single pass that was mostly first-touch page faults; short
# entries written before are computed again.
# "11": airbench-cnn's BatchNorm eps is 1e-3 (was airbench94's 1e-12, under which bf16 training on digits sat at
# chance or swung between epochs); its results differ, on CIFAR-10 too.
CODE_VERSION = "11"
