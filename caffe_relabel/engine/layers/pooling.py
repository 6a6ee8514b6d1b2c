"""Pooling (MAX, AVE, global), exactly as pooling_layer.cpp.

Caffe's rules, all of which differ from a naive framework call somewhere:
the output size rounds UP by default (round_mode CEIL); with padding, a last
window that would start in the padding is dropped; AVE divides by the window
clipped to the padded input (not to the image); MAX takes the FIRST maximum
in scan order (the gradient goes there on ties; torch's CPU and CUDA kernels
also keep the first, and padding never wins because Caffe's windows are
clipped to the image, which -inf padding reproduces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...proto.caffe_relabel_caffe_pb2 import PoolingParameter
from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer


@dataclass(frozen=True)
class PoolGeometry:
    """Kernel, stride, pad and output size per spatial axis (h, w)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Caffe's pooled size: rounded, then the last window dropped if it starts in the padding."""
    span = size + 2 * pad - kernel
    out = (math.ceil(span / stride) if ceil else math.floor(span / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def geometry(ctx: BuildContext, p: PoolingParameter, height: int, width: int) -> PoolGeometry:
    """Validate the pooling fields as PoolingLayer::LayerSetUp does and size the output."""
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
            raise ctx.error("pooling_param.kernel_size", "with global_pooling the kernel size cannot be specified")
        kernel = (height, width)
    elif p.HasField("kernel_size") == (p.HasField("kernel_h") and p.HasField("kernel_w")):
        raise ctx.error("pooling_param.kernel_size", "expected kernel_size OR both kernel_h and kernel_w")
    else:
        kernel = (p.kernel_size, p.kernel_size) if p.HasField("kernel_size") else (p.kernel_h, p.kernel_w)
    if min(kernel) <= 0:
        raise ctx.error("pooling_param.kernel_size", f"expected a positive kernel, got {list(kernel)}")
    if p.HasField("pad") and (p.HasField("pad_h") or p.HasField("pad_w")):
        raise ctx.error("pooling_param.pad", "expected pad OR pad_h and pad_w")
    if p.HasField("pad_h") != p.HasField("pad_w"):
        raise ctx.error("pooling_param.pad_h", "expected both pad_h and pad_w")
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad, p.pad)
    if p.HasField("stride") and (p.HasField("stride_h") or p.HasField("stride_w")):
        raise ctx.error("pooling_param.stride", "expected stride OR stride_h and stride_w")
    if p.HasField("stride_h") != p.HasField("stride_w"):
        raise ctx.error("pooling_param.stride_h", "expected both stride_h and stride_w")
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride, p.stride)
    if min(stride) <= 0:
        raise ctx.error("pooling_param.stride", f"expected a positive stride, got {list(stride)}")
    if p.global_pooling and (pad != (0, 0) or stride != (1, 1)):
        raise ctx.error("pooling_param.global_pooling", "with global_pooling only pad 0 and stride 1 are allowed")
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise ctx.error("pooling_param.pad", f"expected pad {list(pad)} smaller than the kernel {list(kernel)}")
    ceil = p.round_mode == PoolingParameter.CEIL
    out = []
    for size, k, s, pd, axis in zip((height, width), kernel, stride, pad, "hw"):
        if k > size + 2 * pd:
            raise ctx.error("pooling_param.kernel_size", f"kernel {k} is larger than the padded input ({size} + 2 x {pd})")
        n = pooled_size(size, k, s, pd, ceil)
        if (n - 1) * s - pd >= size:
            # Only without padding and with stride > kernel: Caffe then emits
            # -FLT_MAX (MAX) or divides by a non-positive count (AVE).
            raise ctx.unsupported(
                "pooling_param.stride", f"the last {axis} window starts outside the input (size {size}, kernel {k}, stride {s})"
            )
        out.append(n)
    return PoolGeometry(kernel, stride, pad, (out[0], out[1]))


