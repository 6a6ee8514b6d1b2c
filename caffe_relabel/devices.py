"""Device names, parsed once for every backend and the command line (importable without torch or caffe)."""

from __future__ import annotations

from typing import Optional

from caffe_relabel.errors import ArgumentError


def parse_device(device: object) -> tuple[str, Optional[int]]:
    """'cpu' -> ('cpu', None); 'gpu', 'cuda' -> ('gpu', None); 'gpu:N', 'cuda:N' -> ('gpu', N).

    A torch.device is taken by its name. Anything else is an ArgumentError.
    """
    text = str(device).strip().lower()
    kind, sep, index = text.partition(":")
    if kind == "cpu" and not sep:
        return "cpu", None
    if kind in ("gpu", "cuda") and (not sep or index.isascii() and index.isdigit()):  # int() takes '²' too
        return "gpu", int(index) if sep else None
    raise ArgumentError(f"expected device 'cpu', 'gpu:N' or 'cuda:N', got {device!r}")
