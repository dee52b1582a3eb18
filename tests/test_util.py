"""cvbench_util: atomic writes and array digests."""

from __future__ import annotations

import numpy as np
import pytest

from cvbench_util.digest import array_digest
from cvbench_util.files import atomic_write


def test_atomic_write_file_replaces_and_cleans_up(tmp_path):
    path = tmp_path / "sub" / "a.npy"
    with atomic_write(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".npy" and not path.exists()
        np.save(tmp, np.arange(3))
    assert np.array_equal(np.load(path), np.arange(3))
    with pytest.raises(RuntimeError), atomic_write(path) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError
    assert np.array_equal(np.load(path), np.arange(3))  # untouched, and no temporary left behind
    assert [p.name for p in path.parent.iterdir()] == ["a.npy"]


def test_atomic_write_directory_replaces_or_keeps_existing(tmp_path):
    path = tmp_path / "d"
    for text, keep in (("one", False), ("two", False), ("three", True)):
        with atomic_write(path, directory=True, keep_existing=keep) as tmp:
            (tmp / "f").write_text(text)
    assert (path / "f").read_text() == "two"  # keep_existing: the directory already there wins
    with pytest.raises(KeyboardInterrupt), atomic_write(path, directory=True) as tmp:
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_array_digest_covers_dtype_shape_and_bytes():
    x = np.arange(6, dtype=np.uint8)
    assert array_digest(x) == array_digest(x.copy()) == array_digest(np.asfortranarray(x))
    assert len({array_digest(x), array_digest(x.reshape(2, 3)), array_digest(x.astype(np.int16))}) == 3
    assert array_digest(x) == "c6a5caae38b2e9ba7556742f78ee8cbc"  # cache keys depend on it: never changes
