"""Reduction (reduction_layer.cpp) and ArgMax (argmax_layer.cpp).

Reduction sums (SUM, ASUM, SUMSQ, MEAN, times ``coeff``) every axis from
``axis`` on; only axes after the batch are accepted, so that each sample
keeps its own output. ArgMax is forward only (Caffe has no backward): it may
only end the net, where a classifier reads its bottom (see
:mod:`caffe_relabel.netdef.layers.head`).
"""

from __future__ import annotations

from caffe_relabel.netdef.layers.check import LayerCheck, Setup, count
from caffe_relabel.netdef.layers.table import register


@register("Reduction", builder="reduction:build_reduction")
def _reduction(c: LayerCheck) -> Setup:
    """Geometry: the first reduced axis, made non-negative."""
    p = c.layer.reduction_param
    shape = c.one()
    axis = c.axis(p.axis, shape, "reduction_param.axis")
    if axis == 0:
        raise c.unsupported("reduction_param.axis", "reducing from axis 0 (Caffe's default) sums over the samples "
                                                    "of a batch; expected axis 1 or later")
    return Setup((tuple(shape[:axis]),), geometry=axis)


@register("ArgMax", builder="reduction:build_argmax", backward=False)
def _argmax(c: LayerCheck) -> Setup:
    """Top shape as ArgMaxLayer::Reshape. Geometry: the axis (None: the flattened sample)."""
    p = c.layer.argmax_param
    shape = c.one()
    if p.top_k < 1:
        raise c.error("argmax_param.top_k", f"expected at least 1, got {p.top_k}")
    if p.HasField("axis"):
        axis = c.axis(p.axis, shape, "argmax_param.axis")
        if p.top_k > shape[axis]:
            raise c.error("argmax_param.top_k", f"top_k {p.top_k} exceeds axis {axis} of size {shape[axis]}")
        top = list(shape)
        top[axis] = p.top_k
        return Setup((tuple(top),), geometry=axis)
    if p.top_k > count(shape[1:]):
        raise c.error("argmax_param.top_k", f"top_k {p.top_k} exceeds the {count(shape[1:])} values of a sample")
    top = [1] * max(len(shape), 3)
    top[0], top[1], top[2] = shape[0], 2 if p.out_max_val else 1, p.top_k
    return Setup((tuple(top),), geometry=None)
