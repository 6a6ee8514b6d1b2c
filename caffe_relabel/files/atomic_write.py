"""Atomic output files: a file at the destination is complete or absent, never partial.

Each write goes to a temporary file with a unique name (``tempfile.mkstemp``)
in the destination's folder, is flushed to disk (``fsync``) and only then
renamed over the destination (``os.replace``, atomic within one file
system). Two processes writing one path never share a temporary file; the
last rename wins with a whole file. Any failure (an unwritable or full
disk, a destination whose parent is a file) removes the temporary file and
raises :class:`~caffe_relabel.errors.OutputError` naming the destination.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

from caffe_relabel.errors import OutputError

PathLike = Union[str, "os.PathLike[str]"]

# mkstemp makes files private (0600); outputs get the usual umask-derived mode.
# The umask can only be read by setting it: done once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: PathLike, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; it replaces ``path`` on success.

    The temporary name ends with the destination's suffix, so writers that
    choose a format by extension (matplotlib, scikit-image) keep working.
    """
    dest = Path(path)
    make_dir(dest.parent, f"the folder of {dest}")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".part{dest.suffix}", dir=dest.parent)
    except OSError as e:
        raise OutputError(f"{dest}: cannot write {what}: {e.strerror or e}") from None
    tmp = Path(tmp_name)
    try:
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, dest)
    except OSError as e:
        _remove(tmp)
        raise OutputError(f"{dest}: cannot write {what}: {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(dest.parent)


def make_dir(path: PathLike, what: str = "output folder") -> Path:
    """Create a folder (and its parents); OutputError naming it if it cannot be."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{p}: cannot create {what}: {e.strerror or e}") from None
    return p


def write_bytes(path: PathLike, data: bytes, what: str = "file") -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, what) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def write_text(path: PathLike, text: str, what: str = "file") -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), what)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; some file systems refuse fsync on a folder.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
