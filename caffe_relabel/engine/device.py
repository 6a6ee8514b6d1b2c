"""Devices and numeric modes.

``faithful``: float32 everywhere; on CUDA, TF32 off for matmul and cuDNN
convolutions, cuDNN restricted to deterministic algorithms and no autotuning.
``fast``: on CUDA, TF32 on, cuDNN autotuning and channels-last memory layout.
``fast-bf16``: ``fast`` plus bfloat16 autocast for convolutions and matmuls
(the logits are returned in float32). Measure either against ``faithful``
before trusting its sign gradients.

On CPU all three modes run identically (float32, channels-last, the same
kernels): TF32 and cuDNN do not exist there and bfloat16 is slower than
float32 on CPUs without AMX, so there is nothing to trade.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..errors import ArgumentError, BackendUnavailableError

MODES = ("faithful", "fast", "fast-bf16")


def resolve_device(device: "str | torch.device") -> torch.device:
    """'cpu', 'cuda', 'cuda:N', 'gpu', 'gpu:N' -> a torch.device, checked to exist."""
    text = str(device).strip().lower()
    if text.startswith("gpu"):
        text = "cuda" + text[3:]
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ArgumentError(f"expected device 'cpu', 'cuda', 'cuda:N' or 'gpu:N', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ArgumentError(f"expected device 'cpu', 'cuda', 'cuda:N' or 'gpu:N', got {device!r}")
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


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ArgumentError(f"expected mode {' or '.join(repr(m) for m in MODES)}, got {mode!r}")
    return mode


def uses_channels_last(mode: str, device: torch.device) -> bool:
    # On CPU channels-last is a layout choice only (float32 throughout) and the
    # faster one for oneDNN convolution and max pooling; it also avoids a wrong
    # input gradient seen from the NCHW grouped-convolution backward of torch
    # 2.13's oneDNN inside CaffeNet at batch >= 2 (tests/engine guard it).
    # On CUDA it lets cuDNN pick other algorithms, so only the fast modes use it.
    return device.type == "cpu" or mode != "faithful"


@contextlib.contextmanager
def numerics(mode: str, device: torch.device) -> Iterator[None]:
    """The mode's numeric settings, set for the duration and then restored.

    torch keeps these as process-wide flags; setting them only around our own
    calls leaves the rest of the user's program as it was.
    """
    if device.type != "cuda":
        yield
        return
    fast = mode != "faithful"
    saved_matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = fast
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=fast, deterministic=not fast, allow_tf32=fast):
            if mode == "fast-bf16":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    yield
            else:
                yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved_matmul
