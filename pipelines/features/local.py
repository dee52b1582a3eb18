"""Local descriptors (SIFT, ORB, AKAZE; SURF where OpenCV has it), packed one row per keypoint.

:class:`LocalDescriptors` — OpenCV keypoints (DoG / FAST / AKAZE detectors and/or a dense grid) and their
descriptors, as ``uint8`` rows ``[image index, x, y, descriptor]`` (:func:`pack` / :func:`unpack`). The
encodings built on them (bag of words, Fisher vectors, VLAD) are in :mod:`pipelines.features.bovw` and
:mod:`pipelines.features.encoding`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipelines.base import ImageFeatures
from pipelines.features.parallel import map_chunks
from pipelines.features.pixels import to_gray

METHODS = ("sift", "orb", "akaze", "surf")
HEADER = 6  # per-descriptor header bytes in the packed layout: image index (uint32), x, y (uint8 each)


def surf_unavailable_reason() -> str | None:
    """Why SURF cannot be used with the installed OpenCV, or ``None`` when it can."""
    xf = getattr(cv2, "xfeatures2d", None)
    if xf is None or not hasattr(xf, "SURF_create"):
        return ("OpenCV was installed without the contrib modules (cv2.xfeatures2d is missing); SURF needs "
                "opencv-contrib built with OPENCV_ENABLE_NONFREE")
    try:
        xf.SURF_create()
    except cv2.error as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
        return ("SURF is patented and excluded from the installed OpenCV build (pip wheels are built without "
                f"OPENCV_ENABLE_NONFREE): {msg}")
    return None


def _akaze_create(**kw: Any) -> Any:
    # OpenCV 5 moved AKAZE to the contrib module xfeatures2d; 4.x has it in the main namespace.
    if hasattr(cv2, "AKAZE_create"):
        return cv2.AKAZE_create(**kw)
    return cv2.xfeatures2d.AKAZE_create(**kw)


def pack(idx: int, kps: list, desc: np.ndarray | None, h: int, w: int) -> np.ndarray:
    """One image's descriptors as ``uint8`` rows: [image index (4 bytes), x, y (0–255 of the size), desc]."""
    if desc is None or len(kps) == 0:
        return np.empty((0, 0), dtype=np.uint8)
    n = len(kps)
    rows = np.empty((n, HEADER + desc.shape[1]), dtype=np.uint8)
    rows[:, :4] = np.full(n, idx, dtype="<u4").view(np.uint8).reshape(n, 4)
    pts = cv2.KeyPoint_convert(kps).reshape(n, 2)  # in C++, not a Python loop: docs/measurements.md#local-features
    rows[:, 4] = np.clip(pts[:, 0] * (256.0 / w), 0, 255).astype(np.uint8)
    rows[:, 5] = np.clip(pts[:, 1] * (256.0 / h), 0, 255).astype(np.uint8)
    rows[:, HEADER:] = np.clip(np.rint(desc), 0, 255).astype(np.uint8) if desc.dtype != np.uint8 else desc
    return rows


