"""``folder:PATH`` — any ImageFolder tree, as a directory or a ``.zip``.

Layouts: ``train/<class>/*`` + ``test/<class>/*`` (the canonical split is kept), or ``<class>/*`` (the split
contract carves the test set). Members are read straight from the zip: nothing is extracted, so no archive
entry can write outside the cache. Junk (hidden files, ``__MACOSX/``, ``Thumbs.db``) is ignored; files that
cannot be decoded are skipped and listed with their reason.

Size policy (recorded as a param): with ``image_size=S`` every image is resized so its shorter side is ``S``
then centre-cropped to ``S × S``; without it, images keep their size when all agree, otherwise they are
brought to the most frequent size the same way (shorter side, then centre crop). Colour policy: the dataset is
grayscale (``C = 1``) when every image is grayscale, else RGB (``C = 3``); alpha is composited over black,
CMYK and palette images are converted, 16-bit images are scaled to 8 bits.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from joblib import Parallel, delayed
from PIL import Image, ImageOps

from bench.datasets.base import Dataset
from bench.errors import DatasetError
from cvbench_util.progress import progress

JUNK_NAMES = {"thumbs.db", "desktop.ini"}
MAX_PIXELS = 200_000_000  # above this a file is skipped as a possible decompression bomb
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Zip bombs: a member is refused when it would expand past MAX_MEMBER_BYTES, or past 100 MB at a ratio above
# MAX_ZIP_RATIO (legitimate flat images compress well, so a high ratio alone is not enough).
MAX_MEMBER_BYTES = 1 << 30
MAX_ZIP_RATIO = 100


def _is_junk(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or parts[-1].lower() in JUNK_NAMES


def _safe_member(name: str) -> tuple[str, ...] | None:
    """Path parts of a zip member, or ``None`` for absolute / traversing names (never trusted)."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        return None
    return p.parts


