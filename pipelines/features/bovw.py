"""Bag of visual words over local descriptors (SIFT, ORB, AKAZE; SURF where OpenCV has it).

Two stages, cached separately:

* :class:`LocalDescriptors` — stateless and disk-cached like every :class:`~pipelines.base.ImageFeatures`:
  OpenCV keypoints (DoG / FAST / AKAZE detectors and/or a dense grid) and their descriptors.
* :class:`BoVWFeatures` — stateful: a MiniBatchKMeans vocabulary fitted on a seeded sample of the TRAINING
  images' descriptors only, then visual-word histograms (L1, Hellinger or tf-idf), optionally over a spatial
  pyramid (Lazebnik, Schmid & Ponce 2006). The vocabulary is cached keyed by the training images and the
  parameters, the encodings by the vocabulary and the images, so the five classifiers on one feature
  extract, cluster and encode once; a run that reuses them reports the original times.
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin

from pipelines.base import ImageFeatures, check_images
from pipelines.cache import array_digest, cached_array
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
    rows[:, :4] = np.frombuffer(np.full(n, idx, dtype="<u4").tobytes(), dtype=np.uint8).reshape(n, 4)
    pts = np.array([kp.pt for kp in kps], dtype=np.float32).reshape(n, 2)
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
    points per image (strongest first).
    """

    def __init__(self, method: str = "sift", detector: str = "both", step: int = 8,
                 sizes: tuple[float, ...] = (8.0, 16.0), min_size: int = 64, max_keypoints: int = 100):
        self.method = method
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.min_size = min_size
        self.max_keypoints = max_keypoints

    def _extractor(self) -> Any:
        if self.method == "sift":
            return cv2.SIFT_create(self.max_keypoints, 3, 0.04, 10, 1.6, cv2.CV_8U)
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