def unpack(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image index, xy in [0, 1), descriptor bytes)`` of a packed descriptor array."""
    if packed.size == 0:
        return np.empty(0, np.int64), np.empty((0, 2), np.float32), np.empty((0, 0), np.uint8)
    idx = np.ascontiguousarray(packed[:, :4]).view("<u4")[:, 0].astype(np.int64)
    xy = packed[:, 4:6].astype(np.float32) / 256.0
    return idx, xy, packed[:, HEADER:]


class LocalDescriptors(ImageFeatures):
    """Local descriptors of each image, packed as ``uint8`` rows (see :func:`pack`); disk-cached.

    ``method``: ``sift`` (128 bytes), ``orb`` (32 bytes, binary), ``akaze`` (61 bytes, binary MLDB),
    ``surf`` (only with a non-free OpenCV build). ``detector``: ``dense`` (a grid every ``step`` px at each
    of ``sizes`` keypoint diameters), ``detect`` (the method's own detector: DoG for SIFT, FAST for ORB,
    Hessian for AKAZE) or ``both``. Images whose shorter side is under ``min_size`` are upscaled to it
    first (small images give the detectors and descriptor patches room). ``max_keypoints`` caps detected
    points per image (strongest first). ``sigma`` (SIFT only): the Gaussian blur of the image the
    descriptors are computed on, in pixels (OpenCV's default 1.6; dense SIFT on photos is sharper and better
    at 0.8, close to Lazebnik et al.'s σ = 1 gradients: docs/measurements.md#dense-sift-blur).
    """

    def __init__(self, method: str = "sift", detector: str = "both", step: int = 8,
                 sizes: tuple[float, ...] = (8.0, 16.0), min_size: int = 64, max_keypoints: int = 100,
                 sigma: float = 1.6):
        self.method = method
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.min_size = min_size
        self.max_keypoints = max_keypoints
        self.sigma = sigma

    def _extractor(self) -> Any:
        if self.method == "sift":
            return cv2.SIFT_create(self.max_keypoints, 3, 0.04, 10, self.sigma, cv2.CV_8U)
        if self.method == "orb":
            return cv2.ORB_create(nfeatures=self.max_keypoints, scaleFactor=1.2, nlevels=4, edgeThreshold=15,
                                  patchSize=15, fastThreshold=10)
        if self.method == "akaze":
            return _akaze_create(threshold=0.0005, max_points=self.max_keypoints)
        if self.method == "surf":
            reason = surf_unavailable_reason()
            if reason:
                raise RuntimeError(reason)
            return cv2.xfeatures2d.SURF_create(400)
        raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    def _grid(self, h: int, w: int) -> list:
        half = self.step / 2.0
        ys = np.arange(half, h, self.step)
        xs = np.arange(half, w, self.step)
        return [cv2.KeyPoint(float(x), float(y), float(s)) for s in self.sizes for y in ys for x in xs]

    def image_size(self, h: int, w: int) -> tuple[int, int]:
        s = min(h, w)
        if s >= self.min_size:
            return h, w
        return int(round(h * self.min_size / s)), int(round(w * self.min_size / s))

    def _chunk(self, X: np.ndarray, offset: int) -> np.ndarray:
        ext = self._extractor()
        h, w = self.image_size(X.shape[1], X.shape[2])
        dense = self._grid(h, w) if self.detector in ("dense", "both") else []
        detect = self.detector in ("detect", "both")
        # AKAZE computes descriptors only at keypoints carrying its own octave/class id information.
        if self.method == "akaze" and dense:
            dense = [cv2.KeyPoint(k.pt[0], k.pt[1], k.size, -1, 0, 0, 0) for k in dense]
        G = to_gray(X)[..., 0]
        parts = []
        for i, g in enumerate(G):
            if (h, w) != g.shape:
                g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
            kps = list(ext.detect(g, None)) if detect else []
            if detect and len(kps) > self.max_keypoints:
                kps = sorted(kps, key=lambda k: -k.response)[: self.max_keypoints]
            kps = kps + dense
            if not kps:
                continue
            kps, desc = ext.compute(g, kps)
            p = pack(offset + i, list(kps), desc, h, w)
            if p.size:
                parts.append(p)
        return np.concatenate(parts, axis=0) if parts else np.empty((0, 0), np.uint8)

    def _extract(self, X: np.ndarray) -> np.ndarray:
        parts = [p for p in map_chunks(self._chunk, X, min_chunk=128, with_offset=True) if p.size]
        return np.concatenate(parts, axis=0) if parts else np.empty((0, HEADER), np.uint8)


def descriptor_vectors(desc: np.ndarray, binary: bool) -> np.ndarray:
    """Descriptors as float32 vectors: binary descriptors unpacked to 0/1 bits (squared L2 = Hamming)."""
    if binary:
        return np.unpackbits(desc, axis=1).astype(np.float32)
    return desc.astype(np.float32)
