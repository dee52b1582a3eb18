"""Batch augmentation on the device, for ``uint8`` image tensors shaped ``(N, C, H, W)``.

Policies (the lectures' geometric, colour and occlusion families):

* ``none`` — identity.
* ``standard`` — random crop from a reflection-free zero-padded image (pad = H/8) and, only where the dataset
  allows it, a horizontal flip (never for digits).
* ``strong`` — ``standard`` plus colour jitter (brightness, contrast, saturation on colour images), a small
  random rotation and scaling (±10°, ×0.9–1.1) and random erasing (one rectangle, 2–20 % of the area).

Whole batches are transformed with a few tensor ops (no per-image Python loop, no PIL), so this runs on the
GPU next to the data. Random numbers come from a CPU ``torch.Generator``, so a seed gives the same batch on
any device. Labels are returned unchanged: every policy here is label-preserving.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

POLICIES = ("none", "standard", "strong")


def _rand(n: int, gen: torch.Generator, device: torch.device, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(device)


def random_crop(x: torch.Tensor, gen: torch.Generator, pad: int | None = None, mode: str = "constant") -> torch.Tensor:
    """Random ``H×W`` crops of the padded batch (zeros, or ``mode="reflect"`` for float batches), gathered with
    one indexing op: every image moves by up to ``pad`` px on each axis."""
    n, c, h, w = x.shape
    pad = pad if pad is not None else max(1, round(h / 8))
    xp = F.pad(x, (pad, pad, pad, pad), mode=mode)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    return xp[torch.arange(n, device=x.device)[:, None, None, None],
              torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


def random_hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def colour_jitter(x: torch.Tensor, gen: torch.Generator, strength: float = 0.2) -> torch.Tensor:
    """Brightness and contrast (and saturation for 3 channels) scaled by U(1-s, 1+s); float in, float out."""
    n, c = x.shape[:2]
    b = _rand(n, gen, x.device, 1 - strength, 1 + strength).view(n, 1, 1, 1)
    k = _rand(n, gen, x.device, 1 - strength, 1 + strength).view(n, 1, 1, 1)
    x = x * b
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * k + mean
    if c == 3:
        s = _rand(n, gen, x.device, 1 - strength, 1 + strength).view(n, 1, 1, 1)
        gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - gray) * s + gray
    return x


def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float = 10.0,
                  scale: tuple[float, float] = (0.9, 1.1)) -> torch.Tensor:
    """Small random rotation and isotropic scaling about the centre (bilinear, zero fill); float in/out."""
    n = x.shape[0]
    ang = _rand(n, gen, x.device, -degrees, degrees) * (math.pi / 180)
    inv = 1.0 / _rand(n, gen, x.device, *scale)  # affine_grid maps output → input coordinates
    cos, sin = torch.cos(ang) * inv, torch.sin(ang) * inv
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erasing(x: torch.Tensor, gen: torch.Generator, p: float = 0.5,
                   area: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """With probability ``p`` per image, fill one random rectangle (aspect 0.3–3.3) with uniform noise."""
    n, c, h, w = x.shape
    a = _rand(n, gen, x.device, *area) * h * w
    r = torch.exp(_rand(n, gen, x.device, math.log(0.3), math.log(3.3)))
    eh = (a * r).sqrt().clamp(1, h)
    ew = (a / r).sqrt().clamp(1, w)
    y0 = _rand(n, gen, x.device) * (h - eh)
    x0 = _rand(n, gen, x.device) * (w - ew)
    on = (torch.rand(n, generator=gen) < p).to(x.device)
    noise = (torch.rand(x.shape, generator=gen) * 255).to(x.device, x.dtype)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    mask = ((ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1))
            & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1)) & on.view(n, 1, 1))
    return torch.where(mask[:, None], noise, x)


def augment_batch(x: torch.Tensor, y: torch.Tensor | None, policy: str, hflip: bool,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply ``policy`` to a ``uint8`` batch; returns ``(images, labels)`` with the input's shape and dtype."""
    if policy not in POLICIES:
        raise ValueError(f"unknown augmentation {policy!r}; choose from {POLICIES}")
    if policy == "none":
        return x, y
    out = random_crop(x, gen)
    if hflip:
        out = random_hflip(out, gen)
    if policy == "strong":
        f = out.float()
        f = random_affine(colour_jitter(f, gen), gen)
        f = random_erasing(f, gen)
        out = f.round_().clamp_(0, 255).to(x.dtype)
    return out, y
