"""Datasets by name, one decoded-array cache, and the split contract.

``load_dataset(spec)`` returns a :class:`Dataset`; ``prepare(spec, SplitOptions(...))`` returns the
train / validation / test arrays every pipeline sees, with a hash proving which images they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets import embedded, torchvision_sets  # noqa: F401  (registers the named datasets)
from bench.datasets.base import Dataset, dataset_info, dataset_names, register_dataset
from bench.datasets.folder import load_folder
from bench.datasets.splits import Split, SplitOptions, make_split, split_hash
from bench.errors import DatasetError
from cvbench_util.digest import array_digest
from cvbench_util.files import atomic_write

__all__ = ["Dataset", "SplitData", "SplitOptions", "dataset_names", "default_data_dir", "load_dataset",
           "prepare", "register_dataset"]

CACHE_VERSION = "1"


def default_data_dir() -> Path:
    """``CVBENCH_DATA`` or ``~/.cache/cvbench/data`` (XDG_CACHE_HOME respected)."""
    if os.environ.get("CVBENCH_DATA"):
        return Path(os.environ["CVBENCH_DATA"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cvbench" / "data"


def _source_key(spec: str, image_size: int | None) -> dict[str, Any]:
    key: dict[str, Any] = {"spec": spec, "image_size": image_size, "v": CACHE_VERSION}
    if spec.startswith("folder:"):
        p = Path(spec[len("folder:"):]).expanduser().resolve()
        key["path"] = str(p)
        if p.is_file():
            st = p.stat()
            key["stat"] = [st.st_size, st.st_mtime_ns]
        elif p.is_dir():
            # Directory fingerprint: every file's relative path, size and mtime.
            h = hashlib.blake2b(digest_size=16)
            for r, _, files in sorted(os.walk(p)):
                for f in sorted(files):
                    st = (Path(r) / f).lstat()  # lstat: a dangling link must not break the fingerprint
                    h.update(f"{Path(r, f).relative_to(p)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
            key["tree"] = h.hexdigest()
    return key


def _digest(ds: Dataset) -> str:
    parts = [array_digest(ds.X_train), array_digest(ds.y_train)]
    if ds.X_test is not None:
        parts += [array_digest(ds.X_test), array_digest(ds.y_test)]
    return hashlib.sha256("|".join(parts + ds.class_names).encode()).hexdigest()[:16]


def _save(ds: Dataset, path: Path) -> None:
    """Write the decoded arrays as ``.npy`` files in a temporary directory, then rename it into place."""
    with atomic_write(path, directory=True) as tmp:
        for k in ("X_train", "y_train", "X_test", "y_test"):
            if getattr(ds, k) is not None:
                np.save(tmp / f"{k}.npy", getattr(ds, k), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({"name": ds.name, "class_names": ds.class_names,
                                                   "meta": ds.meta}, default=str))


def _load_cached(path: Path, mmap: bool) -> Dataset | None:
    try:
        info = json.loads((path / "meta.json").read_text())
        arrs = {}
        for k in ("X_train", "y_train", "X_test", "y_test"):
            f = path / f"{k}.npy"
            arrs[k] = np.load(f, mmap_mode="r" if mmap and k.startswith("X") else None,
                              allow_pickle=False) if f.exists() else None
        return Dataset(info["name"], arrs["X_train"], arrs["y_train"], arrs["X_test"], arrs["y_test"],
                       info["class_names"], info["meta"])
    except (OSError, ValueError, KeyError):
        return None


def folder_options(spec: str) -> tuple[str, dict[str, Any]]:
    """``folder:PATH?hflip=true`` → (``folder:PATH``, ``{"allow_hflip": True}``). A folder's images say nothing
    about whether a horizontal flip preserves their labels (it does for CIFAR-10 or photos, not for digits or
    text), so flips stay off unless the spec declares them."""
    if not spec.startswith("folder:") or "?" not in spec:
        return spec, {}
    base, _, query = spec.rpartition("?")
    opts: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        k, _, v = item.partition("=")
        if k != "hflip" or v.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise DatasetError(f"{spec!r}: unknown folder option {item!r}; the one option is hflip=true|false "
                               "(whether a horizontal flip preserves the labels), e.g. folder:PATH?hflip=true")
        opts["allow_hflip"] = v.lower() in ("true", "1", "yes")
    return base, opts


def load_dataset(spec: str, *, data_dir: str | os.PathLike | None = None, image_size: int | None = None,
                 cache_dir: str | os.PathLike | None = None, mmap: bool = False) -> Dataset:
    """Load ``spec`` (a registered name or ``folder:PATH[?hflip=true]``), through the decoded-array cache when
    given."""
    if not spec.startswith("folder:"):
        dataset_info(spec)  # unknown names fail fast, with suggestions
    source, folder_opts = folder_options(spec)  # the options change no pixel: one decoded cache for all
    cache_path = None
    if cache_dir is not None:
        key = _source_key(source, image_size)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in source)[-60:]
        cache_path = Path(cache_dir) / f"{safe}-{digest}"
        if (cache_path / "meta.json").exists():
            ds = _load_cached(cache_path, mmap)
            if ds is not None:
                ds.meta["cache"] = "hit"
                if spec.startswith("folder:"):
                    ds.name = spec
                    ds.meta["allow_hflip"] = folder_opts.get("allow_hflip", False)
                return ds
    t0 = time.perf_counter()
    if spec.startswith("folder:"):
        ds = load_folder(source[len("folder:"):], image_size=image_size)
        ds.name = spec
        ds.meta["allow_hflip"] = folder_opts.get("allow_hflip", False)
    else:
        info = dataset_info(spec)
        ds = info["loader"](data_dir=Path(data_dir) if data_dir else default_data_dir(), image_size=image_size)
        ds.meta["allow_hflip"] = info["allow_hflip"]
        if image_size is not None:
            from bench.datasets.folder import _fit

            for k in ("X_train", "X_test"):
                X = getattr(ds, k)
                if X is not None and X.shape[1:3] != (image_size, image_size):
                    setattr(ds, k, np.stack([_fit(x, (image_size, image_size)).reshape(image_size, image_size, -1)
                                             for x in X]))
            ds.meta["size_policy"] = f"shorter side to {image_size} then centre crop"
    ds.meta.setdefault("size_policy", "native")
    ds.meta["decode_time_s"] = time.perf_counter() - t0
    ds.meta["digest"] = _digest(ds)
    if cache_path is not None:
        try:
            _save(ds, cache_path)
        except OSError as e:
            raise DatasetError(f"cannot write the dataset cache at {cache_path}: {e}. "
                               "Free disk space or point CVBENCH_RESULTS at a writable directory.") from None
        ds.meta["cache"] = "miss"
        if mmap:
            return _load_cached(cache_path, mmap) or ds
    return ds


@dataclass
class SplitData:
    """The arrays one job sees, plus what must be logged to prove it."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    split: Split
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def split_hash(self) -> str:
        return self.meta["split_hash"]


