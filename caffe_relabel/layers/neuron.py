"""Element-wise layers: ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, Exp, Log, Power, Dropout.

All keep their bottom's shape and run in place; PReLU has a slope blob.
"""

from __future__ import annotations

from .check import LayerCheck, Setup, filler_or
from .table import register


@register("AbsVal", builder="neuron:build_absval", in_place=True)
@register("Dropout", builder="neuron:build_dropout", in_place=True)
@register("ELU", builder="neuron:build_elu", in_place=True)
@register("Exp", builder="neuron:build_exp", in_place=True)
@register("Log", builder="neuron:build_log", in_place=True)
@register("Power", builder="neuron:build_power", in_place=True)
@register("ReLU", builder="neuron:build_relu", in_place=True)
@register("Sigmoid", builder="neuron:build_sigmoid", in_place=True)
@register("TanH", builder="neuron:build_tanh", in_place=True)
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


