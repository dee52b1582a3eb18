"""Bag of visual words over local descriptors (SIFT, ORB, AKAZE; SURF where OpenCV has it).

:class:`BoVWFeatures` — a MiniBatchKMeans vocabulary fitted on a seeded, capped sample of the TRAINING images'
descriptors only, then visual-word histograms (L1, Hellinger or tf-idf), optionally over a spatial pyramid
(Lazebnik, Schmid & Ponce 2006). Memory-bounded (:class:`~pipelines.features.encoding.DescriptorEncoding`):
descriptors are extracted and encoded chunk by chunk and never all held in memory; only the vocabulary and
the encodings are cached (keyed by the training images and the parameters, then by the vocabulary and the
images), so the classifiers on one feature extract, cluster and encode once; a run that reuses them
reports the original times. The descriptors themselves live in :mod:`pipelines.features.local`.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin

from pipelines.features.encoding import DescriptorEncoding, sift_size
from pipelines.features.local import (  # noqa: F401  (re-exported: the descriptors' historical home)
    HEADER,
    METHODS,
    LocalDescriptors,
    descriptor_vectors,
    pack,
    surf_unavailable_reason,
    unpack,
)
from pipelines.features.registry import register_feature

# SIFT every 4 px at two sizes on images of at least 32 px; ORB, AKAZE and SURF at the class's step on images
# of at least 64 px, one keypoint size
_UPSCALED = {"sizes": (16.0,)}


@register_feature("sift-bovw", kind="bovw", description="SIFT bag of visual words",
                  recipe={"method": "sift", "step": 4, "sizes": (6.0, 12.0), "min_size": 32})
# Lazebnik et al.'s spatial pyramid matching for photos (400 words, 1×1 + 2×2 + 4×4, L1 histograms), on a denser
# multi-scale grid than their 16-px patches every 8 px: every 4 px at 16, 24 and 32 px, σ 0.8
# (docs/measurements.md#dense-sift-grid)
@register_feature("sift-spm", kind="bovw", description="Dense SIFT words on a spatial pyramid",
                  recipe={"method": "sift", "detector": "dense", "step": 4,
                          "sizes": (sift_size(4), sift_size(6), sift_size(8)), "min_size": 32, "sigma": 0.8,
                          "vocab_size": 400, "encoding": "l1", "pyramid": (1, 2, 4)})
@register_feature("orb-bovw", kind="bovw", description="ORB bag of visual words",
                  recipe={"method": "orb", **_UPSCALED}, hidden=("sigma",))
@register_feature("akaze-bovw", kind="bovw", description="AKAZE bag of visual words",
                  recipe={"method": "akaze", **_UPSCALED}, hidden=("sigma",))
@register_feature("surf-bovw", kind="bovw", description="SURF bag of visual words",
                  recipe={"method": "surf", **_UPSCALED}, hidden=("sigma",), unavailable=surf_unavailable_reason)
class BoVWFeatures(DescriptorEncoding):
    """Visual-word histograms over :class:`LocalDescriptors`, vocabulary fitted on training images only.

    ``vocab_size`` words, learnt by MiniBatchKMeans (``seed``) on at most ``sample`` training descriptors
    drawn with a seeded generator. ``encoding``: ``l1`` (word frequencies), ``hellinger`` (their square
    root: a linear model on it acts like a Hellinger kernel) or ``tfidf`` (counts × training-set idf, L2).
    ``pyramid`` lists grid sizes (``(1, 2, 4)``: 1×1 + 2×2 + 4×4 cells), weighted as in Lazebnik et al.
    Images without any descriptor get an all-zero row; ``n_empty_`` counts them in the last ``transform``.
    ``chunk_images`` images are extracted and encoded at a time (``None``: all at once; same result).
    """

    producer = "BoVW"
    version = "2"  # 2: chunked, per-image seeded sample
    model_names = ("centers", "idf")

    def __init__(self, method: str = "sift", detector: str = "both", step: int = 8,
                 sizes: tuple[float, ...] = (8.0, 16.0), min_size: int = 64, max_keypoints: int = 100,
                 sigma: float = 1.6, vocab_size: int = 512, encoding: str = "hellinger",
                 pyramid: tuple[int, ...] = (1, 2),
                 sample: int = 200_000, seed: int = 0, chunk_images: int | None = 32):
        self.method = method
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.min_size = min_size
        self.max_keypoints = max_keypoints
        self.sigma = sigma
        self.vocab_size = vocab_size
        self.encoding = encoding
        self.pyramid = pyramid
        self.sample = sample
        self.seed = seed
        self.chunk_images = chunk_images

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

    def _encode_packed(self, packed: np.ndarray, n: int) -> np.ndarray:
        idx, xy, desc = unpack(packed)
        words = self._words(descriptor_vectors(desc, self.binary)) if len(idx) else idx
        return self._encode_counts(self._counts(n, idx, xy, words))

    def _fit_model(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        desc = unpack(rows)[2]
        if len(desc) < self.vocab_size:
            raise ValueError(f"only {len(desc)} training descriptors for a {self.vocab_size}-word vocabulary; "
                             "lower vocab_size or use a denser grid")
        vecs = descriptor_vectors(desc, self.binary)
        km = MiniBatchKMeans(n_clusters=self.vocab_size, batch_size=4096, n_init=1, max_iter=50,
                             init_size=min(len(vecs), 3 * self.vocab_size + 4096), max_no_improvement=5,
                             random_state=self.seed)
        self.vocabulary_ = km.fit(vecs).cluster_centers_.astype(np.float32)
        idf = np.ones(self.vocab_size)
        if self.encoding == "tfidf":  # document frequency of each word over all training images
            df = np.zeros(self.vocab_size)

            def task(a: int, _b: int) -> np.ndarray:
                idx, _, d = unpack(self._spill.load(a))
                return np.unique(idx * self.vocab_size + self._words(descriptor_vectors(d, self.binary)))

            for _, _, pairs in self._map(task, self._n_fit, "idf"):
                np.add.at(df, pairs % self.vocab_size, 1.0)
            idf = np.log((self._n_fit + 1.0) / (df + 1.0)) + 1.0
        return {"centers": self.vocabulary_, "idf": idf}

    def _set_model(self, arrays: dict[str, np.ndarray]) -> None:
        self.vocabulary_ = np.ascontiguousarray(arrays["centers"], dtype=np.float32)
        self.idf_ = arrays["idf"].astype(np.float32)
