"""Devices and numerics.

``faithful``: float32 everywhere, NCHW. On CPU, convolutions run Caffe's
own algorithm, im2col + GEMM + col2im (engine/layers/conv.py), except
depthwise ones, which run oneDNN on channels-last tensors, and the block
around them stays channels-last (its 1 x 1 convolutions as one GEMM; drift
measured in bench/README.md); on CUDA, TF32
off for matmul and cuDNN convolutions, cuDNN restricted to deterministic
algorithms and no autotuning.
``fast``: channels-last memory layout; on CPU oneDNN's direct convolutions,
on CUDA TF32 on and cuDNN autotuning.
``fast-bf16``: on CUDA, ``fast`` plus bfloat16 autocast for convolutions and
matmuls (the logits are returned in float32); on CPU it equals ``fast``, as
bfloat16 is slower than float32 on CPUs without AMX (and
:func:`caffe_relabel.backends.load_classifier` refuses it there). Measure
either fast numerics against ``faithful`` before trusting its sign gradients.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from caffe_relabel.devices import parse_device
from caffe_relabel.errors import BackendUnavailableError


def resolve_device(device: "str | torch.device") -> torch.device:
    """'cpu', 'cuda', 'cuda:N', 'gpu', 'gpu:N' -> a torch.device, checked to exist."""
    kind, index = parse_device(device)
    dev = torch.device("cpu" if kind == "cpu" else "cuda" if index is None else f"cuda:{index}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(f"device {device!r}: this torch build sees no CUDA device")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        dev = torch.device("cuda", index)
    return dev


def uses_channels_last(numerics: str) -> bool:
    # The faster layout for oneDNN and cuDNN, which then pick other algorithms:
    # only the fast modes use it. oneDNN also needs it: its NCHW grouped
    # convolution backward in torch 2.13 gave a wrong input gradient inside
    # CaffeNet at batch >= 2 (the faithful mode runs oneDNN only for depthwise
    # layers, and there on channels-last copies).
    return numerics != "faithful"


def uses_im2col(numerics: str, device: torch.device) -> bool:
    """Whether convolutions run Caffe's im2col + GEMM (the faithful mode on CPU).

    oneDNN's direct convolutions sum in another order, and their input-gradient
    signs sit further from a float64 evaluation than Caffe's own (ResNet-50,
    random input: 0.11% of elements flipped, Caffe 0.04%, im2col 0.015%);
    they are 1.1-1.4x faster on most nets, 2.7x on depthwise ones. Depthwise
    layers take oneDNN anyway (channels-last, engine/layers/conv.py): im2col is
    90x slower there and their drift stays within the fidelity tests' bounds.
    """
    return numerics == "faithful" and device.type == "cpu"


@contextlib.contextmanager
def numeric_context(numerics: str, device: torch.device) -> Iterator[None]:
    """The numerics' settings, set for the duration and then restored.

    torch keeps these as process-wide flags; setting them only around our own
    calls leaves the rest of the user's program as it was.
    """
    if device.type != "cuda":
        yield
        return
    fast = numerics != "faithful"
    saved_matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = fast
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=fast, deterministic=not fast, allow_tf32=fast):
            if numerics == "fast-bf16":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    yield
            else:
                yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved_matmul
