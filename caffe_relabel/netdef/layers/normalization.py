"""BatchNorm, Scale, Bias and MVN (batch_norm_layer.cpp, scale_layer.cpp, bias_layer.cpp, mvn_layer.cpp).

Scale and Bias multiply/add a blob (their own parameter, or a second bottom)
broadcast over ``axis`` .. ``axis + num_axes`` of the first bottom; their
geometry is that axis, made non-negative (0 for a scalar blob). A Scale with
two bottoms has no scale parameter: only a bias blob when ``bias_term``.
"""

from __future__ import annotations

from caffe_relabel.netdef.layers.check import LayerCheck, Setup, Shape, constant, filler_or
from caffe_relabel.netdef.layers.table import register


@register("BatchNorm", builder="normalization:build_batch_norm", in_place=True)
def _batch_norm(c: LayerCheck) -> Setup:
    """Geometry: whether the stored statistics are used (Caffe's default in the TEST phase)."""
    p = c.layer.batch_norm_param
    shape = c.with_channels()
    zero = constant(0.0)  # Caffe zeroes mean, variance and factor
    use_global = p.use_global_stats if p.HasField("use_global_stats") else True
    return Setup((shape,), c.params(("batch_norm_param", zero, (shape[1],)), ("batch_norm_param", zero, (shape[1],)),
                                    ("batch_norm_param", zero, (1,))), use_global)


def _blob(c: LayerCheck, kind: str, axis_field: int, num_axes: int) -> tuple[int, Shape]:
    """(axis, shape) of the scale/bias blob: the second bottom's, or bottom[axis:axis + num_axes]."""
    c.counts((1, 2), (1, 1))
    shape = c.bottoms[0]
    if len(c.bottoms) == 2:
        blob = c.bottoms[1]
        axis = 0 if not blob else c.axis(axis_field, shape, f"{kind}.axis")
    else:
        axis = c.axis(axis_field, shape, f"{kind}.axis")
        if num_axes < -1 or (num_axes >= 0 and axis + num_axes > len(shape)):
            raise c.error(f"{kind}.num_axes", f"num_axes {num_axes} from axis {axis} exceeds the {len(shape)} axes "
                                              f"of the bottom {list(shape)}")
        blob = tuple(shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes])
        axis = axis if blob else 0
    if tuple(shape[axis:axis + len(blob)]) != tuple(blob):
        raise c.error("bottom", f"the {kind.split('_')[0]} blob shape {list(blob)} does not match the bottom "
                                f"{list(shape)} from axis {axis}")
    return axis, tuple(blob)


@register("Scale", builder="normalization:build_scale", in_place=True)
def _scale(c: LayerCheck) -> Setup:
    p = c.layer.scale_param
    axis, blob = _blob(c, "scale_param", p.axis, p.num_axes)
    # The scale's default filler is the constant 1 (scale_layer.cpp).
    specs = [] if len(c.bottoms) == 2 else [("scale_param.filler", filler_or(p.HasField("filler"), p.filler, 1.0), blob)]
    if p.bias_term:
        specs.append(("scale_param.bias_filler", p.bias_filler, blob))
    return Setup((c.bottoms[0],), c.params(*specs), axis)


@register("Bias", builder="normalization:build_bias", in_place=True)
def _bias(c: LayerCheck) -> Setup:
    p = c.layer.bias_param
    axis, blob = _blob(c, "bias_param", p.axis, p.num_axes)
    specs = [] if len(c.bottoms) == 2 else [("bias_param.filler", p.filler, blob)]
    return Setup((c.bottoms[0],), c.params(*specs), axis)


@register("MVN", builder="normalization:build_mvn")
def _mvn(c: LayerCheck) -> Setup:
    """mvn_layer.cpp reads the blob as num x channels x height x width (Caffe's legacy accessors: at
    most 4 axes, missing ones are 1) and its top has those 4 axes. Geometry: the normalised group
    (per sample, or per sample and channel) is given by ``across_channels``, read by the builder."""
    shape = c.one()
    if len(shape) > 4:
        raise c.error("bottom", f"MVN reads num/channels/height/width: expected at most 4 axes, got {list(shape)}")
    return Setup((tuple(shape) + (1,) * (4 - len(shape)),))
