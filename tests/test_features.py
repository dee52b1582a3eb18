"""Hand-crafted features on small real images: shapes, invariants, training-only vocabularies, caching."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from pipelines import cache
from pipelines.features.bovw import BoVWFeatures, LocalDescriptors, surf_unavailable_reason, unpack
from pipelines.features.colorhist import ColorHistFeatures
from pipelines.features.concat import ConcatFeatures
from pipelines.features.hog import HOGFeatures, hog_layout
from pipelines.features.lbp import LBPFeatures
from pipelines.features.pixels import PixelFeatures


def _tiles(img: np.ndarray, size: int, n: int, seed: int) -> np.ndarray:
    """``n`` random ``size × size`` crops of a real image (seeded), downscaled from 2× the size."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        y, x = rng.integers(0, h - 2 * size), rng.integers(0, w - 2 * size)
        crop = img[y:y + 2 * size, x:x + 2 * size]
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, -1))
    return np.stack(out)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return _tiles(skdata.astronaut(), 32, 24, 0)


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return _tiles(skdata.chelsea(), 32, 24, 1)


def test_pixels_shape_range_and_grayscale(astronaut):
    F = PixelFeatures().transform(astronaut)
    assert F.shape == (24, 32 * 32 * 3) and F.dtype == np.float32
    assert F.min() >= 0 and F.max() <= 1 and F.max() > 0.5
    G = PixelFeatures(size=16, grayscale=True).transform(astronaut)
    assert G.shape == (24, 16 * 16)


def test_colorhist_sums_to_one_and_reacts_to_hue_shift(astronaut):
    H = ColorHistFeatures(bins=8, space="hsv").transform(astronaut)
    assert H.shape == (24, 512)
    np.testing.assert_allclose(H.sum(axis=1), 1.0, rtol=1e-5)
    # rotate the hue by a third of the circle: the HSV histogram mass moves, the pixel count does not
    hsv = cv2.cvtColor(astronaut.reshape(-1, 32, 3), cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] = (hsv[..., 0].astype(np.int64) + 85) % 256
    shifted = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).reshape(astronaut.shape)
    Hs = ColorHistFeatures(bins=8, space="hsv").transform(shifted)
    l1 = np.abs(H - Hs).sum(axis=1)
    assert np.median(l1) > 0.5
    # a histogram ignores where colours are: a horizontal flip changes nothing (without a grid)
    np.testing.assert_allclose(ColorHistFeatures().transform(astronaut[:, :, ::-1]),
                               ColorHistFeatures().transform(astronaut), atol=1e-6)
    # with a grid, each cell is its own L1 histogram and the flip does matter
    G = ColorHistFeatures(space="rgb", grid=2).transform(astronaut)
    assert G.shape == (24, 4 * 512)
    np.testing.assert_allclose(G.reshape(24, 4, 512).sum(axis=2), 1.0, rtol=1e-5)
    assert not np.allclose(ColorHistFeatures(space="rgb", grid=2).transform(astronaut[:, :, ::-1]), G)


def test_colorhist_grayscale_is_intensity_histogram():
    gray = np.zeros((2, 8, 8, 1), np.uint8)
    gray[1, :4] = 255
    H = ColorHistFeatures(gray_bins=32).transform(gray)
    assert H.shape == (2, 32)
    np.testing.assert_allclose(H[0], np.eye(32)[0])
    np.testing.assert_allclose(H[1, [0, 31]], [0.5, 0.5])


def test_hog_edge_orientation_energy():
    # a vertical edge has a horizontal gradient: orientation 0°, i.e. the first/last of 9 unsigned bins
    vert = np.zeros((1, 32, 32, 1), np.uint8)
    vert[:, :, 16:] = 255
    horiz = np.ascontiguousarray(vert.transpose(0, 2, 1, 3))
    hv = HOGFeatures().transform(vert).reshape(-1, 9).sum(axis=0)
    hh = HOGFeatures().transform(horiz).reshape(-1, 9).sum(axis=0)
    assert (hv[0] + hv[8]) / hv.sum() > 0.95
    assert hh[4] / hh.sum() > 0.95  # horizontal edge: 90°, the middle bin


