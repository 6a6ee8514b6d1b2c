"""Convolution and Deconvolution (2-D, with group, dilation, pad/stride/kernel and their _h/_w forms).

Geometry and checks follow base_conv_layer.cpp: kernel_size/pad/stride/
dilation give one value for both axes or one per axis, or the _h/_w fields
instead (not both); output = (in + 2 pad - (dilation (kernel - 1) + 1)) / stride + 1,
rounded down. Weights: num_output x (channels / group) x kh x kw; bias: num_output.
Deconvolution (deconv_layer.cpp) reverses the dimensions: output = stride (in - 1)
+ dilation (kernel - 1) + 1 - 2 pad, weights channels x (num_output / group) x kh x kw,
and Caffe's column buffer spans the input's positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import ConvolutionParameter
from caffe_relabel.netdef.layers.check import LayerCheck, Setup
from caffe_relabel.netdef.layers.table import register


@dataclass(frozen=True)
class ConvGeometry:
    """(h, w) pairs and the group count the engine convolves with."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    group: int


def _pair(c: LayerCheck, p: ConvolutionParameter, name: str, default: Optional[int]) -> tuple[int, int]:
    values = list(getattr(p, "kernel_size" if name == "kernel" else name))
    field = f"convolution_param.{'kernel_size' if name == 'kernel' else name}"
    if name != "dilation" and (p.HasField(f"{name}_h") or p.HasField(f"{name}_w")):
        if values:
            raise c.error(field, f"expected {field} OR {name}_h/{name}_w, not both")
        pair = (getattr(p, f"{name}_h"), getattr(p, f"{name}_w"))
    elif not values:
        if default is None:
            raise c.error(field, "is required (or kernel_h and kernel_w)")
        pair = (default, default)
    elif len(values) <= 2:
        pair = (values[0], values[-1])
    else:
        raise c.error(field, f"expected 1 or 2 values for a 2-D convolution, got {len(values)}")
    c.int_field(field, pair, low=0 if name == "pad" else 1)
    return pair


@register("Convolution", builder="conv:build_convolution")
def _convolution(c: LayerCheck) -> Setup:
    return _conv(c, reverse=False)


@register("Deconvolution", builder="conv:build_deconvolution")
def _deconvolution(c: LayerCheck) -> Setup:
    return _conv(c, reverse=True)


def _conv(c: LayerCheck, reverse: bool) -> Setup:
    p = c.layer.convolution_param
    shape = c.one()
    if len(shape) != 4 or c.axis(p.axis, shape, "convolution_param.axis") != 1:
        raise c.unsupported("convolution_param.axis", f"only 2-D convolution over an N x C x H x W blob is supported, "
                                                      f"got shape {list(shape)} with axis {p.axis}")
    g = ConvGeometry(_pair(c, p, "kernel", None), _pair(c, p, "stride", 1), _pair(c, p, "pad", 0),
                     _pair(c, p, "dilation", 1), p.group)
    c.int_field("convolution_param.num_output", [p.num_output], low=1)
    c.int_field("convolution_param.group", [p.group], low=1)
    if shape[1] % p.group or p.num_output % p.group:
        raise c.error("convolution_param.group", f"expected group {p.group} to divide both the input channels "
                                                 f"({shape[1]}) and num_output ({p.num_output})")
    out = []
    for size, k, s, pd, d in zip(shape[2:], g.kernel, g.stride, g.pad, g.dilation):
        c.int_field("convolution_param.pad", [size + 2 * pd])  # Caffe's int arithmetic
        extent = d * (k - 1) + 1
        if reverse:
            length = s * (size - 1) + extent - 2 * pd
            if length < 1:
                raise c.error("convolution_param.pad", f"pad {pd} leaves no output: stride {s} x ({size} - 1) + "
                                                       f"dilated kernel {extent} - 2 x {pd} = {length}")
            out.append(length)
        else:
            if size + 2 * pd < extent:
                raise c.error("convolution_param.kernel_size", f"dilated kernel {extent} exceeds the padded input "
                                                               f"{size} + 2 x {pd}")
            out.append((size + 2 * pd - extent) // s + 1)
    # Caffe's im2col buffer: every kernel window of every position of the convolution's output
    # (for Deconvolution, of its input).
    columns, positions = (p.num_output, shape[2:]) if reverse else (shape[1], out)
    c.internal("convolution_param.kernel_size", "im2col buffer",
               (columns * g.kernel[0] * g.kernel[1], positions[0], positions[1]))
    weight = (shape[1], p.num_output // p.group) if reverse else (p.num_output, shape[1] // p.group)
    specs = [("convolution_param.weight_filler", p.weight_filler, weight + g.kernel)]
    if p.bias_term:
        specs.append(("convolution_param.bias_filler", p.bias_filler, (p.num_output,)))
    return Setup(((shape[0], p.num_output, out[0], out[1]),), c.params(*specs), g)
