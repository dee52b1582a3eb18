"""The folder loader on generated images of mixed sizes and modes, from a directory and from a zip."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import SplitOptions, load_dataset, prepare
from bench.errors import DatasetError

MODES = ["L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16"]


def _image(mode: str, size: tuple[int, int], value: int) -> Image.Image:
    rgb = Image.new("RGB", size, (value, value, max(0, value - 20)))
    if mode == "I;16":
        return Image.fromarray(np.full(size[::-1], value * 257, dtype=np.uint16))
    if mode == "P":
        return rgb.quantize(8)
    return rgb.convert(mode)


def make_tree(root: Path, split_layout: bool = True, corrupt: bool = True) -> Path:
    """Two classes with bright (class a) and dark (class b) images in every mode and a few sizes."""
    rng = np.random.default_rng(0)
    splits = ["train", "test"] if split_layout else [""]
    for split in splits:
        for cls, base in (("a", 220), ("b", 30)):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i, mode in enumerate(MODES * 2):
                size = [(24, 24), (32, 20), (16, 16)][i % 3]
                fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
                _image(mode, size, int(base + rng.integers(-10, 10))).save(d / f"{i}.{fmt.lower()}", fmt)
    if corrupt:
        (root / splits[0] / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        (root / splits[0] / "a" / "empty.png").write_bytes(b"")
        (root / splits[0] / "b" / ".DS_Store").write_bytes(b"junk")
    return root


def _zip(src: Path, dst: Path) -> Path:
    with zipfile.ZipFile(dst, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(src.parent))  # keeps a wrapping top-level folder, as zips often do
    return dst


@pytest.mark.parametrize("as_zip", [False, True])
def test_folder_mixed_modes_and_sizes(tmp_path, as_zip):
    tree = make_tree(tmp_path / "ds")
    spec = f"folder:{_zip(tree, tmp_path / 'ds.zip') if as_zip else tree}"
    ds = load_dataset(spec)
    assert ds.class_names == ["a", "b"]
    assert ds.X_train.dtype == np.uint8 and ds.X_train.ndim == 4 and ds.X_train.shape[3] == 3
    assert ds.X_train.shape[1:3] == (24, 24) or ds.X_train.shape[1:3] == (16, 16)
    assert len(ds.y_train) == 28 and len(ds.y_test) == 28  # 14 per class and split, corrupt ones skipped
    skipped = {Path(f).name: why for f, why in ds.meta["skipped"]}
    assert set(skipped) == {"broken.jpg", "empty.png"}
    assert "0 bytes" in skipped["empty.png"]
    # class a is bright and b dark in every mode: decoding kept the content
    means = [ds.X_train[ds.y_train == c].mean() for c in (0, 1)]
    assert means[0] > 150 > 60 > means[1]


def test_image_size_policy_is_applied(tmp_path):
    ds = load_dataset(f"folder:{make_tree(tmp_path / 'ds', corrupt=False)}", image_size=12)
    assert ds.X_train.shape[1:3] == (12, 12) and ds.meta["size_policy"].startswith("shorter side to 12")


def test_single_folder_gets_a_seeded_test_split(tmp_path):
    tree = make_tree(tmp_path / "flat", split_layout=False, corrupt=False)
    d = prepare(f"folder:{tree}", SplitOptions(test_fraction=0.25))
    assert d.split.test_from_pool and len(d.y_test) == 7
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 28


def test_decoded_cache_hit_is_identical(tmp_path):
    tree = make_tree(tmp_path / "ds")
    first = load_dataset(f"folder:{tree}", cache_dir=tmp_path / "cache")
    second = load_dataset(f"folder:{tree}", cache_dir=tmp_path / "cache")
    assert first.meta["cache"] == "miss" and second.meta["cache"] == "hit"
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_a_folder_declares_flips_in_its_spec_and_shares_one_decoded_cache(tmp_path):
    """Flips stay off for a folder unless ``?hflip=true`` says they preserve its labels; the option changes no
    pixel, so both specs read one decoded cache entry, and a flipping network then gets allow_hflip."""
    from bench.execute import _fit_kwargs
    from pipelines.training import NetClassifier

    tree = make_tree(tmp_path / "ds", corrupt=False)
    plain = prepare(f"folder:{tree}", cache_dir=tmp_path / "cache")
    flips = prepare(f"folder:{tree}?hflip=true", cache_dir=tmp_path / "cache")
    assert plain.meta["allow_hflip"] is False and flips.meta["allow_hflip"] is True
    assert flips.meta["cache"] == "hit" and len(list((tmp_path / "cache").iterdir())) == 1
    np.testing.assert_array_equal(plain.X_train, flips.X_train)
    net = NetClassifier(arch="mlp", width=8, epochs=1, device="cpu")
    assert [_fit_kwargs(net, d, lambda e, r: None)["allow_hflip"] for d in (plain, flips)] == [False, True]
    with pytest.raises(DatasetError, match="hflip=true"):
        load_dataset(f"folder:{tree}?flip=yes")


def test_nothing_decodable_is_an_error_naming_the_path(tmp_path):
    d = tmp_path / "bad" / "cls"
    d.mkdir(parents=True)
    (d / "x.png").write_text("this is text, not a png")
    with pytest.raises(DatasetError, match=str(tmp_path / "bad")):
        load_dataset(f"folder:{tmp_path / 'bad'}")


def test_unsafe_zip_members_are_rejected(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "PNG")
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for cls in ("a", "b"):
            for i in range(4):
                zf.writestr(f"{cls}/{i}.png", buf.getvalue())
        zf.writestr("../../escape.png", buf.getvalue())
        zf.writestr("/abs/escape.png", buf.getvalue())
    ds = load_dataset(f"folder:{z}")
    assert len(ds.y_train) == 8
    reasons = [why for _, why in ds.meta["skipped"]]
    assert sum("unsafe path" in r for r in reasons) == 2
    assert not (tmp_path.parent / "escape.png").exists()
