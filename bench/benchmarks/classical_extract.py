"""Throughput of our HOG and SIFT extraction against a bare single-threaded OpenCV loop on the same images.

    python -m bench.benchmarks.classical_extract [--n 10000] [--dataset folder:../shared/data/cifar10-jpg.zip]
    python -m bench.benchmarks.classical_extract --dataset folder:../shared/data/scene15-jpg.zip --features dsift --n 1600

``dsift`` is the dense SIFT of the photo encodings (``sift-fv`` / ``sift-vlad``: 16×16-px patches every 4 px),
extracted chunk by chunk as those pipelines do (``DescriptorEncoding.iter_descriptors``).

Prints images/s for: the bare loop (one OpenCV call per image, nothing else), our transformer on one worker,
and on every core, with the ratios (goal: ≥ 0.9 on one worker, ≥ 1.8× with 2 cores). The feature cache is
off, so every number is a real extraction.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from pipelines import cache
from pipelines.features.bovw import LocalDescriptors
from pipelines.features.encoding import FisherVectorFeatures
from pipelines.features.hog import HOGFeatures
from pipelines.features.parallel import effective_n_jobs
from pipelines.features.pixels import to_gray

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpg.zip"


def _images(spec: str | None, n: int) -> tuple[str, np.ndarray]:
    from bench.datasets import SplitOptions, prepare
    from bench.execute import dataset_cache_dir

    spec = spec or (f"folder:{SHARED}" if SHARED.exists() else "mnist5k")
    d = prepare(spec, SplitOptions(), cache_dir=dataset_cache_dir())
    X = np.concatenate([d.X_train, d.X_val, d.X_test])[:n]
    return spec, np.ascontiguousarray(X)


def bare_hog(X: np.ndarray) -> np.ndarray:
    hog, win = HOGFeatures().descriptor(X.shape[1], X.shape[2])
    out = np.empty((len(X), hog.getDescriptorSize()), np.float32)
    for i, img in enumerate(X):
        im = img[..., 0] if img.shape[2] == 1 else img
        if (im.shape[1], im.shape[0]) != win:
            im = cv2.resize(im, win)
        out[i] = hog.compute(im).ravel()
    return out


def bare_sift(X: np.ndarray, ld: LocalDescriptors) -> int:
    sift = cv2.SIFT_create(ld.max_keypoints, 3, 0.04, 10, 1.6, cv2.CV_8U)
    h, w = ld.image_size(X.shape[1], X.shape[2])
    grid = [cv2.KeyPoint(float(x), float(y), float(s)) for s in ld.sizes
            for y in np.arange(ld.step / 2, h, ld.step) for x in np.arange(ld.step / 2, w, ld.step)
            ] if ld.detector in ("dense", "both") else []
    detect = ld.detector in ("detect", "both")
    total = 0
    for g in to_gray(X)[..., 0]:
        if g.shape != (h, w):
            g = cv2.resize(g, (w, h))
        kps = sorted(sift.detect(g, None), key=lambda k: -k.response)[: ld.max_keypoints] if detect else []
        _, desc = sift.compute(g, kps + grid)
        total += 0 if desc is None else len(desc)
    return total


def _rate(fn, n: int, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--n", type=int, default=10_000, help="images for HOG (SIFT uses n/4)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--features", default="hog,sift", help="comma-separated subset of hog,sift,dsift")
    a = ap.parse_args(argv)
    cache.set_cache_dir(None)
    spec, X = _images(a.dataset, a.n)
    cores = effective_n_jobs(-1)
    ld = LocalDescriptors(detector="both", step=4, sizes=(6.0, 12.0), min_size=32)  # sift-bovw defaults
    Xs = X[: max(1, len(X) // 4)]
    dense = FisherVectorFeatures()  # only its descriptor configuration and chunked extraction are used
    print(f"dataset {spec}: {X.shape[1]}×{X.shape[2]}×{X.shape[3]}, {cores} cores, OpenCV {cv2.__version__}")
    rows = []
    for name, imgs, bare, ours in (
        ("HOG", X, lambda: bare_hog(X), lambda: HOGFeatures().transform(X)),
        ("SIFT", Xs, lambda: bare_sift(Xs, ld), lambda: ld.transform(Xs)),
        ("DSIFT", Xs, lambda: bare_sift(Xs, dense.descriptors()),
         lambda: sum(len(p) for _, _, p in dense.iter_descriptors(Xs))),
    ):
        if name.lower() not in a.features.lower().split(","):
            continue
        cv2.setNumThreads(1)  # the bare loop: one core, no OpenCV thread pool
        r_bare = _rate(bare, len(imgs), a.repeat)
        os.environ["CVBENCH_N_JOBS"] = "1"
        r_one = _rate(ours, len(imgs), a.repeat)
        os.environ["CVBENCH_N_JOBS"] = "-1"
        r_all = _rate(ours, len(imgs), a.repeat)
        rows.append((name, len(imgs), r_bare, r_one, r_all))
    print(f"{'feature':8s} {'images':>7s} {'bare img/s':>11s} {'ours 1 job':>11s} {'ours all':>10s} "
          f"{'ratio 1 job':>11s} {'ratio all':>10s}   goal: >= 0.9 / >= {0.9 * cores:.1f}")
    for name, n, rb, r1, ra in rows:
        print(f"{name:8s} {n:7d} {rb:11.0f} {r1:11.0f} {ra:10.0f} {r1 / rb:11.2f} {ra / rb:10.2f}")
    # sanity: ours computes the same HOG as the bare loop
    np.testing.assert_allclose(HOGFeatures().transform(X[:64]), bare_hog(X[:64]), rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    main()
