"""Content digests of arrays (cache keys, dataset fingerprints)."""

from __future__ import annotations

import hashlib

import numpy as np


def array_digest(X: np.ndarray) -> str:
    """Stable digest of an array's dtype, shape and bytes."""
    h = hashlib.blake2b(digest_size=16)
    X = np.ascontiguousarray(X)
    h.update(f"{X.dtype.str}{X.shape}".encode())
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()
