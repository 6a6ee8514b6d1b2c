"""Softmax over one axis (softmax_layer.cpp). Geometry: the axis, made non-negative."""

from __future__ import annotations

from caffe_relabel.netdef.layers.check import LayerCheck, Setup
from caffe_relabel.netdef.layers.table import register


@register("Softmax", builder="softmax:build_softmax", in_place=True)
def _softmax(c: LayerCheck) -> Setup:
    shape = c.one()
    return Setup((shape,), geometry=c.axis(c.layer.softmax_param.axis, shape, "softmax_param.axis"))
