"""BatchNorm, Scale and Bias (batch_norm_layer.cpp, scale_layer.cpp, bias_layer.cpp).

BatchNorm stores mean, variance and a scale factor s (third blob): with
global stats it uses mean / s and variance / s (0 when s == 0) and computes
(x - mean) / sqrt(variance + eps) -- no affine part (that is a Scale layer).
Scale and Bias multiply/add a blob (their own parameter, or a second bottom)
broadcast over ``axis`` .. ``axis + num_axes`` of the first bottom.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ...proto.caffe_relabel_caffe_pb2 import FillerParameter
from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer, Shape


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


@register("BatchNorm")
def build_batch_norm(ctx: BuildContext) -> Built:
    p = ctx.layer.batch_norm_param
    shape = ctx.one_to_one()
    channels = 1 if len(shape) == 1 else shape[1]
    # Caffe defaults use_global_stats to (phase == TEST); the engine runs the TEST phase.
    use_global = p.use_global_stats if p.HasField("use_global_stats") else True
    zero = FillerParameter(type="constant", value=0.0)
    mean, variance, factor = ctx.params([(channels,), (channels,), (1,)], [zero, zero, zero])
    return Built(BatchNorm(mean, variance, factor, use_global, float(p.eps)), [shape])


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


def _blob_shape(ctx: BuildContext, kind: str, axis_field: int, num_axes: int) -> tuple[int, Shape]:
    """(axis, shape) of the scale/bias blob: the second bottom's, or bottom[axis:axis + num_axes]."""
    shape = ctx.bottom_shapes[0]
    if len(ctx.bottom_shapes) == 2:
        blob = ctx.bottom_shapes[1]
        axis = 0 if len(blob) == 0 else ctx.axis(axis_field, len(shape), f"{kind}.axis")
    else:
        axis = ctx.axis(axis_field, len(shape), f"{kind}.axis")
        if num_axes < -1 or (num_axes >= 0 and axis + num_axes > len(shape)):
            raise ctx.error(f"{kind}.num_axes", f"num_axes {num_axes} from axis {axis} exceeds the {len(shape)} axes "
                                                f"of the bottom {list(shape)}")
        blob = tuple(shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes])
        if len(blob) == 0:
            axis = 0
    if tuple(shape[axis:axis + len(blob)]) != tuple(blob):
        raise ctx.error("bottom", f"the {kind.split('_')[0]} blob shape {list(blob)} does not match the bottom "
                                  f"{list(shape)} from axis {axis}")
    return axis, tuple(blob)


def _filler(has: bool, filler: FillerParameter, default: float) -> FillerParameter:
    return filler if has else FillerParameter(type="constant", value=default)


@register("Scale")
def build_scale(ctx: BuildContext) -> Built:
    ctx.expect_bottoms(1, 2)
    ctx.expect_tops(1)
    p = ctx.layer.scale_param
    axis, blob = _blob_shape(ctx, "scale_param", p.axis, p.num_axes)
    shapes: list[Shape] = []
    fillers: list[FillerParameter] = []
    two = len(ctx.bottom_shapes) == 2
    if not two:
        # Scale's default filler is the constant 1 (scale_layer.cpp).
        shapes.append(blob)
        fillers.append(_filler(p.HasField("filler"), p.filler, 1.0))
    if p.bias_term:
        shapes.append(blob)
        fillers.append(_filler(p.HasField("bias_filler"), p.bias_filler, 0.0))
    blobs: Sequence[torch.Tensor] = ctx.params(shapes, fillers)
    scale = None if two else blobs[0]
    bias = blobs[-1] if p.bias_term else None
    return Built(ScaleBias(axis, scale, bias, scale_from_bottom=two, bias_from_bottom=False), [ctx.bottom_shapes[0]])


@register("Bias")
def build_bias(ctx: BuildContext) -> Built:
    ctx.expect_bottoms(1, 2)
    ctx.expect_tops(1)
    p = ctx.layer.bias_param
    axis, blob = _blob_shape(ctx, "bias_param", p.axis, p.num_axes)
    two = len(ctx.bottom_shapes) == 2
    bias = None
    if not two:
        (bias,) = ctx.params([blob], [_filler(p.HasField("filler"), p.filler, 0.0)])
    return Built(ScaleBias(axis, None, bias, scale_from_bottom=False, bias_from_bottom=two), [ctx.bottom_shapes[0]])