class _Source:
    """Uniform listing/reading over a directory or a zip archive."""

    def __init__(self, path: Path):
        self.path = path
        self.is_zip = path.is_file() and zipfile.is_zipfile(path)
        self.rejected: list[tuple[str, str]] = []

    def files(self) -> Iterator[tuple[tuple[str, ...], str]]:
        """(relative parts, locator) for every non-junk regular file."""
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    parts = _safe_member(info.filename)
                    if parts is None:
                        self.rejected.append((info.filename, "unsafe path in archive (absolute or '..')"))
                        continue
                    ratio = info.file_size / max(info.compress_size, 1)
                    if info.file_size > MAX_MEMBER_BYTES or (info.file_size > 100 << 20 and ratio > MAX_ZIP_RATIO):
                        self.rejected.append((info.filename, f"refused: expands to {info.file_size:,} bytes at "
                                              f"ratio {ratio:.0f}:1 (possible zip bomb)"))
                        continue
                    if not _is_junk(parts):
                        yield parts, info.filename
        else:
            for root, dirs, files in os.walk(self.path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
                if not dirs and not [f for f in files if not f.startswith(".")]:
                    self.rejected.append((root, "empty folder (no images): class ignored"))
                for f in sorted(files):
                    full = Path(root) / f
                    parts = full.relative_to(self.path).parts
                    if not _is_junk(parts):
                        yield parts, str(full)


def _to_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode → ``uint8`` array ``(H, W)`` for grayscale or ``(H, W, 3)`` for colour."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(np.rint(a * (255.0 / hi)), 0, 255).astype(np.uint8)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        return np.clip(np.rint(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, rgba).convert("L" if mode in ("LA", "La") else "RGB")
        mode = img.mode
    if mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV ...
    return np.asarray(img, dtype=np.uint8)


def decode(data: bytes, name: str, draft: int | None = None) -> np.ndarray:
    """Decode one encoded image; raises ``ValueError`` with a readable reason when it cannot."""
    if not data:
        raise ValueError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel cap (MAX_PIXELS) replaces PIL's warning; PIL still refuses > 2 × MAX_IMAGE_PIXELS.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ValueError(f"image too large ({w}×{h} pixels > {MAX_PIXELS:,})")
            if draft and img.format == "JPEG":
                img.draft("RGB" if img.mode != "L" else "L", (draft, draft))  # decode at reduced scale
            img = ImageOps.exif_transpose(img)
            img.load()
    except ValueError:
        raise
    except Exception as e:  # PIL raises many types for bad data (OSError, SyntaxError, UnidentifiedImageError...)
        raise ValueError(f"not a decodable image ({type(e).__name__}: {e})") from None
    return _to_array(img)


def _fit(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize so the image covers ``size`` (shorter side first), then centre-crop to exactly ``size``."""
    import cv2

    th, tw = size
    h, w = a.shape[:2]
    if (h, w) == (th, tw):
        return a
    s = max(th / h, tw / w)
    nh, nw = max(th, round(h * s)), max(tw, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(a, (nw, nh), interpolation=interp)
    y0, x0 = (nh - th) // 2, (nw - tw) // 2
    return r[y0:y0 + th, x0:x0 + tw]


def _decode_chunk(path: str, is_zip: bool, items: list[tuple[int, str]], draft: int | None
                  ) -> list[tuple[int, np.ndarray | None, str]]:
    out = []
    zf = zipfile.ZipFile(path) if is_zip else None
    try:
        for i, loc in items:
            try:
                if zf is not None:
                    data = zf.read(loc)
                else:
                    with open(loc, "rb") as f:
                        data = f.read()
                out.append((i, decode(data, loc, draft), ""))
            except ValueError as e:
                out.append((i, None, str(e)))
            except (OSError, zipfile.BadZipFile) as e:
                out.append((i, None, f"unreadable file ({getattr(e, 'strerror', None) or e})"))
    finally:
        if zf is not None:
            zf.close()
    return out


def load_folder(path: str | os.PathLike, image_size: int | None = None, n_jobs: int = -1) -> Dataset:
    """Load an ImageFolder tree (directory or zip). See the module docstring for the policies."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"folder dataset {str(root)!r} does not exist; give a directory or a .zip of "
                           "class subfolders (optionally inside train/ and test/).")
    src = _Source(root)
    if root.is_file() and not src.is_zip:
        raise DatasetError(f"{str(root)!r} is a file but not a zip archive; give a directory or a .zip.")
    entries = list(src.files())
    # Strip a single wrapping top-level folder (common in zips: name/train/..., name/cat/...).
    while entries and len({p[0] for p, _ in entries}) == 1 and all(len(p) > 2 for p, _ in entries):
        entries = [(p[1:], loc) for p, loc in entries]
    tops = {p[0] for p, _ in entries if len(p) > 1}
    split_layout = {"train", "test"} <= tops
    records: list[tuple[str, str, str]] = []  # (split, class, locator)
    skipped: list[tuple[str, str]] = list(src.rejected)
    for parts, loc in entries:
        if split_layout:
            if len(parts) == 3 and parts[0] in ("train", "test"):
                records.append((parts[0], parts[1], loc))
            elif parts[0] not in ("train", "test") or len(parts) != 3:
                skipped.append((loc, "not at train|test/<class>/<file>"))
        elif len(parts) == 2:
            records.append(("train", parts[0], loc))
        else:
            skipped.append((loc, "not at <class>/<file>"))
    if not records:
        raise DatasetError(f"no image files found in {str(root)!r}: expected <class>/<image> or "
                           "train/<class>/<image> and test/<class>/<image>.")
    draft = image_size * 2 if image_size else None
    items = [(i, r[2]) for i, r in enumerate(records)]
    n_chunks = max(8, len(items) // 2000)
    chunks = [c for c in (items[k::n_chunks] for k in range(n_chunks)) if c]
    results = Parallel(n_jobs=n_jobs if len(records) > 2000 else 1, return_as="generator_unordered")(
        delayed(_decode_chunk)(str(root), src.is_zip, c, draft) for c in chunks)
    arrays: list[np.ndarray | None] = [None] * len(records)
    # a bar on a terminal only: quiet in CI logs and pipes, and under --quiet (cvbench_util.progress)
    for res in progress(results, f"decode {root.name}", total=len(chunks), unit="chunk"):
        for i, a, why in res:
            arrays[i] = a
            if a is None:
                skipped.append((records[i][2], why))
    ok = [i for i, a in enumerate(arrays) if a is not None]
    if not ok:
        raise DatasetError(f"none of the {len(records)} files under {str(root)!r} could be decoded; "
                           f"first problem: {skipped[0][0]}: {skipped[0][1]}")
    color = any(arrays[i].ndim == 3 for i in ok)
    sizes = Counter(arrays[i].shape[:2] for i in ok)
    if image_size:
        target = (image_size, image_size)
        policy = f"shorter side to {image_size} then centre crop"
    elif len(sizes) == 1:
        target, policy = next(iter(sizes)), "native (all images the same size)"
    else:
        target = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0]
        policy = f"mixed sizes: most frequent {target[0]}×{target[1]}, shorter side then centre crop"
    C = 3 if color else 1
    classes = sorted({r[1] for r in records})
    X = np.empty((len(ok), target[0], target[1], C), dtype=np.uint8)
    for j, i in enumerate(ok):
        a = arrays[i]
        if color and a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        a = _fit(a, target)
        X[j] = a.reshape(target[0], target[1], C)
        arrays[i] = None  # free as we go
    y = np.array([classes.index(records[i][1]) for i in ok], dtype=np.int64)
    is_test = np.array([records[i][0] == "test" for i in ok])
    meta = {"source": f"folder:{root}", "layout": "train/test" if split_layout else "class folders",
            "size_policy": policy, "skipped": skipped, "n_files": len(records)}
    if split_layout:
        return Dataset(f"folder:{root}", X[~is_test], y[~is_test], X[is_test], y[is_test], classes, meta)
    return Dataset(f"folder:{root}", X, y, None, None, classes, meta)
