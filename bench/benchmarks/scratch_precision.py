"""Training rate of the scratch networks by precision and memory layout, through the estimator itself.

    python -m bench.benchmarks.scratch_precision [--arch resnet-s vgg-s alexnet-s cnn-small] [--width 32]
        [--n 2048] [--epochs 2] [--dataset folder:../shared/data/cifar10-jpg.zip]

For each network, :class:`pipelines.training.NetClassifier` is fitted for ``--epochs`` epochs on ``--n`` images
(the standard augmentation, batch 128, no validation split) four ways: fp32 or bf16 autocast × NCHW or
channels-last; the last epoch's training img/s (``history_[-1]["img_per_s"]``) is printed side by side with the
ratio to the fp32 NCHW path (the default before CODE_VERSION 8). bf16 runs natively only where oneDNN has
AVX512-BF16 or AMX (printed first); elsewhere it is emulated and slower, which is why ``precision="auto"`` keeps
fp32 on such CPUs.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.benchmarks import sample_images
from pipelines.training import NetClassifier, cpu_has_native_bf16

WAYS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]


def rate(X: np.ndarray, y: np.ndarray, arch: str, width: int | None, precision: str, channels_last: bool,
         epochs: int) -> float:
    """Training img/s of the last of ``epochs`` epochs."""
    clf = NetClassifier(arch=arch, width=width, epochs=epochs, augment="standard", precision=precision,
                        channels_last=channels_last, device="cpu")
    return float(clf.fit(X, y).history_[-1]["img_per_s"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", nargs="+", default=["resnet-s", "vgg-s", "alexnet-s", "cnn-small"])
    ap.add_argument("--width", type=int, default=None, help="network width (default: each network's own)")
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=2, help="the first warms up; the last one is timed")
    ap.add_argument("--dataset", default=None, help="images from this dataset (default: random 32×32×3)")
    a = ap.parse_args(argv)
    X = sample_images(a.dataset, a.n)
    y = np.arange(len(X)) % 10  # labels do not change the training rate
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}; {len(X)} images {X.shape[1:]}, {a.epochs} epochs")
    print(f"{'network':12s}" + "".join(f"{p + (' CL' if cl else ' NCHW'):>16s}" for p, cl in WAYS))
    for arch in a.arch:
        rates = [rate(X, y, arch, a.width, p, cl, a.epochs) for p, cl in WAYS]
        print(f"{arch:12s}" + "".join(f"{r:9.0f} ({r / rates[0]:.2f}×)" for r in rates), flush=True)


if __name__ == "__main__":
    main()
