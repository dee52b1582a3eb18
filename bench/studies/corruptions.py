"""Classic nuisances as image corruptions: ``corrupt(X, name, severity, seed)`` on ``uint8`` ``(N, H, W, C)``.

One corruption per classic nuisance, each at severities 1..5 (0 is the identity), deterministic per seed.
The per-image random draws (sign of a rotation, noise, patch position, …) come from a NumPy generator seeded
by ``(seed, corruption, severity)``; the image operations are torchvision ``transforms.v2.functional`` ops
(rotate, affine, perspective, elastic_transform, adjust_contrast, adjust_gamma, gaussian_blur, jpeg, erase),
i.e. the maintained implementation behind torchvision's augmentation pipelines. The ImageNet-C package
(``imagecorruptions``) is not used: it pins ``opencv-python`` and clashes with ``opencv-contrib``, and its
fixed parameters assume 224-px images; the magnitudes below follow ImageNet-C where one exists (noise, blur,
JPEG, contrast, brightness) and are expressed relative to the image size so 8-px digits and 32-px CIFAR
images get comparable distortions.

Geometric warps fill uncovered pixels with the image's own border colour (the median of its outermost
pixels), so MNIST gets black and natural images a plausible background instead of black corners.

``clutter`` (background clutter): when the image has a uniform background (its border is nearly constant, as
for digits), the foreground is separated with Otsu's threshold and only the background is replaced by a
blend with a random multi-scale noise texture; otherwise (natural images, no separable foreground) the
texture is alpha-blended over the whole image — a documented approximation. "Uniform" means at least
60 % of the border pixels lie within 24 grey levels of the border's median.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

SEVERITIES = (1, 2, 3, 4, 5)

# name -> (family of nuisance, per-severity magnitudes)
_LEVELS: dict[str, tuple[str, tuple[float, ...]]] = {
    "rotation": ("viewpoint", (10, 20, 30, 45, 60)),                 # degrees, random sign
    "affine": ("viewpoint", (0.05, 0.10, 0.15, 0.20, 0.25)),         # shear (x40 deg) + shift (x image size)
    "perspective": ("viewpoint", (0.1, 0.2, 0.3, 0.4, 0.5)),         # corner displacement / half-size
    "brightness": ("illumination", (0.1, 0.2, 0.3, 0.4, 0.5)),       # additive, fraction of 255 (ImageNet-C)
    "contrast": ("illumination", (0.6, 0.45, 0.3, 0.2, 0.1)),        # contrast factor (1 = unchanged)
    "gamma": ("illumination", (1.5, 2.0, 2.5, 3.2, 4.0)),            # gamma > 1 darkens mid-tones
    "zoom-out": ("scale", (0.85, 0.7, 0.6, 0.5, 0.4)),               # down-scaling, re-centred
    "zoom-in": ("scale", (1.15, 1.3, 1.45, 1.6, 1.8)),               # up-scaling, re-centred (crops)
    "elastic": ("deformation", (0.6, 0.9, 1.2, 1.6, 2.0)),           # alpha / image size, sigma = 0.14*size
    "occlusion": ("occlusion", (0.05, 0.10, 0.15, 0.25, 0.35)),      # erased area fraction
    "clutter": ("clutter", (0.15, 0.3, 0.45, 0.6, 0.75)),            # texture blend strength
    "gaussian-noise": ("noise", (0.08, 0.12, 0.18, 0.26, 0.38)),     # sigma in [0, 1] units (ImageNet-C)
    "blur": ("blur", (0.6, 1.0, 1.4, 1.9, 2.5)),                     # gaussian sigma x max(size/32, 0.75)
    "jpeg": ("compression", (50, 30, 20, 12, 7)),                    # JPEG quality
}

CORRUPTIONS: tuple[str, ...] = tuple(_LEVELS)


def nuisance_family(name: str) -> str:
    return _LEVELS[name][0]


def level(name: str, severity: int) -> float:
    """The magnitude used for ``name`` at ``severity`` (1..5)."""
    return _LEVELS[name][1][severity - 1]


def _border_fill(img: torch.Tensor) -> list[float]:
    """Median colour of the outermost pixels of a ``(C, H, W)`` image: the fill for warped-in regions."""
    border = torch.cat([img[:, 0, :], img[:, -1, :], img[:, :, 0], img[:, :, -1]], dim=1).float()
    return border.median(dim=1).values.tolist()


def _per_image(X: torch.Tensor, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    return torch.stack([fn(X[i], i) for i in range(len(X))]) if len(X) else X


def _rotation(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    ang = level("rotation", s) * rng.choice([-1.0, 1.0], len(X)) * rng.uniform(0.8, 1.0, len(X))
    return _per_image(X, lambda x, i: TF.rotate(x, float(ang[i]), TF.InterpolationMode.BILINEAR,
                                                fill=_border_fill(x)))


def _affine(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    m, (h, w) = level("affine", s), X.shape[-2:]
    shear = rng.uniform(-1, 1, (len(X), 2)) * 40 * m
    shift = rng.uniform(-1, 1, (len(X), 2)) * m * np.array([w, h])
    return _per_image(X, lambda x, i: TF.affine(
        x, angle=0.0, translate=[int(round(shift[i, 0])), int(round(shift[i, 1]))], scale=1.0,
        shear=[float(shear[i, 0]), float(shear[i, 1])], interpolation=TF.InterpolationMode.BILINEAR,
        fill=_border_fill(x)))


def _perspective(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    d, (h, w) = level("perspective", s), X.shape[-2:]
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    # Like torchvision's RandomPerspective: each corner moves inwards by up to d * half the side.
    # (at least one pixel, so tiny images are warped at every severity)
    jit = rng.uniform(0, 1, (len(X), 4, 2)) * np.maximum(d * np.array([w / 2, h / 2]), 1.0)
    sign = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])

    def warp(x: torch.Tensor, i: int) -> torch.Tensor:
        end = (np.array(start) + sign * jit[i]).round().astype(int).tolist()
        return TF.perspective(x, start, end, TF.InterpolationMode.BILINEAR, fill=_border_fill(x))

    return _per_image(X, warp)


def _zoom(name: str) -> Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]:
    def fn(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
        scale = level(name, s)  # about the image centre, so the object stays centred
        return _per_image(X, lambda x, i: TF.affine(x, angle=0.0, translate=[0, 0], scale=scale, shear=[0.0],
                                                    interpolation=TF.InterpolationMode.BILINEAR,
                                                    fill=_border_fill(x)))
    return fn


def _brightness(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    return (X.float() + 255 * level("brightness", s)).clamp_(0, 255).round_().to(torch.uint8)


def _contrast(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    return TF.adjust_contrast(X, level("contrast", s))


def _gamma(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    return TF.adjust_gamma(X, level("gamma", s))


def _elastic(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    import cv2

    h, w = X.shape[-2:]
    alpha, sigma = level("elastic", s) * h, 0.14 * h

    def warp(x: torch.Tensor, i: int) -> torch.Tensor:
        # Displacement built as torchvision's ElasticTransform does (uniform noise, Gaussian-smoothed, scaled
        # by alpha / size), but drawn from our seeded generator so it is reproducible per seed.
        d = rng.uniform(-1, 1, (2, h, w)).astype(np.float32)
        d = np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in d]) * (alpha / np.array([w, h]))[:, None, None]
        disp = torch.from_numpy(d.transpose(1, 2, 0)[None].astype(np.float32))
        return TF.elastic_transform(x, disp, TF.InterpolationMode.BILINEAR, fill=_border_fill(x))

    return _per_image(X, warp)


def _occlusion(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    frac, (h, w) = level("occlusion", s), X.shape[-2:]
    area = frac * h * w * rng.uniform(0.8, 1.2, len(X))
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), len(X)))
    eh = np.clip(np.round(np.sqrt(area * aspect)), 1, h).astype(int)
    ew = np.clip(np.round(np.sqrt(area / aspect)), 1, w).astype(int)
    top = (rng.uniform(0, 1, len(X)) * (h - eh + 1)).astype(int)
    left = (rng.uniform(0, 1, len(X)) * (w - ew + 1)).astype(int)
    grey = rng.integers(0, 256, len(X))  # a flat occluder of random grey level
    return _per_image(X, lambda x, i: TF.erase(x, int(top[i]), int(left[i]), int(eh[i]), int(ew[i]),
                                               torch.tensor(int(grey[i]), dtype=torch.uint8)))


def texture(h: int, w: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """A random multi-scale noise texture in [0, 1], shaped ``(c, h, w)``."""
    import cv2

    out = np.zeros((c, h, w), np.float32)
    for octave in (2, 4, 8):
        small = rng.uniform(0, 1, (c, max(2, h // octave), max(2, w // octave))).astype(np.float32)
        out += np.stack([cv2.resize(ch, (w, h), interpolation=cv2.INTER_CUBIC) for ch in small]) / octave
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _clutter(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    from skimage.filters import threshold_otsu

    a, (n, c, h, w) = level("clutter", s), X.shape
    out = X.clone()
    for i in range(n):
        x = X[i].float()
        tex = torch.from_numpy(texture(h, w, c, rng)) * 255
        grey = x.mean(0)
        border = torch.cat([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        # Uniform background (most border pixels share one grey level, e.g. digits): separate the foreground.
        uniform = float(((border - border.median()).abs() <= 24).float().mean()) >= 0.6
        if uniform and float(grey.max() - grey.min()) > 32:
            thr = threshold_otsu(grey.numpy())
            bright_bg = float(border.median()) > thr
            fg = (grey <= thr) if bright_bg else (grey > thr)
            blended = (1 - a) * x + a * tex
            out[i] = torch.where(fg[None], x, blended).round().clamp(0, 255).to(torch.uint8)
        else:  # no separable foreground: blend the texture over the whole image (approximation)
            out[i] = ((1 - 0.6 * a) * x + 0.6 * a * tex).round().clamp(0, 255).to(torch.uint8)
    return out


def _gaussian_noise(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    noise = torch.from_numpy(rng.normal(0, level("gaussian-noise", s) * 255, tuple(X.shape)).astype(np.float32))
    return (X.float() + noise).round_().clamp_(0, 255).to(torch.uint8)


def _blur(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    sigma = level("blur", s) * max(X.shape[-2] / 32, 0.75)  # floor: sub-0.5-px blurs are no-ops on 8-px digits
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return TF.gaussian_blur(X, [k, k], [sigma, sigma])


def _jpeg(X: torch.Tensor, s: int, rng: np.random.Generator) -> torch.Tensor:
    return TF.jpeg(X, int(level("jpeg", s))) if len(X) else X


_FNS: dict[str, Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]] = {
    "rotation": _rotation, "affine": _affine, "perspective": _perspective, "brightness": _brightness,
    "contrast": _contrast, "gamma": _gamma, "zoom-out": _zoom("zoom-out"), "zoom-in": _zoom("zoom-in"),
    "elastic": _elastic, "occlusion": _occlusion, "clutter": _clutter, "gaussian-noise": _gaussian_noise,
    "blur": _blur, "jpeg": _jpeg,
}
assert set(_FNS) == set(_LEVELS)


def corrupt(X: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``X`` (uint8, ``(N, H, W, C)``) corrupted by ``name`` at ``severity`` (0 = identity, 1..5)."""
    if name not in _FNS:
        raise KeyError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    X = np.asarray(X)
    if X.ndim != 4 or X.dtype != np.uint8:
        raise ValueError(f"expected uint8 images shaped (N, H, W, C), got {X.dtype} {X.shape}")
    if not 0 <= severity <= 5:
        raise ValueError(f"severity must be 0..5, got {severity}")
    if severity == 0:
        return X.copy()
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), severity])
    t = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        out = _FNS[name](t, severity, rng)
    return np.ascontiguousarray(out.numpy().transpose(0, 2, 3, 1)).astype(np.uint8, copy=False)
