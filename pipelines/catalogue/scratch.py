"""Networks trained from scratch on the benchmark's training split (family ``scratch``).

Every factory's keyword defaults are the whole recipe (see :class:`pipelines.training.NetClassifier`);
``hflip=None`` follows the dataset (flips only where they preserve labels, never for digits).
"""

from __future__ import annotations

from typing import Annotated

from pipelines.airbench import AirbenchClassifier
from pipelines.params import Interval
from pipelines.registry import register
from pipelines.training import NetClassifier


def _net(arch: str, **kw) -> NetClassifier:
    return NetClassifier(arch=arch, **kw)


@register("cnn-small", family="scratch", features="cnn", classifier="softmax")
def cnn_small(width: int = 32, epochs: int = 8, batch_size: int = 128, lr: float = 0.05,
              optimizer: str = "sgd", schedule: str = "onecycle", weight_decay: float = 5e-4,
              label_smoothing: float = 0.0, augment: str = "none", hflip: bool | None = None,
              patience: int | None = None, time_budget_s: float | None = None, compile: bool = False,
              device: str = "auto", seed: int = 0) -> NetClassifier:
    """Small 3-block CNN (BN, ReLU, max-pool), SGD-Nesterov + OneCycle: the CPU-friendly scratch baseline."""
    return _net("cnn-small", **locals())


@register("mlp", family="scratch", features="pixels", classifier="mlp")
def mlp(width: int = 300, epochs: int = 20, batch_size: int = 128, lr: float = 0.05, optimizer: str = "sgd",
        schedule: str = "onecycle", weight_decay: float = 1e-4, label_smoothing: float = 0.0,
        augment: str = "none", hflip: bool | None = None, patience: int | None = None,
        time_budget_s: float | None = None, compile: bool = False, device: str = "auto",
        seed: int = 0) -> NetClassifier:
    """Fully connected net on flattened pixels (one hidden layer of ``width`` ReLUs; see ``n_params``)."""
    return _net("mlp", **locals())


@register("lenet5", family="scratch", features="cnn", classifier="softmax")
def lenet5(epochs: int = 12, batch_size: int = 128, lr: float = 0.05, optimizer: str = "sgd",
           schedule: str = "onecycle", weight_decay: float = 5e-4, label_smoothing: float = 0.0,
           augment: str = "none", hflip: bool | None = None, patience: int | None = None,
           time_budget_s: float | None = None, compile: bool = False, device: str = "auto",
           seed: int = 0) -> NetClassifier:
    """LeNet-5 as in the lecture table: conv20-pool-conv50-pool-FC500-FC (ReLU, max-pool)."""
    return _net("lenet5", **locals())


@register("alexnet-s", family="scratch", features="cnn", classifier="softmax")
def alexnet_s(width: int = 64, epochs: int = 30, batch_size: int = 128, lr: float = 0.05,
              optimizer: str = "sgd", schedule: str = "onecycle", weight_decay: float = 5e-4,
              label_smoothing: float = 0.1, augment: str = "standard", hflip: bool | None = None,
              patience: int | None = None, time_budget_s: float | None = None, compile: bool = False,
              device: str = "auto", seed: int = 0) -> NetClassifier:
    """AlexNet-style 5-conv net (with BN) scaled to small inputs, dropout FC head."""
    return _net("alexnet-s", **locals())


@register("vgg-s", family="scratch", features="cnn", classifier="softmax")
def vgg_s(width: int = 64, epochs: int = 30, batch_size: int = 128, lr: float = 0.05, optimizer: str = "sgd",
          schedule: str = "onecycle", weight_decay: float = 5e-4, label_smoothing: float = 0.1,
          augment: str = "standard", hflip: bool | None = None, patience: int | None = None,
          time_budget_s: float | None = None, compile: bool = False, device: str = "auto",
          seed: int = 0) -> NetClassifier:
    """VGG-11-style stacks of 3×3 conv-BN-ReLU with max-pools, global-pooled head."""
    return _net("vgg-s", **locals())


@register("resnet-s", family="scratch", features="cnn", classifier="softmax")
def resnet_s(width: int = 64, epochs: int = 40, batch_size: int = 256, lr: float = 0.2, optimizer: str = "sgd",
             schedule: str = "onecycle", weight_decay: float = 5e-4, label_smoothing: float = 0.1,
             augment: str = "standard", hflip: bool | None = None, patience: int | None = None,
             time_budget_s: float | None = None, compile: bool = False, device: str = "auto",
             seed: int = 0) -> NetClassifier:
    """ResNet-18 layout (torchvision BasicBlocks) with a 3×3 stem for small images; width 64 = ResNet-18."""
    return _net("resnet-s", **locals())


@register("inception-s", family="scratch", features="cnn", classifier="softmax")
def inception_s(width: int = 64, epochs: int = 30, batch_size: int = 128, lr: float = 0.1, optimizer: str = "sgd",
                schedule: str = "onecycle", weight_decay: float = 5e-4, label_smoothing: float = 0.1,
                augment: str = "standard", hflip: bool | None = None, patience: int | None = None,
                time_budget_s: float | None = None, compile: bool = False, device: str = "auto",
                seed: int = 0) -> NetClassifier:
    """Small GoogLeNet: six Inception modules (1×1, 3×3, double-3×3 and pool-projection branches, BN), a 3×3
    stem for small images, global-pooled head; width 64 = GoogLeNet's channel counts (see ``n_params``)."""
    return _net("inception-s", **locals())


@register("airbench-cnn", family="scratch", features="cnn", classifier="softmax")
def airbench_cnn(width: int = 64, epochs: Annotated[float, Interval(gt=0)] = 9.9, batch_size: int = 1024,
                 lr: float = 11.5, momentum: Annotated[float, Interval(ge=0, lt=1)] = 0.85,
                 weight_decay: float = 0.0153, bias_scaler: float = 64.0, label_smoothing: float = 0.2,
                 whiten_bias_epochs: int = 3, translate: int = 2, hflip: bool | None = None,
                 tta: Annotated[int, Interval(ge=0, le=2)] = 2, lookahead: bool = True, precision: str = "auto",
                 channels_last: bool = True, compile: bool = False, device: str = "auto",
                 seed: int = 0) -> AirbenchClassifier:
    """The airbench94 recipe re-written (Jordan 2024): patch-whitened 64/256/256 CNN, Lookahead, alternating
    flips, TTA; 9.9 epochs of batch 1024 reach 94% on CIFAR-10 on a GPU (see :mod:`pipelines.airbench`)."""
    return AirbenchClassifier(**locals())