class BoVWFeatures(TransformerMixin, BaseEstimator):
    """Visual-word histograms over :class:`LocalDescriptors`, vocabulary fitted on training images only.

    ``vocab_size`` words, learnt by MiniBatchKMeans (``seed``) on at most ``sample`` training descriptors
    drawn with a seeded generator. ``encoding``: ``l1`` (word frequencies), ``hellinger`` (their square
    root: a linear model on it acts like a Hellinger kernel) or ``tfidf`` (counts × training-set idf, L2).
    ``pyramid`` lists grid sizes (``(1, 2, 4)``: 1×1 + 2×2 + 4×4 cells), weighted as in Lazebnik et al.
    Images without any descriptor get an all-zero row; ``n_empty_`` counts them in the last ``transform``.
    """

    reports_empty_images = True

    def __init__(self, method: str = "sift", detector: str = "both", step: int = 8,
                 sizes: tuple[float, ...] = (8.0, 16.0), min_size: int = 64, max_keypoints: int = 100,
                 vocab_size: int = 512, encoding: str = "hellinger", pyramid: tuple[int, ...] = (1, 2),
                 sample: int = 200_000, seed: int = 0):
        self.method = method
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.min_size = min_size
        self.max_keypoints = max_keypoints
        self.vocab_size = vocab_size
        self.encoding = encoding
        self.pyramid = pyramid
        self.sample = sample
        self.seed = seed

    # -- helpers -------------------------------------------------------------------------------------------
    def descriptors(self) -> LocalDescriptors:
        return LocalDescriptors(self.method, self.detector, self.step, self.sizes, self.min_size,
                                self.max_keypoints)

    @property
    def binary(self) -> bool:
        return self.method in ("orb", "akaze")

    def _packed(self, X: np.ndarray, keep: bool = False) -> np.ndarray:
        """Descriptors of ``X``; ``fit`` keeps the training set's in memory for the ``transform`` that
        follows it (so they are not extracted twice when no disk cache is set), which then drops them."""
        memo, self._memo = getattr(self, "_memo", None), None
        if memo is not None and memo[0] == array_digest(X):
            return memo[1]
        packed = self.descriptors().transform(X)
        if keep:
            self._memo = (array_digest(X), packed)
        return packed

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_memo", None)  # never pickle descriptors with the model
        return state

    def _words(self, vecs: np.ndarray) -> np.ndarray:
        out = np.empty(len(vecs), dtype=np.int64)
        step = 65536
        for a in range(0, len(vecs), step):
            out[a:a + step] = pairwise_distances_argmin(vecs[a:a + step], self.vocabulary_)
        return out

    def _counts(self, n: int, idx: np.ndarray, xy: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Weighted word counts per image, per pyramid cell (levels concatenated)."""
        k = self.vocab_size
        levels = sorted(self.pyramid)
        L = len(levels) - 1
        blocks = []
        for lev, g in enumerate(levels):
            weight = 1.0 / 2 ** L if lev == 0 else 1.0 / 2 ** (L - lev + 1)
            cx = np.minimum((xy[:, 0] * g).astype(np.int64), g - 1)
            cy = np.minimum((xy[:, 1] * g).astype(np.int64), g - 1)
            flat = (idx * (g * g) + cy * g + cx) * k + words
            c = np.bincount(flat, minlength=n * g * g * k).astype(np.float32).reshape(n, g * g * k)
            blocks.append(c * (weight if L > 0 else 1.0))
        return np.concatenate(blocks, axis=1)

    def _encode_counts(self, C: np.ndarray) -> np.ndarray:
        if self.encoding == "tfidf":
            C = C * np.tile(self.idf_, C.shape[1] // self.vocab_size)[None, :]
            return C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
        C = C / np.maximum(C.sum(axis=1, keepdims=True), 1e-12)
        if self.encoding == "hellinger":
            return np.sqrt(C)
        if self.encoding == "l1":
            return C
        raise ValueError(f"encoding must be l1, hellinger or tfidf, got {self.encoding!r}")

    def _encode(self, packed: np.ndarray, n: int) -> np.ndarray:
        idx, xy, desc = unpack(packed)
        words = self._words(descriptor_vectors(desc, self.binary)) if len(idx) else idx
        return self._encode_counts(self._counts(n, idx, xy, words))

    def _fit_vocabulary(self, X: np.ndarray) -> np.ndarray:
        packed = self._packed(X, keep=True)
        idx, _, desc = unpack(packed)
        if len(idx) < self.vocab_size:
            raise ValueError(f"only {len(idx)} training descriptors for a {self.vocab_size}-word vocabulary; "
                             "lower vocab_size or use a denser grid")
        rng = np.random.default_rng(self.seed)
        take = np.sort(rng.choice(len(idx), size=min(self.sample, len(idx)), replace=False))
        vecs = descriptor_vectors(desc[take], self.binary)
        km = MiniBatchKMeans(n_clusters=self.vocab_size, batch_size=4096, n_init=1, max_iter=50,
                             init_size=min(len(vecs), 3 * self.vocab_size + 4096), max_no_improvement=5,
                             random_state=self.seed)
        km.fit(vecs)
        centers = km.cluster_centers_.astype(np.float32)
        # document frequency of each word over the training images, for tf-idf
        self.vocabulary_ = centers
        words = self._words(descriptor_vectors(desc, self.binary))
        df = np.zeros(self.vocab_size, dtype=np.float64)
        pairs = np.unique(idx * self.vocab_size + words)
        np.add.at(df, pairs % self.vocab_size, 1.0)
        idf = np.log((len(X) + 1.0) / (df + 1.0)) + 1.0
        return np.concatenate([centers, idf.astype(np.float32)[:, None]], axis=1)

    # -- estimator API ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BoVWFeatures:
        """Learn the vocabulary from the descriptors of ``X`` (the training images) only."""
        X = check_images(X)
        t0 = time.perf_counter()
        res = cached_array("BoVWVocabulary", self.get_params(), X, lambda: self._fit_vocabulary(X))
        self.vocabulary_ = np.ascontiguousarray(res.value[:, :-1])
        self.idf_ = res.value[:, -1].astype(np.float32)
        self.fit_time_s_, self.fit_cached_ = res.compute_time_s, res.cached
        self.fit_wall_s_ = time.perf_counter() - t0
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = check_images(X)
        params = {**self.get_params(), "vocabulary": array_digest(self.vocabulary_)}
        res = cached_array("BoVWEncoding", params, X, lambda: self._encode(self._packed(X), len(X)))
        self._memo = None
        self.last_time_s_, self.last_cached_ = res.compute_time_s, res.cached
        self.n_empty_ = int((~res.value.any(axis=1)).sum())
        return res.value
