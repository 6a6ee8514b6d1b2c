"""Eltwise: SUM (with coefficients), PROD, MAX over equal-shaped bottoms (eltwise_layer.cpp)."""

from __future__ import annotations

import numpy as np

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import EltwiseParameter
from caffe_relabel.netdef.layers.check import LayerCheck, Setup
from caffe_relabel.netdef.layers.table import register


@register("Eltwise", builder="eltwise:build_eltwise")
def _eltwise(c: LayerCheck) -> Setup:
    """Geometry: one float32 coefficient per bottom (1 for PROD and MAX)."""
    c.counts((2, -1), (1, 1))
    p = c.layer.eltwise_param
    for i, s in enumerate(c.bottoms[1:], 1):
        if s != c.bottoms[0]:
            raise c.error("bottom", f"bottom {i} has shape {list(s)}, bottom 0 has {list(c.bottoms[0])}; "
                                    "expected equal shapes")
    if len(p.coeff) and p.operation != EltwiseParameter.SUM:
        raise c.error("eltwise_param.coeff", "coefficients are only allowed with operation SUM")
    if len(p.coeff) not in (0, len(c.bottoms)):
        raise c.error("eltwise_param.coeff", f"expected one coefficient per bottom ({len(c.bottoms)}), got {len(p.coeff)}")
    coeffs = tuple(float(np.float32(v)) for v in p.coeff) or (1.0,) * len(c.bottoms)
    return Setup((c.bottoms[0],), geometry=coeffs)
