"""``airbench-cnn``: the network of the airbench94 speed-run family (Jordan 2024, arXiv:2404.00498), written here.

A frozen 2×2 patch-whitening conv (its filters are set from training patches by :func:`init_whitening`, ±
each eigenvector), GELU, then three blocks conv3×3 → max-pool → BN → GELU → conv3×3 → BN → GELU (widths
64/256/256 at ``width=64``), a global max-pool and a bias-free linear head scaled by 1/9. BatchNorm keeps its
scale fixed at 1 (only the shift is learnt), convs start as partial identities (Dirac). Works for 1 or 3
channels and any input from about 20 px up (the last pool is global).

BatchNorm's ``eps`` is 1e-3 (Keras's default), not airbench94's 1e-12: under bf16 autocast a channel's values
carry a rounding error of about 0.4% of their magnitude, and a channel whose spread is below that (MNIST's blank
backgrounds reach the last block at 3×3 px) was normalised to amplified rounding noise, its gradient ~10⁶× too:
training in bf16 then sat at chance or swung between 10% and 97% validation accuracy from one epoch to the next.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.nets import register_net

BN_EPS = 1e-3  # see the module docstring


class Conv(nn.Conv2d):
    """3×3 'same' conv without bias whose first ``in_channels`` filters start as the identity."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, kernel_size=3, padding="same", bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        w = self.weight.data
        nn.init.dirac_(w[:w.size(1)])


class Norm(nn.BatchNorm2d):
    """BatchNorm with a fixed unit scale (only the bias trains); fast running statistics."""

    def __init__(self, n: int, momentum: float = 0.6, eps: float = BN_EPS):
        super().__init__(n, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad = False


def conv_group(cin: int, cout: int, eps: float) -> nn.Sequential:
    return nn.Sequential(Conv(cin, cout), nn.MaxPool2d(2), Norm(cout, eps=eps), nn.GELU(),
                         Conv(cout, cout), Norm(cout, eps=eps), nn.GELU())


class Scale(nn.Module):
    def __init__(self, s: float):
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s


@register_net("airbench-cnn")
def airbench_cnn(in_channels: int, n_classes: int, size: tuple[int, int], width: int = 64,
                 bn_eps: float = BN_EPS) -> nn.Module:
    """``width`` 64 gives airbench94's 64/256/256 (1.97M parameters on CIFAR-10); ``bn_eps``: see above."""
    if min(size) < 9:  # 2×2 whitening (−1 px) then three 2× max-pools need at least 8 px left
        raise ValueError(f"airbench-cnn needs images of at least 9×9 px, got {size[0]}×{size[1]}: "
                         "upscale them with --image-size")
    widths = (width, 4 * width, 4 * width)
    whiten = nn.Conv2d(in_channels, 2 * in_channels * 4, kernel_size=2, padding=0, bias=True)
    whiten.weight.requires_grad = False  # set once from the data, never trained
    nn.init.zeros_(whiten.bias)
    return nn.Sequential(
        whiten, nn.GELU(),
        conv_group(whiten.out_channels, widths[0], bn_eps), conv_group(widths[0], widths[1], bn_eps),
        conv_group(widths[1], widths[2], bn_eps),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[2], n_classes, bias=False), Scale(1 / 9),
    )


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, x: torch.Tensor, eps: float = 5e-4, chunk: int = 500) -> None:
    """Set the 2×2 conv's filters to the patches' whitening basis: eigenvectors of the covariance of every
    2×2 patch of ``x`` (normalised float images, N×C×H×W) scaled by 1/√(λ+eps), each with its negative.
    Accumulated ``chunk`` images at a time, so 5,000 images cost a few MB."""
    c, (kh, kw) = x.shape[1], conv.kernel_size
    d = c * kh * kw
    s1, s2, m = torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64), 0
    for i in range(0, len(x), chunk):
        p = x[i:i + chunk].unfold(2, kh, 1).unfold(3, kw, 1).transpose(1, 3).reshape(-1, d).double().cpu()
        s1 += p.sum(0)
        s2 += p.T @ p
        m += len(p)
    mu = s1 / m
    eigval, eigvec = torch.linalg.eigh(s2 / m - torch.outer(mu, mu))
    w = (eigvec.T / torch.sqrt(eigval.clamp_min(0) + eps)[:, None]).reshape(-1, c, kh, kw).float()
    conv.weight.copy_(torch.cat([w, -w]).to(conv.weight.device))
