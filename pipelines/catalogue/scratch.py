"""Networks trained from scratch on the benchmark's training split (family ``scratch``).

Every factory's keyword defaults are the whole recipe (see :class:`pipelines.training.NetClassifier`);
``hflip=None`` follows the dataset (flips only where they preserve labels, never for digits).
"""

from __future__ import annotations

from typing import Any

from pipelines.airbench import AirbenchClassifier
from pipelines.registry import derived_factory, register
from pipelines.training import NetClassifier


def scratch_net(name: str, arch: str, description: str, hide: tuple[str, ...] = (), **recipe: Any) -> None:
    """Register pipeline ``name``: :class:`NetClassifier` building network ``arch`` (see :func:`derived_factory`)."""
    register(name, family="scratch", features="pixels" if arch == "mlp" else "cnn",
             classifier="mlp" if arch == "mlp" else "softmax")(
        derived_factory(name, NetClassifier, description, fixed={"arch": arch}, hide=hide, **recipe))


# SGD-Nesterov + OneCycle everywhere; the standard augmentation (crop + flip where allowed) and label smoothing
# for the deeper nets
scratch_net("cnn-small", "cnn-small", "Small 3-block CNN (BN, ReLU, max-pool), SGD-Nesterov + OneCycle: the "
            "CPU-friendly scratch baseline.", width=32, epochs=8)
scratch_net("mlp", "mlp", "Fully connected net on flattened pixels (one hidden layer of ``width`` ReLUs; see "
            "``n_params``).", width=300, epochs=20, weight_decay=1e-4)
scratch_net("lenet5", "lenet5", "LeNet-5 as in the lecture table: conv20-pool-conv50-pool-FC500-FC (ReLU, "
            "max-pool).", hide=("width",), epochs=12)
scratch_net("alexnet-s", "alexnet-s", "AlexNet-style 5-conv net (with BN) scaled to small inputs, dropout FC head.",
            width=64, epochs=30, label_smoothing=0.1, augment="standard")
scratch_net("vgg-s", "vgg-s", "VGG-11-style stacks of 3×3 conv-BN-ReLU with max-pools, global-pooled head.",
            width=64, epochs=30, label_smoothing=0.1, augment="standard")
scratch_net("resnet-s", "resnet-s", "ResNet-18 layout (torchvision BasicBlocks) with a 3×3 stem for small images; "
            "width 64 = ResNet-18.", width=64, epochs=40, batch_size=256, lr=0.2, label_smoothing=0.1,
            augment="standard")
scratch_net("inception-s", "inception-s", "Small GoogLeNet: six Inception modules (1×1, 3×3, double-3×3 and "
            "pool-projection branches, BN), a 3×3 stem for small images, global-pooled head; width 64 = "
            "GoogLeNet's channel counts (see ``n_params``).", width=64, epochs=30, lr=0.1, label_smoothing=0.1,
            augment="standard")


register("airbench-cnn", family="scratch", features="cnn", classifier="softmax")(derived_factory(
    "airbench-cnn", AirbenchClassifier, "The airbench94 recipe re-written (Jordan 2024): patch-whitened 64/256/256 "
    "CNN, Lookahead, alternating flips, TTA; 9.9 epochs of batch 1024 reach 94% on CIFAR-10 on a GPU (see "
    ":mod:`pipelines.airbench`)."))