def _drop_small_classes(ds: Dataset, opts: SplitOptions) -> Dataset:
    """Remove classes with too few images for the split (with a message naming them); relabel the rest."""
    if ds.n_classes < 2:
        raise DatasetError(f"{ds.name}: {ds.n_classes} class(es) ({', '.join(ds.class_names) or 'none'}); a "
                           "classification benchmark needs at least two: add a folder per class")
    own_test = ds.y_test is not None
    need = 2 if own_test or opts.test_rest else 3
    counts = np.bincount(ds.y_train, minlength=ds.n_classes)
    small = [c for c in range(ds.n_classes) if counts[c] < need]
    if not small:
        return ds
    keep = [c for c in range(ds.n_classes) if c not in small]
    msgs = [f"class {ds.class_names[c]!r} has {counts[c]} training image(s) but the train/validation"
            f"{'' if own_test else '/test'} split needs at least {need}: class dropped" for c in small]
    for m in msgs:
        print(f"warning: {ds.name}: {m}", file=sys.stderr)
    if len(keep) < 2:
        raise DatasetError(f"{ds.name}: fewer than two classes have enough images ({'; '.join(msgs)}); "
                           f"add images so every class has at least {need}.")
    remap = np.full(ds.n_classes, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    tr = np.isin(ds.y_train, keep)
    X_te, y_te = ds.X_test, ds.y_test
    if own_test:
        te = np.isin(ds.y_test, keep)
        X_te, y_te = ds.X_test[te], remap[ds.y_test[te]]
    meta = dict(ds.meta)
    meta["dropped_classes"] = msgs
    meta["skipped"] = list(meta.get("skipped") or []) + [(ds.class_names[c], m) for c, m in zip(small, msgs)]
    return Dataset(ds.name, ds.X_train[tr], remap[ds.y_train[tr]], X_te, y_te,
                   [ds.class_names[c] for c in keep], meta)


def prepare(spec: str, opts: SplitOptions | None = None, **load_kw: Any) -> SplitData:
    """Load ``spec`` and apply the split contract; the split hash covers indices and image content."""
    opts = opts or SplitOptions()
    t0 = time.perf_counter()
    ds = _drop_small_classes(load_dataset(spec, **load_kw), opts)
    load_time = time.perf_counter() - t0
    sp = make_split(ds.y_train, ds.y_test, opts, ds.class_names)
    Xt, yt = (ds.X_train, ds.y_train) if sp.test_from_pool else (ds.X_test, ds.y_test)
    for part, idx in (("training", sp.train), ("validation", sp.val), ("test", sp.test)):
        if 0 < len(idx) < ds.n_classes:
            print(f"warning: {ds.name}: the {part} split has {len(idx)} image(s) for {ds.n_classes} classes, so "
                  "some classes are absent from it", file=sys.stderr)
    meta = dict(ds.meta)
    meta.update(load_time_s=load_time, n_classes=ds.n_classes,
                split_hash=split_hash(sp, ds.meta.get("digest", "")))
    return SplitData(np.asarray(ds.X_train[sp.train]), ds.y_train[sp.train],
                     np.asarray(ds.X_train[sp.val]), ds.y_train[sp.val],
                     np.asarray(Xt[sp.test]), yt[sp.test], ds.class_names, sp, meta)
