"""Which files are images: what a folder given as images holds, in a stable order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from caffe_relabel.errors import ImageFormatError
from caffe_relabel.files.bounded_read import open_regular

#: Suffixes (lower case) read as images when a folder is listed.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".jpe"}


def image_files(paths: Iterable["str | os.PathLike[str]"]) -> list[Path]:
    """Each path as given, a folder replaced by its image files (by suffix, sorted by name, not recursive).

    Every file is checked to be a readable regular file first, so a mistyped name fails before any work;
    a folder without images is an ImageFormatError naming it.
    """
    out: list[Path] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                expected = ", ".join(sorted(IMAGE_SUFFIXES))
                raise ImageFormatError(f"{p}: no image files in the folder (expected {expected})")
            out += found
        else:
            with open_regular(p, "image file", "image", ImageFormatError):
                pass
            out.append(p)
    return out