@pytest.mark.parametrize("grayscale", [False, True])
def test_hog_mosaic_equals_per_image_opencv(astronaut, grayscale):
    """The batched mosaic gives exactly what one ``HOGDescriptor.compute`` per image gives (odd batch sizes,
    1 and 3 channels, images that need resizing to the window)."""
    def per_image(X: np.ndarray, f: HOGFeatures) -> np.ndarray:
        hog, win = f.descriptor(X.shape[1], X.shape[2])
        rows = []
        for img in X:
            if img.shape[2] == 3 and grayscale:
                img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            img = cv2.resize(img, win) if (img.shape[1], img.shape[0]) != win else img
            rows.append(hog.compute(np.ascontiguousarray(img.squeeze())).ravel())
        return np.stack(rows)

    gray = np.ascontiguousarray(astronaut[..., :1])
    for X in (astronaut[:19], gray[:7], _tiles(skdata.camera()[..., None], 8, 5, 1)):
        f = HOGFeatures(grayscale=grayscale)
        np.testing.assert_allclose(f._chunk(X, tile=4), per_image(X, f), rtol=1e-5, atol=1e-6)


def test_hog_layout_from_image_size(astronaut):
    assert hog_layout(28, 28) == ((28, 28), 4)
    assert hog_layout(32, 32) == ((32, 32), 4)
    assert hog_layout(8, 8) == ((16, 16), 4)  # tiny images are upscaled to several blocks
    assert hog_layout(64, 64) == ((64, 64), 8)
    F = HOGFeatures().transform(astronaut)
    assert F.shape == (24, 7 * 7 * 4 * 9)
    assert HOGFeatures().transform(np.zeros((3, 8, 8, 1), np.uint8)).shape == (3, 3 * 3 * 36)
    # each L2-Hys block is a unit vector (or zero on a perfectly flat patch)
    norms = np.linalg.norm(F.reshape(24, 49, 36), axis=2)
    assert norms.max() < 1.0 + 1e-4 and np.mean(np.abs(norms - 1) < 0.01) > 0.9


def test_lbp_histograms(astronaut):
    F = LBPFeatures(radii=(1, 2), grid=2).transform(astronaut)
    assert F.shape == (24, 4 * 10 + 4 * 18)
    np.testing.assert_allclose(F.sum(axis=1), 8.0, rtol=1e-5)  # 2 radii × 4 cells, each L1
    flat = LBPFeatures(radii=(1,), grid=1).transform(np.full((1, 16, 16, 1), 90, np.uint8))
    # constant image: every interior pixel has the all-ones uniform code P (the border sees zero padding)
    assert flat[0].argmax() == 8 and flat[0, 8] >= 14 * 14 / 256


