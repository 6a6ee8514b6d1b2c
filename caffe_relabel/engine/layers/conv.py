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
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

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


class _Im2colConvolution(torch.autograd.Function):
    """A convolution (or its transpose) whose forward and backward both run im2col + GEMM.

    torch picks the backward's kernels again when the backward runs, so a plain
    conv2d would differentiate with oneDNN under a caller's own backward
    (Foolbox, torchattacks); this keeps Caffe's algorithm for both.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], layer: "Conv2d"
                ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.layer, ctx.bias_shape = layer, None if bias is None else list(bias.shape)
        with _im2col_kernels():
            return layer.convolve(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        x, weight = ctx.saved_tensors
        layer: Conv2d = ctx.layer
        with _im2col_kernels():
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, ctx.bias_shape, list(layer.stride), list(layer.pad), list(layer.dilation),
                layer.transposed, [0, 0], layer.group, list(ctx.needs_input_grad[:3]))
        return gx, gw, gb, None


@contextlib.contextmanager
def _onednn_kernels() -> Iterator[None]:
    # oneDNN on whatever the caller set, so that the channels-last layout picks its direct kernels.
    saved_mkldnn = torch.backends.mkldnn.set_flags(True, None, None, None)[0]
    try:
        yield
    finally:
        torch.backends.mkldnn.set_flags(saved_mkldnn, None, None, None)


class _ChannelsLastDepthwise(torch.autograd.Function):
    """A depthwise convolution whose forward and backward both run oneDNN on channels-last tensors.

    Inputs and outputs stay NCHW, as the faithful mode's other layers take them.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], layer: "Conv2d"
                ) -> torch.Tensor:
        x, weight = (t.contiguous(memory_format=torch.channels_last) for t in (x, weight))
        ctx.save_for_backward(x, weight)
        ctx.layer, ctx.bias_shape = layer, None if bias is None else list(bias.shape)
        with _onednn_kernels():
            return layer.convolve(x, weight, bias).contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        x, weight = ctx.saved_tensors
        layer: Conv2d = ctx.layer
        with _onednn_kernels():
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad.contiguous(memory_format=torch.channels_last), x, weight, ctx.bias_shape, list(layer.stride),
                list(layer.pad), list(layer.dilation), False, [0, 0], layer.group, list(ctx.needs_input_grad[:3]))
        return (None if gx is None else gx.contiguous(), None if gw is None else gw.contiguous(), gb, None)


class Conv2d(CaffeLayer):
    transposed = False

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: tuple[int, int],
                 pad: tuple[int, int], dilation: tuple[int, int], group: int, im2col: bool) -> None:
        super().__init__()
        self.add_blob("weight", weight)
        self.add_blob("bias", bias)
        self.stride, self.pad, self.dilation, self.group, self.im2col = stride, pad, dilation, group, im2col
        # One input and one output channel per group (module docstring).
        self.depthwise = not self.transposed and group > 1 and weight.shape[0] == group and weight.shape[1] == 1

    def convolve(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.pad, self.dilation, self.group)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.im2col and self.depthwise:
            return (_ChannelsLastDepthwise.apply(x, self.weight, self.bias, self),)
        if self.im2col:
            return (_Im2colConvolution.apply(x, self.weight, self.bias, self),)
        return (self.convolve(x, self.weight, self.bias),)


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
