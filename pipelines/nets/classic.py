"""The lectures' networks, sized to the input: ``mlp``, ``lenet5``, ``alexnet-s``, ``vgg-s``, ``resnet-s``.

Every builder takes ``(in_channels, n_classes, size, **kw)`` and works for 1 or 3 channels and 8–64 px (or
larger) inputs: pooling stops once the feature map is 1 px, and heads are sized from the final map.
"""

from __future__ import annotations

import math

from torch import nn
from torchvision.models.resnet import BasicBlock

from pipelines.nets import register_net


@register_net("mlp")
def mlp(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 300, depth: int = 1,
        dropout: float = 0.0) -> nn.Module:
    """Fully connected baseline on flattened pixels: ``depth`` hidden layers of ``width`` ReLU units."""
    layers: list[nn.Module] = [nn.Flatten()]
    d_in = in_channels * size[0] * size[1]
    for _ in range(depth):
        layers += [nn.Linear(d_in, width), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        d_in = width
    layers.append(nn.Linear(d_in, n_classes))
    return nn.Sequential(*layers)


@register_net("lenet5")
def lenet5(in_channels: int, n_classes: int, size: tuple[int, int], width: int | None = None) -> nn.Module:
    """The lecture table: Conv(20,k5,p2)-ReLU-MaxPool(2)-Conv(50,k5,p2)-ReLU-MaxPool(2)-FC(500)-ReLU-FC."""
    h, w = size[0] // 4, size[1] // 4  # two 2×2 max-pools (padding 2 keeps k5 convs size-preserving)
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(50 * h * w, 500), nn.ReLU(inplace=True), nn.Linear(500, n_classes),
    )


def _conv_bn(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_net("alexnet-s")
def alexnet_s(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 64, hidden: int = 512,
              dropout: float = 0.5) -> nn.Module:
    """AlexNet's layout (5 convs 64-192-384-256-256 × width/64, pools after conv 1, 2, 5, two dropout FC
    layers) for small images: 5×5 then 3×3 kernels at stride 1 instead of 11×11/4, plus BatchNorm so it
    trains from scratch without AlexNet's LRN and careful initialisation. torchvision's ``AlexNet`` is
    hard-wired to 224-px inputs (stride-4 stem, 6×6 pooled head), hence this definition."""
    c = [max(8, round(k * width / 64)) for k in (64, 192, 384, 256, 256)]
    s = min(size)
    layers: list[nn.Module] = []
    cin = in_channels
    for i, cout in enumerate(c):
        layers += _conv_bn(cin, cout, 5 if i == 0 else 3)
        if i in (0, 1, 4) and s >= 2:
            layers.append(nn.MaxPool2d(2))
            s //= 2
        cin = cout
    pooled = 2 if s >= 2 else 1
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(pooled), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(cin * pooled * pooled, hidden), nn.ReLU(inplace=True),
        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_classes),
    )


@register_net("vgg-s")
def vgg_s(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 64,
          dropout: float = 0.3) -> nn.Module:
    """VGG-11 layout (stages of 3×3 conv-BN-ReLU, 1-1-2-2-2 convs, widths 64→512 × width/64, max-pool after
    each stage while the map is ≥ 2 px), global average pool, one hidden FC layer. torchvision's ``VGG``
    is fixed to a 7×7 pooled 4096-unit head, too large for 8–64 px inputs."""
    stages = [(64, 1), (128, 1), (256, 2), (512, 2), (512, 2)]
    s = min(size)
    n_stages = max(1, min(len(stages), int(math.log2(max(s, 1))) + 1))  # no stage left for a 0-px map
    layers: list[nn.Module] = []
    cin = in_channels
    for ch, n in stages[:n_stages]:
        cout = max(8, round(ch * width / 64))
        for _ in range(n):
            layers += _conv_bn(cin, cout)
            cin = cout
        if s >= 2:
            layers.append(nn.MaxPool2d(2))
            s //= 2
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, n_classes))


class ResNetS(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks, torchvision's ``BasicBlock``) with a 3×3 stride-1 stem and no
    stem max-pool, so 8–64 px images keep enough resolution; ``width`` is the first stage's channels (64 in
    ResNet-18; torchvision's ``ResNet`` fixes it at 64, hence this assembly of its blocks)."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 64, layers: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, width))
        stages, cin = [], width
        for i, n in enumerate(layers):
            cout, stride = width * 2**i, 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != cout:
                down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            blocks = [BasicBlock(cin, cout, stride, down)] + [BasicBlock(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, n_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each residual branch (Goyal et al. 2017)
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


@register_net("resnet-s")
def resnet_s(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 64) -> nn.Module:
    return ResNetS(in_channels, n_classes, width)
