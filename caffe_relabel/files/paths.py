"""Where things live: the cache directory, package data, the deploy prototxts."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # caffe_relabel/


def cache_dir(*parts: str) -> Path:
    """``$CAFFE_RELABEL_HOME`` (default ``~/.cache/caffe-relabel``) joined with ``parts``."""
    root = os.environ.get("CAFFE_RELABEL_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "caffe-relabel"
    )
    return Path(root, *parts)


def package_data(*parts: str) -> Path:
    """A file or folder under ``caffe_relabel/data``."""
    return _PACKAGE.joinpath("data", *parts)


def repo_prototxt(name: str) -> Path:
    """The force_backward deploy prototxt of a zoo model, shipped in the package."""
    return package_data("prototxt", f"{name}.prototxt")


def zoo_prototxt(name: str) -> Path:
    """A Model Zoo architecture's force_backward deploy prototxt (``prototxt/zoo``)."""
    return package_data("prototxt", "zoo", f"{name}.prototxt")
