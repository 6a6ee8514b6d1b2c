"""Local response normalization, as lrn_layer.cpp (CPU path).

ACROSS_CHANNELS: scale = k + alpha / local_size * (sum of x^2 over a window of
local_size channels, zero-padded), top = x * scale^-beta; the gradient is
Caffe's own backward formula.
WITHIN_CHANNEL: Caffe composes Power(x^2) -> AVE Pooling (pad (size-1)/2,
divisor size^2) -> Power((1 + alpha * s)^-beta) -> product with x; k is not
used. The same composition is built here from the same pooling code, over
the window the rule computed (caffe_relabel/netdef/layers/lrn.py).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from caffe_relabel.engine.spec import Build, CaffeLayer
from caffe_relabel.engine.layers.pooling import Pool2d


# The band matrix is C x C floats: 8192 channels take 256 MiB (zoo nets use at most 256).
MAX_BAND_CHANNELS = 8192


class _CrossChannelLRNFunction(torch.autograd.Function):
    """Caffe's CrossChannelForward_cpu / CrossChannelBackward_cpu.

    The window sum over channels is a 1x1 convolution with a 0/1 band matrix
    (exact terms, fast in any memory layout). The backward is Caffe's own
    formula, which also saves recomputing the power:
    dx = dy * scale^-beta - (2 alpha beta / size) * x * window_sum(dy * y / scale).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)  # float32 under bf16 autocast
    def forward(ctx, x: torch.Tensor, band: torch.Tensor, alpha_over_size: float, beta: float, k: float,
                ratio: float) -> torch.Tensor:
        scale = F.conv2d(x * x, band).mul_(alpha_over_size).add_(k)
        inverse = scale.pow(-beta)
        top = x * inverse
        ctx.save_for_backward(x, band, scale, inverse, top)
        ctx.ratio = ratio
        return top

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, dy: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        x, band, scale, inverse, top = ctx.saved_tensors
        # The band is symmetric, so the same convolution sums the transposed window.
        accumulated = F.conv2d(dy * top / scale, band)
        return dy * inverse - ctx.ratio * x * accumulated, None, None, None, None, None


class CrossChannelLRN(CaffeLayer):
    def __init__(self, channels: int, size: int, alpha: float, beta: float, k: float, device: torch.device) -> None:
        super().__init__()
        half = (size - 1) // 2
        index = torch.arange(channels, device=device)
        band = ((index[:, None] - index[None, :]).abs() <= half).to(torch.float32)[:, :, None, None]
        self.register_buffer("band", band, persistent=False)
        # Caffe's constants: alpha_ / size_ in float32, 2. * alpha_ * beta_ / size_ in double then float.
        self.alpha_over_size = float(np.float32(alpha) / np.float32(size))
        self.ratio = float(np.float32(2.0 * float(np.float32(alpha)) * float(np.float32(beta)) / size))
        self.beta, self.k = float(np.float32(beta)), float(np.float32(k))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (_CrossChannelLRNFunction.apply(x, self.band, self.alpha_over_size, self.beta, self.k, self.ratio),)


class WithinChannelLRN(CaffeLayer):
    def __init__(self, pool: Pool2d, alpha: float, beta: float) -> None:
        super().__init__()
        self.pool, self.alpha, self.beta = pool, alpha, beta

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        (mean_square,) = self.pool(x * x)
        return (x * (1.0 + self.alpha * mean_square).pow(-self.beta),)


def build_lrn(b: Build) -> CaffeLayer:
    p = b.layer.lrn_param
    if b.geometry is not None:  # WITHIN_CHANNEL: the rule's pooling window
        return WithinChannelLRN(Pool2d(b.geometry, b.device), p.alpha, p.beta)
    channels = b.bottoms[0][1]
    if channels > MAX_BAND_CHANNELS:
        raise b.refuse("bottom", f"{channels} channels; the engine's channel window is a C x C band "
                                 f"matrix, so at most {MAX_BAND_CHANNELS} channels")
    return CrossChannelLRN(channels, p.local_size, p.alpha, p.beta, p.k, b.device)
