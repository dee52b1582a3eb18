"""``cnn-small``: a CPU-friendly three-block CNN (conv-BN-ReLU ×2 per block, max-pool), global-pooled head."""

from __future__ import annotations

from torch import nn

from pipelines.nets import register_net


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register_net("cnn-small")
def cnn_small(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 32) -> nn.Module:
    w = width
    return nn.Sequential(
        conv_bn(in_channels, w), nn.MaxPool2d(2),
        conv_bn(w, 2 * w), nn.MaxPool2d(2),
        conv_bn(2 * w, 4 * w), nn.AdaptiveMaxPool2d(1),
        nn.Flatten(), nn.Linear(4 * w, n_classes),
    )
