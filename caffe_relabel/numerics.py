"""The engine's numeric modes, by name (importable without torch, for the CLI and
:func:`caffe_relabel.backends.load_classifier`; what each one does:
:mod:`caffe_relabel.engine.device`)."""

from __future__ import annotations

from caffe_relabel.errors import ArgumentError

MODES = ("faithful", "fast", "fast-bf16")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ArgumentError(f"expected mode {' or '.join(repr(m) for m in MODES)}, got {mode!r}")
    return mode
