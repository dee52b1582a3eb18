"""``inception-s``: a small GoogLeNet (Inception v1) for small images, trained from scratch.

Six Inception modules with GoogLeNet's channel counts (3a, 3b | 4a, 4b | 5a, 5b of Szegedy et al. 2015, table 1)
at ``width=64``, scaled by ``width / 64``; every convolution is conv-BN-ReLU, and the 5×5 branch is two 3×3
convolutions (same receptive field, fewer weights: Inception v2's factorisation). GoogLeNet's 224-px stem
(7×7/2 conv, max-pools down to 28 px) becomes one 3×3 convolution at full resolution, and its auxiliary
classifiers are left out (with BatchNorm they are not needed to train it). A 2×2 max-pool before each stage
runs while the map is at least 2 px, so 8–96 px inputs all work; the head is global average pooling, dropout
and one linear layer, as in GoogLeNet. At 32 px and ``width=64``: 3.9 M parameters, about 0.25 GMAC per image.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.nets import register_net

# GoogLeNet's modules: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj); output = #1×1 + #3×3 + #5×5 + pool
STAGES = (
    ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)),  # 3a, 3b → 480 channels
    ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64)),  # 4a, 4b → 512
    ((256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)),  # 5a, 5b → 1024
)
STEM = 192  # GoogLeNet's channels entering inception 3a


def _cbr(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Inception(nn.Module):
    """Four parallel branches, concatenated: 1×1; 1×1 → 3×3; 1×1 → 3×3 → 3×3 (the "5×5"); 3×3 max-pool → 1×1."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int):
        super().__init__()
        self.b1 = _cbr(cin, c1)
        self.b3 = nn.Sequential(_cbr(cin, c3r), _cbr(c3r, c3, 3))
        self.b5 = nn.Sequential(_cbr(cin, c5r), _cbr(c5r, c5, 3), _cbr(c5, c5, 3))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _cbr(cin, cp))
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class InceptionS(nn.Module):
    def __init__(self, in_channels: int, n_classes: int, size: tuple[int, int], width: int = 64,
                 dropout: float = 0.2):
        super().__init__()

        def c(k: int) -> int:
            return max(4, round(k * width / 64))

        layers: list[nn.Module] = [_cbr(in_channels, c(STEM), 3)]
        cin, s = c(STEM), min(size)
        for stage in STAGES:
            if s >= 2:
                layers.append(nn.MaxPool2d(2))
                s //= 2
            for spec in stage:
                m = Inception(cin, *(c(k) for k in spec))
                layers.append(m)
                cin = m.out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, n_classes))
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_net("inception-s")
def inception_s(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 64,
                dropout: float = 0.2) -> nn.Module:
    return InceptionS(in_channels, n_classes, size, width, dropout)
