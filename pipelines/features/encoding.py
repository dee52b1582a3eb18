"""Memory-bounded encodings of local descriptors: one compact vector per image, never all descriptors at once.

:class:`DescriptorEncoding` is the shared machinery behind bag of words (:mod:`pipelines.features.bovw`),
Fisher vectors and VLAD (below):

* ``fit`` walks the TRAINING images ``chunk_images`` at a time, extracting their descriptors
  (:class:`~pipelines.features.bovw.LocalDescriptors`, never written to the feature cache) and keeping a
  seeded, capped sample (``ceil(sample / n)`` per image, drawn from a generator seeded by ``(seed, image
  index)``, then at most ``sample`` overall), so the sample does not depend on the chunk size. The model
  (vocabulary, PCA + GMM …) is fitted on that sample only. Each chunk's packed descriptors are spilled to a
  temporary file, which the ``transform`` of the same images that follows reads instead of extracting
  again, then deletes.
* ``transform`` extracts and encodes chunk by chunk on all cores (threads: OpenCV and BLAS release the
  GIL); only the encodings are kept and cached (keyed by the model and the images).

Peak memory is therefore the encodings plus ``n_jobs × chunk_images`` images' descriptors, whatever the
number of images; ``chunk_images=None`` encodes everything as one chunk (the in-memory result, identical).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from cvbench_util.digest import array_digest
from cvbench_util.progress import progress, stage
from pipelines.base import check_images
from pipelines.cache import cached_array
from pipelines.features.local import HEADER, LocalDescriptors, descriptor_vectors, unpack
from pipelines.features.parallel import effective_n_jobs
from pipelines.features.registry import register_feature

DESCRIPTOR_PARAMS = ("method", "detector", "step", "sizes", "min_size", "max_keypoints", "sigma")


def sift_size(bin_px: float) -> float:
    """OpenCV keypoint size whose SIFT descriptor has spatial bins ``bin_px`` pixels wide.

    OpenCV's ``calcSIFTDescriptor`` makes each of the 4×4 bins ``3 · size / 2`` px wide (at octave 0), so a
    16×16-pixel patch (Lazebnik et al.'s 4-px bins) is ``size = 8/3``; larger sizes cost quadratically more.
    """
    return bin_px / 1.5


def pack_arrays(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Named arrays as one flat float64 array (for :func:`pipelines.cache.cached_array`, which stores one)."""
    names = sorted(arrays)
    head: list[float] = [len(names)]
    for k in names:
        head += [arrays[k].ndim, *arrays[k].shape]
    return np.concatenate([np.asarray(head, np.float64)] + [np.asarray(arrays[k], np.float64).ravel()
                                                           for k in names])


def unpack_arrays(flat: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays` (``names`` in any order: they are sorted as when packing)."""
    names = sorted(names)
    pos, shapes = 1, []
    for _ in range(int(flat[0])):
        nd = int(flat[pos])
        shapes.append(tuple(int(s) for s in flat[pos + 1:pos + 1 + nd]))
        pos += 1 + nd
    out = {}
    for k, shape in zip(names, shapes):
        size = math.prod(shape)
        out[k] = flat[pos:pos + size].reshape(shape)
        pos += size
    return out


def pyramid_cells(xy: np.ndarray, pyramid: tuple[int, ...]) -> list[np.ndarray]:
    """For each grid size ``g`` of ``pyramid``, the cell (row-major, ``0 … g²-1``) of each point ``xy``."""
    out = []
    for g in sorted(pyramid):
        cx = np.minimum((xy[:, 0] * g).astype(np.int64), g - 1)
        cy = np.minimum((xy[:, 1] * g).astype(np.int64), g - 1)
        out.append(cy * g + cx)
    return out


class _Spill:
    """Packed descriptors of one image set, one ``.npy`` per chunk in a temporary directory (deleted with it)."""

    def __init__(self, digest: str):
        self.digest = digest
        self._dir = tempfile.TemporaryDirectory(prefix="cvbench-descriptors-")

    def path(self, start: int) -> Path:
        return Path(self._dir.name) / f"{start}.npy"

    def save(self, start: int, packed: np.ndarray) -> None:
        np.save(self.path(start), packed, allow_pickle=False)

    def load(self, start: int) -> np.ndarray:
        return np.load(self.path(start), allow_pickle=False)

    def close(self) -> None:
        self._dir.cleanup()


class DescriptorEncoding(TransformerMixin, BaseEstimator):
    """Base of the local-descriptor encodings (see the module docstring). Subclasses implement
    ``_fit_model(rows) -> dict of arrays`` (``rows``: the packed training sample), ``_set_model(arrays)``
    and ``_encode_packed(packed, n) -> (n, dim) float32`` (image indices ``0 … n-1``)."""

    reports_empty_images = True
    producer = "Encoding"
    version = "1"
    model_names: tuple[str, ...] = ()
    cache_exclude: tuple[str, ...] = ("chunk_images",)

    # -- descriptors and chunks --------------------------------------------------------------------------
    def descriptors(self) -> LocalDescriptors:
        return LocalDescriptors(**{k: getattr(self, k) for k in DESCRIPTOR_PARAMS})

    @property
    def binary(self) -> bool:
        return self.method in ("orb", "akaze")

    def _key(self) -> dict[str, Any]:
        return {k: v for k, v in self.get_params().items() if k not in self.cache_exclude}

    def _bounds(self, n: int) -> list[tuple[int, int]]:
        step = self.chunk_images or max(n, 1)
        return [(a, min(a + step, n)) for a in range(0, n, step)]

    def _map(self, fn: Callable[[int, int], Any], n: int, desc: str = "encode") -> Iterator[tuple[int, int, Any]]:
        """``(a, b, fn(a, b))`` for each chunk in order, on all cores; at most a few chunks in flight; a bar
        ``<producer> <desc>`` on a terminal (:mod:`cvbench_util.progress`)."""
        bounds = self._bounds(n)
        workers = min(effective_n_jobs(), len(bounds))
        prev = cv2.getNumThreads()
        cv2.setNumThreads(1)  # we parallelise over chunks; one BLAS thread per worker, for the same reason
        bar = progress(desc=f"{self.producer} {desc}", total=len(bounds), unit="chunk")
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                if workers <= 1:
                    results: Iterator[Any] = (fn(a, b) for a, b in bounds)
                else:
                    run = Parallel(n_jobs=workers, backend="threading", return_as="generator",
                                   pre_dispatch="2*n_jobs")
                    results = run(delayed(fn)(a, b) for a, b in bounds)
                for (a, b), res in zip(bounds, results):
                    bar.update()
                    yield a, b, res
        finally:
            bar.close()
            cv2.setNumThreads(prev)

    def iter_descriptors(self, X: Any) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(a, b, packed descriptors of X[a:b])`` chunk by chunk, in order, on all cores; never all at once."""
        X = check_images(X)
        return self._map(lambda a, b: self._extract(X, a, b), len(X), "descriptors")

    def _extract(self, X: np.ndarray, a: int, b: int) -> np.ndarray:
        packed = self.descriptors()._chunk(X[a:b], a)
        return packed if packed.size else np.empty((0, HEADER), np.uint8)

    def _sample(self, packed: np.ndarray, a: int, b: int, quota: int) -> np.ndarray:
        """At most ``quota`` rows of each image (seeded by the image's index: independent of chunking)."""
        idx = unpack(packed)[0] - a
        counts = np.bincount(idx, minlength=b - a)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        take = []
        for j in np.flatnonzero(counts):
            if counts[j] <= quota:
                take.append(np.arange(starts[j], starts[j] + counts[j]))
            else:
                pick = np.random.default_rng((self.seed, a + int(j))).choice(counts[j], quota, replace=False)
                take.append(starts[j] + np.sort(pick))
        return packed[np.concatenate(take)] if take else packed[:0]

    # -- fitting ---------------------------------------------------------------------------------------------
    def _fit_all(self, X: np.ndarray) -> np.ndarray:
        quota = max(1, math.ceil(self.sample / max(len(X), 1)))
        spill = _Spill(array_digest(X))

        def task(a: int, b: int) -> np.ndarray:
            packed = self._extract(X, a, b)
            spill.save(a, packed)
            return self._sample(packed, a, b, quota)

        chunks = self._map(task, len(X), f"{self.method} descriptors (vocabulary sample)")
        rows = [r for _, _, r in chunks if len(r)]
        rows = np.concatenate(rows) if rows else np.empty((0, HEADER), np.uint8)
        if len(rows) > self.sample:
            rows = rows[np.sort(np.random.default_rng(self.seed).choice(len(rows), self.sample, replace=False))]
        self._spill, self._n_fit = spill, len(X)  # the transform of X that follows reads the spill
        try:
            with stage(f"{self.producer} fit on {len(rows):,} descriptors"):  # k-means, PCA + GMM …: one call
                return pack_arrays(self._fit_model(rows))
        except BaseException:
            self._drop_spill()
            raise

    def _fit_model(self, rows: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_model(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode_packed(self, packed: np.ndarray, n: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _drop_spill(self) -> None:
        spill, self._spill = getattr(self, "_spill", None), None
        if spill is not None:
            spill.close()

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_spill", None)  # never pickle a temporary directory with the model
        return state

    def fit(self, X: Any, y: Any = None) -> DescriptorEncoding:
        """Fit the model on a seeded sample of the descriptors of ``X`` (the training images) only."""
        X = check_images(X)
        self._drop_spill()
        res = cached_array(f"{self.producer}Model", self._key(), X, lambda: self._fit_all(X), self.version)
        self._set_model(unpack_arrays(res.value, list(self.model_names)))
        self.model_digest_ = array_digest(res.value)
        self.fit_time_s_, self.fit_cached_ = res.compute_time_s, res.cached
        return self

    # -- encoding --------------------------------------------------------------------------------------------
    def encode(self, X: np.ndarray, spill: _Spill | None = None) -> np.ndarray:
        """Encodings of ``X`` chunk by chunk (descriptors read from ``spill`` when given), no caching."""
        out: np.ndarray | None = None

        def task(a: int, b: int) -> np.ndarray:
            packed = spill.load(a) if spill is not None else self._extract(X, a, b)
            if len(packed):
                packed = packed.copy()
                packed[:, :4] = np.frombuffer((unpack(packed)[0] - a).astype("<u4").tobytes(),
                                              np.uint8).reshape(-1, 4)
            return self._encode_packed(packed, b - a)

        for a, b, rows in self._map(task, len(X)):
            if out is None:
                out = np.empty((len(X), rows.shape[1]), np.float32)
            out[a:b] = rows
        return out if out is not None else np.empty((0, 0), np.float32)

    def transform(self, X: Any) -> np.ndarray:
        X = check_images(X)
        spill, self._spill = getattr(self, "_spill", None), None
        try:
            if spill is not None and spill.digest != array_digest(X):
                spill.close()
                spill = None
            params = {**self._key(), "model": self.model_digest_}
            res = cached_array(f"{self.producer}Encoding", params, X, lambda: self.encode(X, spill), self.version)
        finally:
            if spill is not None:
                spill.close()
        self.last_time_s_, self.last_cached_ = res.compute_time_s, res.cached
        self.n_empty_ = int((~res.value.any(axis=1)).sum())
        return res.value


def _power_l2(F: np.ndarray, power: float) -> np.ndarray:
    """Signed power normalisation ``sign(z)|z|^power`` then L2 over each row (zero rows stay zero)."""
    if power != 1.0:
        F = np.sign(F) * np.abs(F) ** power
    return F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)


class _ReducedEncoding(DescriptorEncoding):
    """Descriptors RootSIFT-mapped (``root``: L1 then square root, Arandjelović & Zisserman 2012) and
    PCA-reduced to ``pca_dim`` (fitted on the training sample), optionally followed by the keypoint's
    position (``spatial_xy``: ``x - 1/2, y - 1/2`` in image-relative units, Sánchez, Perronnin & de Campos
    2012), then a codebook fitted on them. SIFT is computed at ``sigma`` = 0.8 px of blur, not OpenCV's 1.6
    (+3.9 points of 15-Scene accuracy for Fisher vectors: docs/measurements.md#dense-sift-blur)."""

    spatial_xy = False

    def _reduce(self, desc: np.ndarray) -> np.ndarray:
        V = descriptor_vectors(desc, self.binary)
        if self.root:
            V = np.sqrt(V / np.maximum(V.sum(axis=1, keepdims=True), 1e-12))
        if self.pca_dim:
            V = (V - self.pca_mean_) @ self.pca_components_.T
        return np.ascontiguousarray(V, dtype=np.float32)

    def _fit_model(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        desc = unpack(rows)[2]
        if len(desc) < self.codebook_size:
            raise ValueError(f"only {len(desc)} training descriptors for {self.codebook_size} codewords; "
                             "lower the codebook size or use a denser grid")
        width = descriptor_vectors(desc[:1], self.binary).shape[1]
        self.pca_mean_, self.pca_components_ = np.zeros(width, np.float32), np.eye(width, dtype=np.float32)
        if self.pca_dim:
            with threadpool_limits(limits=1, user_api="blas"):
                saved, self.pca_dim = self.pca_dim, None
                V = self._reduce(desc)
                self.pca_dim = saved
                pca = PCA(n_components=min(self.pca_dim, width), random_state=self.seed).fit(V)
            self.pca_mean_ = pca.mean_.astype(np.float32)
            self.pca_components_ = pca.components_.astype(np.float32)
        Z = self._points(desc, unpack(rows)[1])
        return {"pca_mean": self.pca_mean_, "pca_components": self.pca_components_, **self._fit_codebook(Z)}

    def _points(self, desc: np.ndarray, xy: np.ndarray) -> np.ndarray:
        Z = self._reduce(desc)
        return np.hstack([Z, xy - np.float32(0.5)]) if self.spatial_xy else Z

    def _set_model(self, arrays: dict[str, np.ndarray]) -> None:
        self.pca_mean_ = arrays["pca_mean"].astype(np.float32)
        self.pca_components_ = arrays["pca_components"].astype(np.float32)
        self._set_codebook(arrays)

    @property
    def codebook_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_codebook(self, Z: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_codebook(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cell_code(self, Q: np.ndarray, Z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _assign(self, Z: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode_packed(self, packed: np.ndarray, n: int) -> np.ndarray:
        """Per image: the codes of every pyramid cell side by side (an empty cell codes as zeros)."""
        idx, xy, desc = unpack(packed)
        n_cells = sum(g * g for g in self.pyramid)
        out = np.zeros((n, n_cells * self.cell_dim), np.float32)
        if len(idx) == 0:
            return out
        bounds = np.searchsorted(idx, np.arange(n + 1))
        for i in range(n):  # one image at a time: its numbers do not depend on the other images of the chunk
            s, e = bounds[i], bounds[i + 1]
            if e == s:
                continue
            Zi = self._points(desc[s:e], xy[s:e])
            Qi = self._assign(Zi)
            c0 = 0
            for g, cells in zip(sorted(self.pyramid), pyramid_cells(xy[s:e], self.pyramid)):
                for c in range(g * g):
                    m = cells == c
                    if m.any():
                        out[i, (c0 + c) * self.cell_dim:(c0 + c + 1) * self.cell_dim] = self._cell_code(Qi[m], Zi[m])
                c0 += g * g
        return _power_l2(out, self.power)


# the GMM's max_iter stays at its default: logreg, linsvm and chi2svm have a max_iter of their own
@register_feature("sift-fv", kind="encoding", description="Dense SIFT Fisher vectors", hidden=("max_iter",))
class FisherVectorFeatures(_ReducedEncoding):
    """Improved Fisher vectors (Perronnin, Sánchez & Mensink 2010) of dense local descriptors.

    Descriptors (RootSIFT when ``root``) are PCA-reduced to ``pca_dim`` (plus the 2 coordinates when
    ``spatial_xy``: D = ``pca_dim`` + 2) and modelled by a diagonal
    ``GaussianMixture`` of ``n_gaussians`` (K) components fitted on at most ``sample`` training descriptors.
    Each image (and each cell of the optional spatial ``pyramid``, e.g. ``(1, 2)``) is coded by the
    gradients with respect to the means and standard deviations, ``2·K·D`` numbers per cell, followed by
    signed power normalisation (``power``, 0.5 = square root) and L2 normalisation of the whole vector.
    """

    producer = "FisherVector"
    model_names = ("pca_mean", "pca_components", "weights", "means", "variances")

    def __init__(self, method: str = "sift", detector: str = "dense", step: int = 4,
                 sizes: tuple[float, ...] = (sift_size(4),), min_size: int = 64, max_keypoints: int = 100,
                 sigma: float = 0.8, root: bool = True, pca_dim: int | None = 64, spatial_xy: bool = True,
                 n_gaussians: int = 256,
                 pyramid: tuple[int, ...] = (1,), power: float = 0.5, sample: int = 100_000,
                 max_iter: int = 50, seed: int = 0, chunk_images: int | None = 32):
        self.method = method
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.min_size = min_size
        self.max_keypoints = max_keypoints
        self.sigma = sigma
        self.root = root
        self.pca_dim = pca_dim
        self.spatial_xy = spatial_xy
        self.n_gaussians = n_gaussians
        self.pyramid = pyramid
        self.power = power
        self.sample = sample
        self.max_iter = max_iter
        self.seed = seed
        self.chunk_images = chunk_images

    @property
    def codebook_size(self) -> int:
        return self.n_gaussians

    @property
    def cell_dim(self) -> int:
        return 2 * self.n_gaussians * self.means_.shape[1]

    def _fit_codebook(self, Z: np.ndarray) -> dict[str, np.ndarray]:
        # a variance floor of 1e-3 of the average variance: flat image regions give many identical
        # descriptors, which would otherwise collapse components (float64, as scikit-learn advises)
        Z64 = Z.astype(np.float64)
        gmm = GaussianMixture(self.n_gaussians, covariance_type="diag", init_params="k-means++",
                              max_iter=self.max_iter, reg_covar=1e-3 * float(Z64.var(axis=0).mean()) + 1e-12,
                              random_state=self.seed).fit(Z64)
        return {"weights": gmm.weights_, "means": gmm.means_, "variances": gmm.covariances_}

    def _set_codebook(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"].astype(np.float32)
        self.means_ = arrays["means"].astype(np.float32)
        self.variances_ = arrays["variances"].astype(np.float32)
        # constants of the posterior computation (see _assign)
        self._prec = 1.0 / self.variances_
        self._mu_prec = self.means_ * self._prec
        self._log_const = (np.log(self.weights_) - 0.5 * np.log(self.variances_).sum(axis=1)
                           - 0.5 * (self.means_ * self._mu_prec).sum(axis=1)
                           - 0.5 * self.means_.shape[1] * np.log(2 * np.pi)).astype(np.float32)

    def _assign(self, Z: np.ndarray) -> np.ndarray:
        """GMM posteriors ``p(k | z)``, the same as ``GaussianMixture.predict_proba`` (tested) but in float32
        and without its per-call validation: two matrix products and a softmax, written by hand for speed."""
        L = (Z @ self._mu_prec.T) - 0.5 * ((Z * Z) @ self._prec.T) + self._log_const
        L -= L.max(axis=1, keepdims=True)
        np.exp(L, out=L)
        L /= L.sum(axis=1, keepdims=True)
        return L

    def _cell_code(self, Q: np.ndarray, Z: np.ndarray) -> np.ndarray:
        # Written by hand (no maintained library computes Fisher vectors): the gradients of the average
        # log-likelihood w.r.t. the means and standard deviations, with the Fisher-information scaling
        # 1/sqrt(w_k) and 1/sqrt(2 w_k) (Sánchez et al. 2013, eqs. 16-17), from three sufficient statistics.
        T = len(Z)
        s0 = Q.sum(axis=0)[:, None]
        s1 = Q.T @ Z
        s2 = Q.T @ (Z * Z)
        mu, var, w = self.means_, self.variances_, self.weights_[:, None]
        g_mu = (s1 - mu * s0) / (np.sqrt(var) * T * np.sqrt(w))
        g_sigma = ((s2 - 2 * mu * s1 + mu * mu * s0) / var - s0) / (T * np.sqrt(2 * w))
        return np.concatenate([g_mu.ravel(), g_sigma.ravel()])


@register_feature("sift-vlad", kind="encoding", description="Dense SIFT VLAD (intra-normalised)")
class VLADFeatures(_ReducedEncoding):
    """VLAD (Jégou et al. 2010) with intra-normalisation (Arandjelović & Zisserman 2013).

    Descriptors (RootSIFT when ``root``, PCA to ``pca_dim`` unless ``None``) are assigned to the nearest of
    ``n_clusters`` (K) MiniBatchKMeans centres fitted on at most ``sample`` training descriptors; each image
    (and each cell of the optional ``pyramid``) sums the residuals ``z - c_k`` per centre, L2-normalises each
    centre's block (intra-normalisation), then the whole vector gets ``power`` and L2 normalisation.
    Dimension ``K·D`` per cell.
    """

    producer = "VLAD"
    model_names = ("pca_mean", "pca_components", "centers")

    def __init__(self, method: str = "sift", detector: str = "dense", step: int = 4,
                 sizes: tuple[float, ...] = (sift_size(4),), min_size: int = 64, max_keypoints: int = 100,
                 sigma: float = 0.8, root: bool = True, pca_dim: int | None = 64, n_clusters: int = 128,
                 pyramid: tuple[int, ...] = (1,), power: float = 1.0, sample: int = 100_000, seed: int = 0,
                 chunk_images: int | None = 32):
        self.method = method
        self.detector = detector
        self.step = step
        self.sizes = sizes
        self.min_size = min_size
        self.max_keypoints = max_keypoints
        self.sigma = sigma
        self.root = root
        self.pca_dim = pca_dim
        self.n_clusters = n_clusters
        self.pyramid = pyramid
        self.power = power
        self.sample = sample
        self.seed = seed
        self.chunk_images = chunk_images

    @property
    def codebook_size(self) -> int:
        return self.n_clusters

    @property
    def cell_dim(self) -> int:
        return self.centers_.size

    def _fit_codebook(self, Z: np.ndarray) -> dict[str, np.ndarray]:
        km = MiniBatchKMeans(n_clusters=self.n_clusters, batch_size=4096, n_init=1, max_iter=50,
                             init_size=min(len(Z), 3 * self.n_clusters + 4096), max_no_improvement=5,
                             random_state=self.seed).fit(Z)
        return {"centers": km.cluster_centers_}

    def _set_codebook(self, arrays: dict[str, np.ndarray]) -> None:
        self.centers_ = arrays["centers"].astype(np.float32)
        self._half_sq = 0.5 * (self.centers_ ** 2).sum(axis=1)

    def _assign(self, Z: np.ndarray) -> np.ndarray:
        """One-hot nearest centre (argmin of ``|c|²/2 - z·c``, the squared distance up to a constant)."""
        near = np.argmin(self._half_sq - Z @ self.centers_.T, axis=1)
        Q = np.zeros((len(Z), self.n_clusters), np.float32)
        Q[np.arange(len(Z)), near] = 1.0
        return Q

    def _cell_code(self, Q: np.ndarray, Z: np.ndarray) -> np.ndarray:
        # Written by hand (no maintained library computes VLAD): residual sums per centre, each block then
        # L2-normalised on its own (centres without descriptors stay zero).
        V = Q.T @ Z - Q.sum(axis=0)[:, None] * self.centers_
        V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        return V.ravel()
