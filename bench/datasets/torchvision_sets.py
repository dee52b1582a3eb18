"""Standard datasets downloaded by torchvision into the data directory (``--data-dir`` / ``CVBENCH_DATA``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets.base import Dataset, register_dataset
from bench.errors import DatasetError

# name -> (torchvision class, files torchvision expects under data_dir, split keyword, allow_hflip)
_SOURCES: dict[str, tuple[str, list[str], str, bool]] = {
    "mnist": ("MNIST", ["MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte"], "train", False),
    "fashion-mnist": ("FashionMNIST", ["FashionMNIST/raw/train-images-idx3-ubyte",
                                       "FashionMNIST/raw/t10k-images-idx3-ubyte"], "train", True),
    "cifar10": ("CIFAR10", ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"], "train", True),
    "cifar100": ("CIFAR100", ["cifar-100-python/train", "cifar-100-python/test"], "train", True),
    "svhn": ("SVHN", ["train_32x32.mat", "test_32x32.mat"], "split", False),
    "stl10": ("STL10", ["stl10_binary/train_X.bin", "stl10_binary/test_X.bin"], "split", True),
}


def _instantiate(cls: Any, root: Path, split_kw: str, train: bool, download: bool) -> Any:
    if split_kw == "train":
        return cls(str(root), train=train, download=download)
    return cls(str(root), split="train" if train else "test", download=download)


def _to_arrays(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data
    data = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = ds.labels
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    if data.ndim == 3:  # (N, H, W) grayscale
        data = data[..., None]
    elif data.shape[1] in (1, 3) and data.shape[-1] not in (1, 3):  # (N, C, H, W) as in SVHN / STL10
        data = data.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data, dtype=np.uint8), labels.astype(np.int64)


def _make_loader(name: str, cls_name: str, files: list[str], split_kw: str):
    def load(data_dir: Path, image_size: int | None = None) -> Dataset:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        root = Path(data_dir)
        try:
            root.mkdir(parents=True, exist_ok=True)
            have = all((root / f).exists() for f in files)
            old = socket.getdefaulttimeout()
            socket.setdefaulttimeout(10)  # offline: fail within seconds, never hang
            try:
                tr = _instantiate(cls, root, split_kw, True, download=not have)
                te = _instantiate(cls, root, split_kw, False, download=not have)
            finally:
                socket.setdefaulttimeout(old)
        except (RuntimeError, OSError, ValueError) as e:
            expected = "\n  ".join(str(root / f) for f in files)
            raise DatasetError(
                f"dataset {name!r} is not in {root} and could not be downloaded ({str(e).splitlines()[0]}).\n"
                f"Expected files:\n  {expected}\n"
                f"Connect to the internet once, or place torchvision's {cls_name} files there "
                "(set --data-dir or CVBENCH_DATA to use another directory)."
            ) from None
        X_tr, y_tr = _to_arrays(tr)
        X_te, y_te = _to_arrays(te)
        classes = [str(c) for c in getattr(tr, "classes", sorted(set(y_tr.tolist())))]
        return Dataset(name, X_tr, y_tr, X_te, y_te, classes, {"source": f"torchvision.datasets.{cls_name}"})

    return load


for _name, (_cls, _files, _kw, _flip) in _SOURCES.items():
    register_dataset(_name, kind="download", description=f"torchvision {_cls} (downloaded once)",
                     allow_hflip=_flip)(_make_loader(_name, _cls, _files, _kw))
