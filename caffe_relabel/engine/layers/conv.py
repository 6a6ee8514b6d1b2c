"""Convolution and Deconvolution (2-D, with group and dilation), as base_conv_layer.cpp / conv_layer.cpp /
deconv_layer.cpp.

The geometry (kernel, stride, pad, dilation, group) and the blob shapes come
from the layer's rule (caffe_relabel/netdef/layers/conv.py). In the faithful mode on
CPU both passes run Caffe's algorithm: im2col, one GEMM per group, col2im
(torch's slow_conv2d family), not oneDNN's direct convolutions, which sum in
another order (engine.device.uses_im2col has the measured difference).

Depthwise convolutions (group = input channels = output channels) are the
exception: im2col makes one GEMM of a single output row per channel, so the
per-group overhead dominates (N=8, C=144, 56x56, 5x5, forward + input
gradient: 1.15 s against 12 ms for oneDNN, max abs difference 6.7e-6). They
run oneDNN in the channels-last layout, forward and backward (torch 2.13's
NCHW grouped backward is wrong, engine.device.uses_channels_last). Each
output is a sum of only kh x kw products, so the order matters little.
Measured against pycaffe and a float64 evaluation (bench/README.md,
"Depthwise convolutions in the faithful mode"; MobileNet v1/v2,
EfficientNet-Lite0): logits within 5.5e-7 relative, sign agreement with
Caffe 99.998-100% on the median input, flips against float64 0.0008-0.040%
(im2col 0.000-0.034%, Caffe 0.002-0.021%), inside the thresholds of
tests/engine/test_zoo_architectures.py and test_zoo_fidelity.py.

Their outputs (and input gradients) stay channels-last, so the layers of a
MobileNet block pass channels-last tensors along instead of copying the
largest activations of the net four times a step: element-wise layers keep
any layout, and a 1 x 1 convolution (stride 1, no pad, one group) on a
channels-last input is Caffe's GEMM with the operands transposed -- the same
sum over input channels per output, (N H W x C_in) times (C_in x C_out), then
the bias added -- which leaves its output channels-last too. The net hands
every other layer an NCHW copy (``CaffeNet._run``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Optional

import torch
import torch.nn.functional as F

from caffe_relabel.netdef.layers.conv import ConvGeometry
from caffe_relabel.engine.spec import Build, CaffeLayer


@contextlib.contextmanager
def _im2col_kernels() -> Iterator[None]:
    # With oneDNN and NNPACK off, torch's CPU convolution is im2col + GEMM for every
    # geometry. set_flags, not flags(): the latter also sets oneDNN's TF32 switch and warns.
    saved_mkldnn = torch.backends.mkldnn.set_flags(False, None, None, None)[0]
    saved_nnpack = torch.backends.nnpack.set_flags(False)[0]
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(saved_mkldnn, None, None, None)
        torch.backends.nnpack.set_flags(saved_nnpack)


@contextlib.contextmanager
def _onednn_kernels() -> Iterator[None]:
    # oneDNN on whatever the caller set, so that the channels-last layout picks its direct kernels.
    saved_mkldnn = torch.backends.mkldnn.set_flags(True, None, None, None)[0]
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(saved_mkldnn, None, None, None)


@dataclass(frozen=True)
class _Kernels:
    """Which kernels both passes of a convolution run (torch's flags around them) and the layout they take."""

    flags: Callable[[], ContextManager[None]]
    layout: torch.memory_format


#: Caffe's algorithm: im2col, one GEMM per group, col2im.
IM2COL = _Kernels(_im2col_kernels, torch.contiguous_format)
#: Depthwise layers in the faithful mode: oneDNN's direct kernels on channels-last copies (module docstring).
ONEDNN_CHANNELS_LAST = _Kernels(_onednn_kernels, torch.channels_last)


class _PinnedConvolution(torch.autograd.Function):
    """A convolution (or its transpose) whose forward and backward both run the given kernels.

    torch picks the backward's kernels again when the backward runs, so a plain
    conv2d would differentiate with other kernels under a caller's own backward
    (Foolbox, torchattacks); this keeps the chosen algorithm for both. The output
    and the input gradient come in the kernels' layout.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], layer: "Conv2d",
                kernels: _Kernels) -> torch.Tensor:
        x, weight = (t.contiguous(memory_format=kernels.layout) for t in (x, weight))
        ctx.save_for_backward(x, weight)
        ctx.layer, ctx.kernels, ctx.bias_shape = layer, kernels, None if bias is None else list(bias.shape)
        with kernels.flags():
            return layer.convolve(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        x, weight = ctx.saved_tensors
        layer: Conv2d = ctx.layer
        with ctx.kernels.flags():
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad.contiguous(memory_format=ctx.kernels.layout), x, weight, ctx.bias_shape, list(layer.stride),
                list(layer.pad), list(layer.dilation), layer.transposed, [0, 0], layer.group,
                list(ctx.needs_input_grad[:3]))
        return gx, gw, gb, None, None


class _ChannelsLastPointwise(torch.autograd.Function):
    """A 1 x 1 convolution (stride 1, no pad, one group) on a channels-last input, as one GEMM each way.

    Caffe computes top (C_out x HW) = W (C_out x C_in) . bottom (C_in x HW) per image, then adds
    the bias; on the N H W x C_in view of a channels-last tensor the same sums are
    bottom^T . W^T, and the input gradient grad . W (Caffe: W^T . top_diff).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        n, _, h, w = x.shape
        w2 = weight.reshape(weight.shape[0], -1)
        ctx.save_for_backward(w2)
        ctx.in_shape = x.shape
        out = torch.mm(x.permute(0, 2, 3, 1).reshape(n * h * w, -1), w2.t())
        if bias is not None:
            out.add_(bias)  # after the GEMM, as Caffe's bias GEMM adds it
        return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], None, None]:  # type: ignore[override]
        (w2,) = ctx.saved_tensors
        n, c, h, w = ctx.in_shape
        g = grad.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(n * h * w, -1)
        return torch.mm(g, w2).reshape(n, h, w, c).permute(0, 3, 1, 2), None, None


