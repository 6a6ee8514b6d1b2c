"""Verified, resumable, concurrency-safe downloads.

The file grows as ``<dest>.part`` (resumed with an HTTP Range request after
an interruption), is checked against its sha1, and only then renamed to
``<dest>``: a file at ``dest`` is always complete and verified. A lock file
serialises concurrent downloads of the same file (a second process waits,
then finds the finished file).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Type

from caffe_relabel.files.atomic_write import make_dir
from caffe_relabel.files.bounded_read import open_regular
from caffe_relabel.errors import CaffeRelabelError, DownloadError

CHUNK = 1 << 16


def sha1_file(path: Path, what: str = "caffemodel", error: Type[CaffeRelabelError] = DownloadError) -> str:
    """Hex sha1 of a regular file of at most 2 GiB, read in 1 MiB chunks."""
    h = hashlib.sha1()
    with open_regular(path, what, "caffemodel", error) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_url(url: str, allow_file_urls: bool = False) -> None:
    """Refuse addresses other than http(s): a ``file://`` URL only when asked for."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https") or (scheme == "file" and allow_file_urls):
        return
    if scheme == "file":
        raise DownloadError(f"{url}: file:// addresses are refused unless asked for (allow_file_urls=True, --allow-file-url)")
    raise DownloadError(f"{url}: expected an http:// or https:// address")


def download(
    url: str,
    dest: Path,
    sha1: Optional[str] = None,
    progress: Optional[Callable[[int, Optional[int]], None]] = None,
    timeout: float = 60.0,
    allow_file_urls: bool = False,
) -> Path:
    """Fetch ``url`` to ``dest``; ``progress(done_bytes, total_bytes_or_None)`` is called as bytes arrive.

    A file already at ``dest`` that does not verify is moved aside to
    ``<dest>.sha1-<its sha1>``, never deleted; ``file://`` URLs need
    ``allow_file_urls``.
    """
    check_url(url, allow_file_urls)
    dest = Path(dest)
    make_dir(dest.parent, "download folder")
    part = dest.with_name(dest.name + ".part")
    with open(dest.with_name(dest.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dest.exists():
            got = sha1_file(dest) if sha1 is not None else None
            if got == sha1:
                return dest
            # A bad file where a good one belongs is never used; it may have been put
            # there by hand, so it is moved aside (named for its sha1), not deleted.
            os.replace(dest, dest.with_name(f"{dest.name}.sha1-{got}"))
        # A resumed file can be spliced from two versions of the file: on a
        # mismatch, retry once from zero before giving up.
        for attempt in (1, 2):
            _fetch_into(url, part, progress, timeout)
            got = sha1_file(part, "download") if sha1 is not None else None
            if got == sha1:
                os.replace(part, dest)
                return dest
            part.unlink()
        raise DownloadError(f"{url}: downloaded file has sha1 {got}, expected {sha1}; it was deleted")


def _fetch_into(url: str, part: Path, progress: Optional[Callable[[int, Optional[int]], None]], timeout: float) -> None:
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the partial file is already complete
            return
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"{url}: cannot download ({reason}); without a network, fetch the file elsewhere and put it at {part.with_suffix('')}"
        ) from None
    with response:
        resumed = start and response.status == 206
        mode = "ab" if resumed else "wb"
        done = start if resumed else 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        try:
            with open(part, mode) as f:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (OSError, urllib.error.URLError) as e:
            raise DownloadError(f"{url}: download interrupted after {done} bytes ({e}); run again to resume") from None
    if total is not None and done < total:
        raise DownloadError(f"{url}: download interrupted after {done} of {total} bytes; run again to resume")
