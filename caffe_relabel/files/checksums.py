"""Size and sha1 of files made locally (converted models), recorded beside them.

Downloaded weights are checked against their published sha1; weights made
by ``models convert`` have none, so the conversion records the size and
sha1 it wrote in ``<file>.sha1.json`` and ``models verify`` checks them: a
file cut short or changed since is caught.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

from caffe_relabel.files import atomic_write
from caffe_relabel.files.bounded_read import read_bounded
from caffe_relabel.files.download import sha1_file
from caffe_relabel.errors import ModelFormatError

PathLike = Union[str, "os.PathLike[str]"]


def record_path(path: PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sha1.json")


def write_record(path: PathLike) -> Path:
    """Record ``path``'s size and sha1 beside it (atomically); returns the record's path."""
    p = Path(path)
    record = {"file": p.name, "size": p.stat().st_size, "sha1": sha1_file(p)}
    return atomic_write.write_text(record_path(p), json.dumps(record, sort_keys=True) + "\n", "checksum record")


def read_record(path: PathLike) -> Optional[tuple[int, str]]:
    """(size, sha1) recorded for ``path``, or None if there is no record."""
    rec = record_path(path)
    if not rec.exists():
        return None
    data = read_bounded(rec, "checksum record", "list", ModelFormatError)
    try:
        record = json.loads(data)
        size, sha1 = record["size"], record["sha1"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelFormatError(f"{rec}: not a checksum record ({type(e).__name__}: {e})") from None
    if isinstance(size, bool) or not isinstance(size, int) or not isinstance(sha1, str):
        raise ModelFormatError(f"{rec}: expected an integer size and a sha1 string")
    return size, sha1


def matches_record(path: PathLike) -> bool:
    """Whether ``path`` has a record and still has the recorded size and sha1."""
    recorded = read_record(path)
    if recorded is None:
        return False
    size, sha1 = recorded
    # The size first: a file cut short is caught without reading it.
    return Path(path).stat().st_size == size and sha1_file(Path(path)) == sha1