class Conv2d(CaffeLayer):
    transposed = False
    layout_agnostic = True  # takes NCHW or channels-last (module docstring)

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: tuple[int, int],
                 pad: tuple[int, int], dilation: tuple[int, int], group: int, im2col: bool) -> None:
        super().__init__()
        self.add_blob("weight", weight)
        self.add_blob("bias", bias)
        self.stride, self.pad, self.dilation, self.group, self.im2col = stride, pad, dilation, group, im2col
        # One input and one output channel per group (module docstring).
        self.depthwise = not self.transposed and group > 1 and weight.shape[0] == group and weight.shape[1] == 1
        self.pointwise = (not self.transposed and group == 1 and tuple(weight.shape[2:]) == (1, 1)
                          and stride == (1, 1) and pad == (0, 0))

    def convolve(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.pad, self.dilation, self.group)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.im2col:
            if self.pointwise and _channels_last_only(x):
                return (_ChannelsLastPointwise.apply(x, self.weight, self.bias),)
            kernels = ONEDNN_CHANNELS_LAST if self.depthwise else IM2COL
            return (_PinnedConvolution.apply(x, self.weight, self.bias, self, kernels),)
        return (self.convolve(x, self.weight, self.bias),)


def _channels_last_only(x: torch.Tensor) -> bool:
    """Channels-last strides that are not also NCHW ones (as a 1 x 1 image's or one channel's are)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def build_convolution(b: Build) -> Conv2d:
    g: ConvGeometry = b.geometry
    return Conv2d(b.blobs[0], b.blobs[1] if len(b.blobs) == 2 else None, g.stride, g.pad, g.dilation, g.group,
                  b.im2col)


class ConvTranspose2d(Conv2d):
    """Caffe's Deconvolution is the convolution's backward-data pass: conv_transpose2d, weights
    in x (out / group) x kh x kw in both."""

    transposed = True

    def convolve(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv_transpose2d(x, weight, bias, self.stride, self.pad, 0, self.group, self.dilation)


def build_deconvolution(b: Build) -> ConvTranspose2d:
    g: ConvGeometry = b.geometry
    return ConvTranspose2d(b.blobs[0], b.blobs[1] if len(b.blobs) == 2 else None, g.stride, g.pad, g.dilation,
                           g.group, b.im2col)