def _native_sizes(g: PoolGeometry, height: int, width: int, ceil: bool) -> tuple[int, int]:
    # torch's rule (pooling_output_shape) drops the last window whatever the pad.
    sizes = []
    for size, k, s, p in zip((height, width), g.kernel, g.stride, g.pad):
        n = (size + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
        if ceil and (n - 1) * s >= size + p:
            n -= 1
        sizes.append(n)
    return sizes[0], sizes[1]


def _divisors(g: PoolGeometry, height: int, width: int, device: torch.device) -> torch.Tensor:
    """AVE pool_size per output cell: the window clipped to the padded input."""
    rows = [min(i * g.stride[0] - g.pad[0] + g.kernel[0], height + g.pad[0]) - (i * g.stride[0] - g.pad[0])
            for i in range(g.out[0])]
    cols = [min(j * g.stride[1] - g.pad[1] + g.kernel[1], width + g.pad[1]) - (j * g.stride[1] - g.pad[1])
            for j in range(g.out[1])]
    return torch.outer(torch.tensor(rows, dtype=torch.float32), torch.tensor(cols, dtype=torch.float32)).to(device)


class Pool2d(CaffeLayer):
    """Caffe pooling over the last two axes of an N x C x H x W blob."""

    def __init__(self, method: int, g: PoolGeometry, height: int, width: int, ceil: bool, device: torch.device) -> None:
        super().__init__()
        self.method = method
        self.g = g
        # torch's padded pooling matches Caffe whenever it yields the same
        # output size and accepts the padding (torch requires pad <= kernel / 2).
        self.native = (_native_sizes(g, height, width, ceil) == g.out
                       and all(2 * p <= k for p, k in zip(g.pad, g.kernel)))
        self.ceil = ceil
        if not self.native:
            # Explicit padding up to the extent the windows cover, then unpadded pooling.
            right = [(n - 1) * s + k - size - p for n, s, k, size, p in zip(g.out, g.stride, g.kernel, (height, width), g.pad)]
            self.padding = (g.pad[1], right[1], g.pad[0], right[0])
            if method == PoolingParameter.AVE:
                self.register_buffer("divisor", _divisors(g, height, width, device), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        g = self.g
        if self.method == PoolingParameter.MAX:
            if self.native:
                return (F.max_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil),)
            return (F.max_pool2d(F.pad(x, self.padding, value=float("-inf")), g.kernel, g.stride),)
        if self.native:
            return (F.avg_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil, count_include_pad=True),)
        sums = F.avg_pool2d(F.pad(x, self.padding), g.kernel, g.stride, divisor_override=1)
        return (sums / self.divisor,)


def pool_module(ctx: BuildContext, p: PoolingParameter, shape: tuple[int, ...]) -> tuple[Pool2d, tuple[int, ...]]:
    """A Caffe pooling module for a 4-axis ``shape`` and its output shape (also used by LRN)."""
    if len(shape) != 4:
        raise ctx.error("bottom", f"expected a 4-axis (N x C x H x W) input, got shape {list(shape)}")
    if p.pool == PoolingParameter.STOCHASTIC:
        raise ctx.unsupported("pooling_param.pool", "STOCHASTIC pooling is random in training and not implemented on CPU by Caffe")
    g = geometry(ctx, p, shape[2], shape[3])
    module = Pool2d(p.pool, g, shape[2], shape[3], p.round_mode == PoolingParameter.CEIL, ctx.device)
    return module, (shape[0], shape[1]) + g.out


@register("Pooling")
def build_pooling(ctx: BuildContext) -> Built:
    ctx.expect_bottoms(1)
    if len(ctx.layer.top) > 1:
        raise ctx.unsupported("top", "the second (max-index mask) top of Pooling is not supported")
    ctx.expect_tops(1)
    module, out = pool_module(ctx, ctx.layer.pooling_param, ctx.bottom_shapes[0])
    return Built(module, [out])
