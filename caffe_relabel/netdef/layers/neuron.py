"""Element-wise layers: ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, Exp, Log, Power, Dropout, BNLL, Clip,
Swish, Threshold.

All keep their bottom's shape; PReLU has a slope blob. In place only where
Caffe's backward stays right: AbsVal, Log, BNLL and Clip read their bottom
in backward (in place it holds the top), and Power's backward writes the
bottom diff (in place, the top diff) before reading the top diff.
Threshold has no backward in Caffe (NOT_IMPLEMENTED): ``backward=False``.
"""

from __future__ import annotations

from caffe_relabel.netdef.layers.check import LayerCheck, Setup, filler_or
from caffe_relabel.netdef.layers.table import register


@register("AbsVal", builder="neuron:build_absval")
@register("BNLL", builder="neuron:build_bnll")
@register("Clip", builder="neuron:build_clip")
@register("Dropout", builder="neuron:build_dropout", in_place=True)
@register("ELU", builder="neuron:build_elu", in_place=True)
@register("Exp", builder="neuron:build_exp", in_place=True)
@register("Log", builder="neuron:build_log")
@register("Power", builder="neuron:build_power")
@register("ReLU", builder="neuron:build_relu", in_place=True)
@register("Sigmoid", builder="neuron:build_sigmoid", in_place=True)
@register("Swish", builder="neuron:build_swish", in_place=True)
@register("TanH", builder="neuron:build_tanh", in_place=True)
@register("Threshold", builder="neuron:build_threshold", in_place=True, backward=False)
def _neuron(c: LayerCheck) -> Setup:
    shape = c.one()
    for kind in ("exp", "log"):
        if c.layer.type.lower() == kind:
            base = getattr(c.layer, f"{kind}_param").base
            if base != -1 and not base > 0:
                raise c.error(f"{kind}_param.base", f"expected -1 (e) or a positive base, got {base}")
    return Setup((shape,))


@register("PReLU", builder="neuron:build_prelu", in_place=True)
def _prelu(c: LayerCheck) -> Setup:
    p = c.layer.prelu_param
    shape = c.with_channels()
    # Caffe gives a channel-shared slope no axes at all; the default filler is the constant 0.25.
    slope = () if p.channel_shared else (shape[1],)
    return Setup((shape,), c.params(("prelu_param.filler", filler_or(p.HasField("filler"), p.filler, 0.25), slope)))


