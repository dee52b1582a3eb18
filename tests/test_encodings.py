"""Memory-bounded local-descriptor encodings (Fisher vectors, VLAD, bag of words), tiny images and the
histogram-intersection SVM, on small real images (scikit-image's photos)."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from pipelines import cache
from pipelines.features.bovw import BoVWFeatures
from pipelines.features.encoding import FisherVectorFeatures, VLADFeatures, sift_size
from pipelines.features.local import LocalDescriptors, unpack
from pipelines.features.tiny import TinyImageFeatures
from pipelines.intersection import IntersectionSVM, intersection_kernel

DENSE = {"detector": "dense", "step": 8, "sizes": (sift_size(4),), "min_size": 64}


def _crops(img: np.ndarray, n: int, seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    out = []
    for _ in range(n):
        y, x = rng.integers(0, g.shape[0] - 2 * size), rng.integers(0, g.shape[1] - 2 * size)
        out.append(cv2.resize(g[y:y + 2 * size, x:x + 2 * size], (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)[..., None]


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return np.concatenate([_crops(skdata.camera(), 10, 0), _crops(skdata.astronaut(), 10, 1)])


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    return np.concatenate([_crops(skdata.coffee(), 5, 2), _crops(skdata.chelsea(), 5, 3)])


def fv(**kw) -> FisherVectorFeatures:
    return FisherVectorFeatures(**{**DENSE, "n_gaussians": 4, "pca_dim": 8, "spatial_xy": False, "sample": 600,
                                   "max_iter": 200, **kw})


def vlad(**kw) -> VLADFeatures:
    return VLADFeatures(**{**DENSE, "n_clusters": 6, "pca_dim": 8, "sample": 600, **kw})


def test_fisher_vector_dimension_and_normalisation(train, test_images):
    K, D = 4, 8
    F = fv(pyramid=(1,)).fit(train).transform(test_images)
    assert F.shape == (10, 2 * K * D)
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-5)  # L2
    assert fv(pyramid=(1, 2)).fit(train).transform(test_images).shape == (10, 5 * 2 * K * D)
    assert fv(spatial_xy=True).fit(train).transform(test_images).shape == (10, 2 * K * (D + 2))  # + (x, y)
    # power normalisation: the signed square root of the plain (L2-normalised) Fisher vector, renormalised
    plain = fv(power=1.0).fit(train).transform(test_images)
    root = np.sign(plain) * np.sqrt(np.abs(plain))
    np.testing.assert_allclose(F, root / np.linalg.norm(root, axis=1, keepdims=True), atol=1e-5)


def test_fisher_vector_matches_the_formula_and_sklearn_posteriors(train):
    from sklearn.mixture import GaussianMixture

    f = fv().fit(train)
    Z = f._reduce(unpack(f.descriptors().transform(train[:1]))[2])
    gmm = GaussianMixture(4, covariance_type="diag")
    gmm.weights_, gmm.means_, gmm.covariances_ = (f.weights_.astype(np.float64), f.means_.astype(np.float64),
                                                  f.variances_.astype(np.float64))
    gmm.precisions_cholesky_ = 1 / np.sqrt(gmm.covariances_)
    Q = f._assign(Z)
    np.testing.assert_allclose(Q, gmm.predict_proba(Z), atol=1e-4)
    # the gradients, one Gaussian and one descriptor at a time (Sánchez et al. 2013, eqs. 16-17)
    T, (K, D) = len(Z), f.means_.shape
    g_mu, g_sig = np.zeros((K, D)), np.zeros((K, D))
    for k in range(K):
        sd, w = np.sqrt(f.variances_[k]), f.weights_[k]
        for t in range(T):
            u = (Z[t] - f.means_[k]) / sd
            g_mu[k] += Q[t, k] * u / (T * np.sqrt(w))
            g_sig[k] += Q[t, k] * (u ** 2 - 1) / (T * np.sqrt(2 * w))
    np.testing.assert_allclose(f._cell_code(Q, Z), np.concatenate([g_mu.ravel(), g_sig.ravel()]),
                               rtol=1e-3, atol=1e-5)


def test_vlad_is_intra_normalised(train, test_images):
    K, D = 6, 8
    F = vlad().fit(train).transform(test_images)
    assert F.shape == (10, K * D)
    norms = np.linalg.norm(F.reshape(10, K, D), axis=2)
    for row in norms:  # each centre's block has the same norm (1 before the final L2), empty ones are 0
        used = row[row > 1e-6]
        np.testing.assert_allclose(used, 1 / np.sqrt(len(used)), rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-5)


def test_gmm_and_pca_see_a_capped_sample_of_training_descriptors_only(train, test_images, monkeypatch):
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from pipelines.features.encoding import _ReducedEncoding

    seen: dict[str, list] = {"pca": [], "gmm": [], "rows": []}
    for cls, key, name in ((PCA, "pca", "fit"), (GaussianMixture, "gmm", "fit"),
                           (_ReducedEncoding, "rows", "_fit_model")):
        real = getattr(cls, name)

        def spy(self, X, *a, _real=real, _key=key, **k):
            seen[_key].append(np.asarray(X).copy())
            return _real(self, X, *a, **k)

        monkeypatch.setattr(cls, name, spy)
    f = fv(sample=500).fit(train)
    f.transform(test_images)
    assert [len(x) for x in seen["pca"]] == [len(x) for x in seen["gmm"]] == [500]  # fitted once, on the sample
    ld = f.descriptors()
    train_rows = {r.tobytes() for r in unpack(ld.transform(train))[2]}
    test_only = {r.tobytes() for r in unpack(ld.transform(test_images))[2]} - train_rows
    sample = unpack(seen["rows"][0])[2]
    assert len(sample) == 500 and test_only and all(r.tobytes() in train_rows for r in sample)
    np.testing.assert_allclose(seen["gmm"][0], f._reduce(sample), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [fv, vlad, lambda **kw: BoVWFeatures(**{**DENSE, "vocab_size": 8, "sample": 600,
                                                                         "pyramid": (1, 2), **kw})])
def test_chunked_encoding_equals_in_memory(make, train, test_images, monkeypatch):
    sizes = []
    real = LocalDescriptors._chunk
    monkeypatch.setattr(LocalDescriptors, "_chunk", lambda self, X, a: sizes.append(len(X)) or real(self, X, a))
    chunked = make(chunk_images=3).fit(train)
    Ftr, Fte = chunked.transform(train), chunked.transform(test_images)
    assert max(sizes) == 3  # descriptors never extracted for more than one chunk of images at a time
    sizes.clear()
    whole = make(chunk_images=None).fit(train)
    assert sizes == [len(train)]
    np.testing.assert_array_equal(Ftr, whole.transform(train))
    np.testing.assert_array_equal(Fte, whole.transform(test_images))
    # the training transform read fit's spilled descriptors: the same as extracting again, and then deleted
    np.testing.assert_array_equal(Ftr, chunked.encode(train))
    assert getattr(chunked, "_spill", None) is None


def test_spill_is_deleted_and_never_pickled(train):
    f = vlad(chunk_images=5).fit(train)
    spill_dir = Path(f._spill._dir.name)
    assert len(list(spill_dir.glob("*.npy"))) == 4
    clone = pickle.loads(pickle.dumps(f))
    assert getattr(clone, "_spill", None) is None
    f.transform(train[:2])  # other images: the spill is dropped, not used
    assert not spill_dir.exists()
    np.testing.assert_array_equal(clone.transform(train[:2]), f.transform(train[:2]))


def test_model_and_encodings_come_back_from_the_cache(tmp_path, train, test_images, monkeypatch):
    cache.set_cache_dir(tmp_path / "cache")
    a = fv()
    Fa = a.fit(train).transform(test_images)
    monkeypatch.setattr(LocalDescriptors, "_chunk", lambda *a, **k: pytest.fail("extracted again"))
    b = fv(chunk_images=7)  # the chunk size is not part of any cache key
    Fb = b.fit(train).transform(test_images)
    np.testing.assert_array_equal(Fa, Fb)
    assert b.fit_cached_ and b.last_cached_ and b.fit_time_s_ == pytest.approx(a.fit_time_s_)
    assert not list((tmp_path / "cache").glob("LocalDescriptors*"))  # raw descriptors are never cached


def test_tiny_images_are_zero_mean_unit_norm(train):
    F = TinyImageFeatures(size=16).transform(train)
    assert F.shape == (20, 256)
    np.testing.assert_allclose(F.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-5)
    rgb = np.repeat(train, 3, axis=3)
    assert TinyImageFeatures(size=8, grayscale=False).transform(rgb).shape == (20, 8 * 8 * 3)
    assert not TinyImageFeatures().transform(np.full((1, 32, 32, 1), 7, np.uint8)).any()  # flat: zeros


def test_intersection_svm_exact_and_approximate():
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    X = rng.gamma(1.0, 1.0, (90, 24)).astype(np.float32) + 2.0 * np.eye(3, 24)[y] * rng.random((90, 1))
    X /= X.sum(axis=1, keepdims=True)
    K = intersection_kernel(X[:7], X[5:])
    np.testing.assert_allclose(K, np.minimum(X[:7, None], X[None, 5:]).sum(axis=2), rtol=1e-6)
    exact = IntersectionSVM(C=10.0).fit(X, y)
    ref = SVC(C=10.0, kernel=lambda A, B: np.minimum(A[:, None], B[None]).sum(axis=2)).fit(X, y)
    assert exact.mode_ == "exact"
    np.testing.assert_array_equal(exact.predict(X[::3]), ref.predict(X[::3]))
    approx = IntersectionSVM(C=10.0, exact_max_n=50).fit(X, y)
    assert approx.mode_ == "chi2map" and np.mean(approx.predict(X) == y) > 0.8
    with pytest.raises(ValueError, match="non-negative"):
        IntersectionSVM().fit(X - 1, y)