def test_concat_scales_parts(astronaut):
    F = ConcatFeatures([HOGFeatures(), ColorHistFeatures(space="rgb+hsv", grid=2, sqrt=True)]).transform(astronaut)
    hog, col = F[:, :1764], F[:, 1764:]
    hog_norms = np.linalg.norm(hog, axis=1)  # under 1 only where some blocks are flat
    assert hog_norms.max() < 1.001 and np.median(hog_norms) > 0.99
    np.testing.assert_allclose(np.linalg.norm(col, axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize("method,width", [("sift", 128), ("orb", 32), ("akaze", 61)])
def test_local_descriptors_layout(cat, method, width):
    kw = {"min_size": 64, "step": 8, "sizes": (16.0,)} if method != "sift" else {}
    P = LocalDescriptors(method=method, **kw).transform(cat[:6])
    idx, xy, desc = unpack(P)
    assert desc.shape[1] == width and P.dtype == np.uint8
    assert set(np.unique(idx)) == set(range(6))  # every image has descriptors, indices are image positions
    assert xy.min() >= 0 and xy.max() < 1


def test_bovw_vocabulary_sees_training_descriptors_only(cat, astronaut, monkeypatch):
    from sklearn.cluster import MiniBatchKMeans

    seen = []
    real_fit = MiniBatchKMeans.fit

    def spy(self, X, *a, **k):
        seen.append(np.asarray(X).copy())
        return real_fit(self, X, *a, **k)

    monkeypatch.setattr(MiniBatchKMeans, "fit", spy)
    bovw = BoVWFeatures(vocab_size=32, sample=500, seed=0)
    train, test = cat[:16], astronaut[:8]
    bovw.fit(train)
    train_vecs = unpack(bovw.descriptors().transform(train))[2].astype(np.float32)
    test_vecs = unpack(bovw.descriptors().transform(test))[2].astype(np.float32)
    F_test = bovw.transform(test)
    assert len(seen) == 1 and len(seen[0]) == 500  # the seeded sample; transform never refits
    train_rows = {r.tobytes() for r in train_vecs}
    test_only = {r.tobytes() for r in test_vecs} - train_rows
    assert test_only and all(r.tobytes() in train_rows for r in seen[0])
    assert F_test.shape == (8, 32 * 5)  # 1×1 + 2×2 pyramid
    np.testing.assert_allclose((F_test ** 2).sum(axis=1), 1.0, rtol=1e-4)  # Hellinger rows: unit L2


def test_bovw_encodings_and_empty_images(cat):
    blank = np.zeros((2, 32, 32, 3), np.uint8)
    X = np.concatenate([cat[:12], blank])
    for enc in ("l1", "hellinger", "tfidf"):
        b = BoVWFeatures(detector="detect", vocab_size=16, encoding=enc, pyramid=(1,)).fit(cat[:12])
        F = b.transform(X)
        assert not F[12:].any()  # DoG finds nothing on a blank image: a zero row
        empty = ~F.any(axis=1)
        assert b.n_empty_ == empty.sum() >= 2
        rows = F[~empty]
        if enc == "l1":
            np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)
            assert rows.shape == (len(rows), 16) and len(rows) >= 8
        else:
            np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-4)


def test_cached_features_identical_and_skip_work(tmp_path, astronaut, cat, monkeypatch):
    cache.set_cache_dir(tmp_path / "cache")
    fresh = HOGFeatures().transform(astronaut)
    h = HOGFeatures()
    monkeypatch.setattr(HOGFeatures, "_extract", lambda self, X: pytest.fail("cache miss"))
    again = h.transform(astronaut)
    np.testing.assert_array_equal(fresh, again)
    assert h.last_cached_ and h.last_time_s_ > 0
    # bag of words: descriptors, vocabulary and encodings all come back from the cache
    b1 = BoVWFeatures(vocab_size=16, sample=300)
    F1 = b1.fit(cat).transform(astronaut)
    monkeypatch.setattr(LocalDescriptors, "_extract", lambda self, X: pytest.fail("descriptor cache miss"))
    b2 = BoVWFeatures(vocab_size=16, sample=300)
    F2 = b2.fit(cat).transform(astronaut)
    np.testing.assert_array_equal(F1, F2)
    assert b2.fit_cached_ and b2.last_cached_
    assert b2.fit_time_s_ == pytest.approx(b1.fit_time_s_) and b2.last_time_s_ == pytest.approx(b1.last_time_s_)


def test_surf_reports_its_reason():
    from pipelines.registry import PipelineUnavailableError, create, get_spec, list_pipelines

    reason = surf_unavailable_reason()
    spec = get_spec("surf-bovw-linsvm")
    assert spec.unavailable_reason == reason
    if reason is None:  # a non-free OpenCV build: SURF is a real, available pipeline
        assert "surf-bovw-linsvm" in list_pipelines("surf-*")
        return
    assert "SURF" in reason and ("NONFREE" in reason or "contrib" in reason)
    assert "surf-bovw-linsvm" not in list_pipelines("surf-*")
    assert "surf-bovw-linsvm" in list_pipelines("surf-*", include_unavailable=True)
    with pytest.raises(PipelineUnavailableError, match="SURF"):
        create("surf-bovw-linsvm")
    with pytest.raises(RuntimeError, match="SURF"):  # never silently another descriptor
        LocalDescriptors(method="surf").transform(np.zeros((1, 32, 32, 1), np.uint8))
