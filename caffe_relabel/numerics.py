"""The engine's numerics, by name (importable without torch, for the CLI and
:func:`caffe_relabel.backends.load_classifier`; what each one does:
:mod:`caffe_relabel.engine.device`)."""

from __future__ import annotations

from caffe_relabel.errors import ArgumentError

NUMERICS = ("faithful", "fast", "fast-bf16")

#: Numerics that exist only on a CUDA device.
CUDA_ONLY = ("fast-bf16",)


def check_numerics(numerics: str) -> str:
    if numerics not in NUMERICS:
        raise ArgumentError(f"expected numerics {' or '.join(repr(m) for m in NUMERICS)}, got {numerics!r}")
    return numerics
