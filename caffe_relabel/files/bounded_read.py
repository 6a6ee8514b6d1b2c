"""Reading the user's files without hanging or running out of memory.

Every model and image path goes through :func:`open_regular`: the file is
opened with ``O_NONBLOCK`` (a FIFO would otherwise block ``open`` forever),
must be a regular file (not a directory, FIFO, socket or device such as a
symlink to ``/dev/zero``) and no larger than the cap of its kind. The caps
(:data:`LIMITS`, in bytes) are far above any real file of that kind:

- ``prototxt``: 64 MiB (the largest zoo prototxts are well under 1 MiB);
- ``caffemodel``: 2 GiB - 1 (Caffe's own reader stops there; the zoo's
  largest is about 550 MB);
- ``mean``: 256 MiB (a binaryproto mean image);
- ``image``: 1 GiB (the decoded size is bounded separately, in preprocess);
- ``list``: 64 MiB (a text file listing images);
- ``store``: no cap (SQLite reads pages on demand), only the file type.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional, Type, Union

from caffe_relabel.errors import CaffeRelabelError

PathLike = Union[str, "os.PathLike[str]"]

LIMITS: dict[str, Optional[int]] = {
    "prototxt": 64 * 2**20,
    "caffemodel": 2**31 - 1,
    "mean": 256 * 2**20,
    "image": 2**30,
    "list": 64 * 2**20,
    "store": None,
}


def open_regular(
    path: PathLike, what: str, kind: str, error: Type[CaffeRelabelError] = CaffeRelabelError
) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a regular file within ``LIMITS[kind]``.

    ``what`` names the file in messages ("prototxt", "image"); ``error`` is the
    type raised. The caller closes the returned file.
    """
    p = Path(path)
    limit = LIMITS[kind]
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{p}: expected a regular file for the {what}, got a directory") from None
    except OSError as e:
        raise error(f"{p}: cannot read {what}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{p}: expected a regular file for the {what}, got {_file_type(st.st_mode)}")
        if limit is not None and st.st_size > limit:
            raise error(f"{p}: {what} is {st.st_size} bytes, more than the {limit} accepted")
        # Regular files ignore O_NONBLOCK; clear it anyway so nothing downstream sees EAGAIN.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: PathLike, what: str, kind: str, error: Type[CaffeRelabelError] = CaffeRelabelError) -> bytes:
    """The bytes of a regular file within ``LIMITS[kind]`` (see :func:`open_regular`)."""
    limit = LIMITS[kind]
    with open_regular(path, what, kind, error) as f:
        size = os.fstat(f.fileno()).st_size  # within the cap: open_regular checked it
        try:
            # One byte past the size seen, not past the cap: read(n) allocates n bytes up front, and
            # a 2 GiB buffer per small caffemodel made a long fuzz run crawl. A file that grew since
            # fstat shows as the extra byte and is refused.
            data = f.read() if limit is None else f.read(size + 1)
        except OSError as e:
            raise error(f"{path}: cannot read {what}: {e.strerror}") from None
    if limit is not None and len(data) > size:
        raise error(f"{path}: {what} changed while it was read (more than the {size} bytes it had)")
    return data


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"
