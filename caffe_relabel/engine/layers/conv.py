"""Convolution (2-D, with group, dilation, pad/stride/kernel and their _h/_w forms).

Geometry and checks follow base_conv_layer.cpp: kernel_size/pad/stride/
dilation give one value for both axes or one per axis, or the _h/_w fields
instead (not both); output = (in + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1,
rounded down. Weights: num_output x (channels / group) x kh x kw; bias: num_output.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ...proto.caffe_relabel_caffe_pb2 import ConvolutionParameter
from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer


def _pair(ctx: BuildContext, p: ConvolutionParameter, name: str, default: Optional[int]) -> tuple[int, int]:
    """One of kernel_size/pad/stride/dilation as (h, w), with Caffe's rules."""
    values: Sequence[int] = getattr(p, name if name != "kernel" else "kernel_size")
    has_hw = name != "dilation" and (p.HasField(f"{name}_h") or p.HasField(f"{name}_w"))
    field = f"convolution_param.{'kernel_size' if name == 'kernel' else name}"
    if has_hw:
        if len(values):
            raise ctx.error(field, f"expected {field} OR {name}_h/{name}_w, not both")
        return getattr(p, f"{name}_h"), getattr(p, f"{name}_w")
    if len(values) == 0:
        if default is None:
            raise ctx.error(field, "is required (or kernel_h and kernel_w)")
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ctx.error(field, f"expected 1 or 2 values for a 2-D convolution, got {len(values)}")


class Conv2d(CaffeLayer):
    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: tuple[int, int],
                 pad: tuple[int, int], dilation: tuple[int, int], group: int) -> None:
        super().__init__()
        self.add_blob("weight", weight)
        self.add_blob("bias", bias)
        self.stride, self.pad, self.dilation, self.group = stride, pad, dilation, group

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation, self.group),)


@register("Convolution")
def build_convolution(ctx: BuildContext) -> Built:
    p = ctx.layer.convolution_param
    shape = ctx.one_to_one()
    axis = ctx.axis(p.axis, len(shape), "convolution_param.axis")
    if axis != 1 or len(shape) != 4:
        raise ctx.unsupported(
            "convolution_param.axis", f"only 2-D convolution over an N x C x H x W blob is supported, got shape "
            f"{list(shape)} with axis {p.axis}"
        )
    kernel = _pair(ctx, p, "kernel", None)
    stride = _pair(ctx, p, "stride", 1)
    pad = _pair(ctx, p, "pad", 0)
    dilation = _pair(ctx, p, "dilation", 1)
    for name, value in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(value) <= 0:
            raise ctx.error(f"convolution_param.{name}", f"expected positive values, got {list(value)}")
    channels = shape[1]
    if p.num_output <= 0:
        raise ctx.error("convolution_param.num_output", f"expected a positive number of outputs, got {p.num_output}")
    if p.group <= 0 or channels % p.group or p.num_output % p.group:
        raise ctx.error(
            "convolution_param.group",
            f"expected group {p.group} to divide both the input channels ({channels}) and num_output ({p.num_output})",
        )
    out = []
    for size, k, s, pd, d in zip(shape[2:], kernel, stride, pad, dilation):
        extent = d * (k - 1) + 1
        if size + 2 * pd < extent:
            raise ctx.error("convolution_param.kernel_size", f"dilated kernel {extent} exceeds the padded input {size} + 2 x {pd}")
        out.append((size + 2 * pd - extent) // s + 1)
    shapes = [(p.num_output, channels // p.group) + kernel]
    fillers = [p.weight_filler if p.HasField("weight_filler") else None]
    if p.bias_term:
        shapes.append((p.num_output,))
        fillers.append(p.bias_filler if p.HasField("bias_filler") else None)
    blobs = ctx.params(shapes, fillers)
    module = Conv2d(blobs[0], blobs[1] if p.bias_term else None, stride, pad, dilation, p.group)
    return Built(module, [(shape[0], p.num_output, out[0], out[1])])
