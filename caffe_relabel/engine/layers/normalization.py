"""BatchNorm, Scale, Bias and MVN (batch_norm_layer.cpp, scale_layer.cpp, bias_layer.cpp, mvn_layer.cpp).

BatchNorm stores mean, variance and a scale factor s (third blob): with
global stats it uses mean / s and variance / s (0 when s == 0) and computes
(x - mean) / sqrt(variance + eps) -- no affine part (that is a Scale layer).
Scale and Bias multiply/add a blob (their own parameter, or a second bottom)
broadcast over ``axis`` .. ``axis + num_axes`` of the first bottom. The
axis, the blob shapes and which blobs exist come from the rules
(caffe_relabel/netdef/layers/normalization.py). MVN subtracts the mean of each
sample (or of each sample's channel) and divides by (std + eps), with
Caffe's own backward (see :class:`_MVNFunction`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from caffe_relabel.engine.spec import Build, CaffeLayer


class BatchNorm(CaffeLayer):
    def __init__(self, mean: torch.Tensor, variance: torch.Tensor, factor: torch.Tensor, use_global_stats: bool,
                 eps: float) -> None:
        super().__init__()
        self.add_blob("mean", mean)
        self.add_blob("variance", variance)
        self.add_blob("scale_factor", factor)
        self.use_global_stats, self.eps = use_global_stats, eps
        # Element-wise with stored statistics; batch statistics are sums.
        self.layout_agnostic = use_global_stats

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

    layout_agnostic = True

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


class _MVNFunction(torch.autograd.Function):
    """y = (x - mean) / (std + eps) over the last axis of a rows x values view, with mvn_layer.cpp's
    backward: dx = (dy - mean(dy) - y mean(y dy)) / (std + eps). Caffe drops the eps from the
    variance term (autograd would keep it: not Caffe's gradient once eps matters), and stays finite
    where a row is constant (std 0), where autograd's sqrt would give NaN."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float, normalize: bool) -> torch.Tensor:  # type: ignore[override]
        y = x - x.mean(dim=1, keepdim=True)
        if not normalize:
            ctx.normalize = False
            return y
        std = torch.sqrt((y * y).mean(dim=1, keepdim=True)) + eps
        y = y / std
        ctx.normalize = True
        ctx.save_for_backward(y, std)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor) -> tuple[Optional[torch.Tensor], None, None]:  # type: ignore[override]
        if not ctx.normalize:
            return dy - dy.mean(dim=1, keepdim=True), None, None
        y, std = ctx.saved_tensors
        mixed = y * (y * dy).sum(dim=1, keepdim=True) + dy.sum(dim=1, keepdim=True)
        return (dy - mixed / dy.shape[1]) / std, None, None


class MVN(CaffeLayer):
    def __init__(self, across_channels: bool, normalize_variance: bool, eps: float) -> None:
        super().__init__()
        self.across_channels, self.normalize_variance, self.eps = across_channels, normalize_variance, eps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # Caffe's top is num x channels x height x width (missing axes are 1).
        shape = tuple(x.shape) + (1,) * (4 - x.dim())
        rows = shape[0] if self.across_channels else shape[0] * shape[1]
        y = _MVNFunction.apply(x.reshape(rows, -1), self.eps, self.normalize_variance)
        return (y.reshape(shape),)


def build_mvn(b: Build) -> MVN:
    p = b.layer.mvn_param
    return MVN(p.across_channels, p.normalize_variance, float(np.float32(p.eps)))
