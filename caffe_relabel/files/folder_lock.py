"""One run at a time in an output folder: an advisory lock (``fcntl.flock``) held for the run.

Two reports into one folder would overwrite each other's figures and
stores mid-run. The first run holds the lock; any other refuses at once,
saying the folder is in use, instead of waiting or racing. The lock is the
kernel's, so a run that is killed releases it with its last file descriptor:
no stale lock file ever blocks the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from caffe_relabel.errors import OutputError
from caffe_relabel.files.atomic_write import PathLike, make_dir

#: The lock file inside the folder; removed when the run ends.
LOCK_NAME = "caffe-relabel.lock"


@contextlib.contextmanager
def folder_lock(folder: PathLike, what: str = "output folder") -> Iterator[Path]:
    """Hold ``folder``'s lock for the body (the folder is created); OutputError at once if another run holds it."""
    path = make_dir(folder, what) / LOCK_NAME
    fd = _acquire(path, what)
    try:
        yield path
    finally:
        # Removed while still held: a run that opened this file meanwhile finds it locked and
        # refuses; one that comes later makes and locks a new file.
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def _acquire(path: Path, what: str) -> int:
    in_use = OutputError(f"{path.parent}: the {what} is in use by another run (it holds {path.name}); "
                         "wait for that run to end or choose another folder")
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise OutputError(f"{path.parent}: cannot lock the {what}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise in_use from None
        except OSError as e:
            os.close(fd)
            raise OutputError(f"{path.parent}: cannot lock the {what}: {e.strerror or e}") from None
        # A run that ended between our open and flock removed the file we locked: lock the one there now.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)
    raise in_use
