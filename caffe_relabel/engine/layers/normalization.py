"""BatchNorm, Scale and Bias (batch_norm_layer.cpp, scale_layer.cpp, bias_layer.cpp).

BatchNorm stores mean, variance and a scale factor s (third blob): with
global stats it uses mean / s and variance / s (0 when s == 0) and computes
(x - mean) / sqrt(variance + eps) -- no affine part (that is a Scale layer).
Scale and Bias multiply/add a blob (their own parameter, or a second bottom)
broadcast over ``axis`` .. ``axis + num_axes`` of the first bottom. The
axis, the blob shapes and which blobs exist come from the rules
(caffe_relabel/layers/normalization.py).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..spec import Build, CaffeLayer


class BatchNorm(CaffeLayer):
    def __init__(self, mean: torch.Tensor, variance: torch.Tensor, factor: torch.Tensor, use_global_stats: bool,
                 eps: float) -> None:
        super().__init__()
        self.add_blob("mean", mean)
        self.add_blob("variance", variance)
        self.add_blob("scale_factor", factor)
        self.use_global_stats, self.eps = use_global_stats, eps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        view = (1, -1) + (1,) * (x.dim() - 2) if x.dim() > 1 else (-1,)
        if self.use_global_stats:
            factor = self.scale_factor[0]
            scale = torch.where(factor == 0, torch.zeros_like(factor), 1 / factor)
            mean, variance = self.mean * scale, self.variance * scale
            centered = x - mean.reshape(view)
        else:
            # Test-time batch statistics, as Caffe computes them with use_global_stats: false.
            dims = [0] + list(range(2, x.dim()))
            centered = x - x.mean(dim=dims, keepdim=True)
            variance = (centered * centered).mean(dim=dims)
        return (centered / torch.sqrt(variance + self.eps).reshape(view),)


def build_batch_norm(b: Build) -> BatchNorm:
    mean, variance, factor = b.blobs
    return BatchNorm(mean, variance, factor, b.geometry, float(b.layer.batch_norm_param.eps))


def _broadcast_view(x: torch.Tensor, blob: torch.Tensor, axis: int) -> torch.Tensor:
    return blob.reshape(blob.shape + (1,) * (x.dim() - axis - blob.dim()))


class ScaleBias(CaffeLayer):
    """x * scale (+ bias), or x + bias; scale/bias are blobs or the second bottom."""

    def __init__(self, axis: int, scale: Optional[torch.Tensor], bias: Optional[torch.Tensor], scale_from_bottom: bool,
                 bias_from_bottom: bool) -> None:
        super().__init__()
        self.add_blob("scale", scale)
        self.add_blob("bias", bias)
        self.axis, self.scale_from_bottom, self.bias_from_bottom = axis, scale_from_bottom, bias_from_bottom

    def forward(self, x: torch.Tensor, other: Optional[torch.Tensor] = None) -> tuple[torch.Tensor]:
        scale = other if self.scale_from_bottom else self.scale
        bias = other if self.bias_from_bottom else self.bias
        out = x
        if scale is not None:
            out = out * _broadcast_view(x, scale, self.axis)
        if bias is not None:
            out = out + _broadcast_view(x, bias, self.axis)
        return (out,)


def build_scale(b: Build) -> ScaleBias:
    # Two bottoms: the second is the scale, and the only blob is the bias (with bias_term).
    two = len(b.bottoms) == 2
    scale = None if two else b.blobs[0]
    bias = b.blobs[-1] if b.layer.scale_param.bias_term else None
    return ScaleBias(b.geometry, scale, bias, scale_from_bottom=two, bias_from_bottom=False)


def build_bias(b: Build) -> ScaleBias:
    two = len(b.bottoms) == 2
    return ScaleBias(b.geometry, None, None if two else b.blobs[0], scale_from_bottom=False, bias_from_bottom=two)
