"""InnerProduct: flattens every axis from ``axis`` on (inner_product_layer.cpp).

Weights are num_output x K (K = the flattened size), or K x num_output with
``transpose: true``; the bias is num_output. Geometry: the axis, made non-negative.
"""

from __future__ import annotations

from caffe_relabel.netdef.layers.check import LayerCheck, Setup, count
from caffe_relabel.netdef.layers.table import register


@register("InnerProduct", builder="inner_product:build_inner_product")
def _inner_product(c: LayerCheck) -> Setup:
    p = c.layer.inner_product_param
    shape = c.one()
    axis = c.axis(p.axis, shape, "inner_product_param.axis")
    c.int_field("inner_product_param.num_output", [p.num_output], low=1)
    k = count(shape[axis:])
    specs = [("inner_product_param.weight_filler", p.weight_filler, (k, p.num_output) if p.transpose else (p.num_output, k))]
    if p.bias_term:
        specs.append(("inner_product_param.bias_filler", p.bias_filler, (p.num_output,)))
    return Setup((tuple(shape[:axis]) + (p.num_output,),), c.params(*specs), axis)
