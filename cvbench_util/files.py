"""Atomic writes: a file or directory appears complete at its path, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | os.PathLike, *, directory: bool = False, keep_existing: bool = False
                 ) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write (a file with ``path``'s suffix, or with ``directory``
    an empty directory); when the block ends it is renamed onto ``path`` (``os.replace``), so no reader, nor
    a run interrupted mid-write, ever sees a partial one; on an exception it is removed.

    A directory already at ``path`` is removed first, unless ``keep_existing``: then a ``path`` that another
    writer put in place meanwhile is kept, and ours discarded (both are the same content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp-"))
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory and not keep_existing and path.exists():
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError:
            if not (directory and keep_existing):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # a writer beside us got there first
    except BaseException:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
