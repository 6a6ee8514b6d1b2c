"""Local response normalization (lrn_layer.cpp): across channels, or within one.

WITHIN_CHANNEL is Caffe's composition Power(x^2) -> AVE Pooling (pad
(size-1)/2) -> Power -> product; its geometry is that pooling's window.
"""

from __future__ import annotations

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LRNParameter, PoolingParameter
from caffe_relabel.netdef.layers.check import LayerCheck, Setup
from caffe_relabel.netdef.layers.pooling import pool_window
from caffe_relabel.netdef.layers.table import register


@register("LRN", builder="lrn:build_lrn")
def _lrn(c: LayerCheck) -> Setup:
    """Geometry: the within-channel pooling window (None across channels)."""
    p = c.layer.lrn_param
    shape = c.four_axes()
    c.int_field("lrn_param.local_size", [p.local_size], low=1)
    if p.local_size % 2 != 1:
        raise c.error("lrn_param.local_size", f"Caffe's LRN supports only odd sizes, got {p.local_size}")
    # Caffe's zero-padded copy of the squares (across channels) or its pooling (within).
    c.internal("lrn_param.local_size", "padded buffer", (shape[1] + p.local_size - 1, shape[2] + p.local_size,
                                                         shape[3] + p.local_size))
    if p.norm_region == LRNParameter.WITHIN_CHANNEL:
        pool = PoolingParameter(pool=PoolingParameter.AVE, pad=(p.local_size - 1) // 2, kernel_size=p.local_size)
        window = pool_window(c, pool, shape[2], shape[3])
        return Setup(((shape[0], shape[1]) + window.out,), geometry=window)
    return Setup((shape,))
