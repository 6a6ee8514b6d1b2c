"""Element-wise layers: ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, Exp, Log, Power, Dropout.

Each follows its ``*_layer.cpp`` forward literally, including where Caffe
skips a multiply by one or an add of zero, and computes its constants in
float32 as Caffe does (``Dtype`` arithmetic).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ...proto.caffe_relabel_caffe_pb2 import FillerParameter
from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer

f32 = np.float32


class Elementwise(CaffeLayer):
    """A parameter-free element-wise function of one bottom."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], description: str) -> None:
        super().__init__()
        self.fn = fn
        self.description = description

    def extra_repr(self) -> str:
        return self.description

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.fn(x),)


def _neuron(ctx: BuildContext, fn: Callable[[torch.Tensor], torch.Tensor], description: str) -> Built:
    return Built(Elementwise(fn, description), [ctx.one_to_one()])


@register("ReLU")
def build_relu(ctx: BuildContext) -> Built:
    slope = float(ctx.layer.relu_param.negative_slope)
    if slope == 0:
        return _neuron(ctx, F.relu, "relu")
    # max(x, 0) + slope * min(x, 0) equals leaky_relu exactly; so does its gradient.
    return _neuron(ctx, lambda x: F.leaky_relu(x, slope), f"negative_slope={slope}")


@register("Dropout")
def build_dropout(ctx: BuildContext) -> Built:
    # At test time Caffe's Dropout copies its input (the scaling happens in training).
    return _neuron(ctx, lambda x: x, "identity at test time")


@register("Sigmoid")
def build_sigmoid(ctx: BuildContext) -> Built:
    # sigmoid_layer.cpp: 0.5 * tanh(0.5 * x) + 0.5, not 1 / (1 + exp(-x)).
    return _neuron(ctx, lambda x: torch.tanh(x * 0.5) * 0.5 + 0.5, "0.5 tanh(0.5 x) + 0.5")


@register("TanH")
def build_tanh(ctx: BuildContext) -> Built:
    return _neuron(ctx, torch.tanh, "tanh")


@register("AbsVal")
def build_absval(ctx: BuildContext) -> Built:
    return _neuron(ctx, torch.abs, "abs")


@register("ELU")
def build_elu(ctx: BuildContext) -> Built:
    alpha = float(ctx.layer.elu_param.alpha)

    def elu(x: torch.Tensor) -> torch.Tensor:
        # Caffe: max(x, 0) + alpha (exp(min(x, 0)) - 1); exp - 1, not expm1.
        return torch.where(x > 0, x, alpha * (torch.exp(torch.clamp_max(x, 0)) - 1))

    return _neuron(ctx, elu, f"alpha={alpha}")


def _log_base(ctx: BuildContext, field: str, base: float) -> f32:
    if base == -1:
        return f32(1)
    if base <= 0:
        raise ctx.error(field, f"expected base -1 (e) or > 0, got {base}")
    return f32(math.log(f32(base)))


@register("Exp")
def build_exp(ctx: BuildContext) -> Built:
    p = ctx.layer.exp_param
    base, scale, shift = f32(p.base), f32(p.scale), f32(p.shift)
    inner = f32(_log_base(ctx, "exp_param.base", p.base) * scale)
    outer = f32(1) if shift == 0 else (f32(base ** shift) if base != -1 else f32(math.exp(shift)))
    inner_f, outer_f = float(inner), float(outer)

    def exp(x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(x) if inner_f == 1 else torch.exp(x * inner_f)
        return y if outer_f == 1 else y * outer_f

    return _neuron(ctx, exp, f"exp({inner_f} x) * {outer_f}")


@register("Log")
def build_log(ctx: BuildContext) -> Built:
    p = ctx.layer.log_param
    base_scale = float(f32(1) / _log_base(ctx, "log_param.base", p.base))
    scale, shift = float(f32(p.scale)), float(f32(p.shift))

    def log(x: torch.Tensor) -> torch.Tensor:
        if scale != 1:
            x = x * scale
        if shift != 0:
            x = x + shift
        y = torch.log(x)
        return y if base_scale == 1 else y * base_scale

    return _neuron(ctx, log, f"log({scale} x + {shift}) * {base_scale}")


@register("Power")
def build_power(ctx: BuildContext) -> Built:
    p = ctx.layer.power_param
    power, scale, shift = float(f32(p.power)), float(f32(p.scale)), float(f32(p.shift))
    if power * scale == 0:
        # Caffe ignores the input: a constant (its gradient is zero).
        value = 1.0 if power == 0 else float(f32(shift) ** f32(power))
        return _neuron(ctx, lambda x: torch.full_like(x, value), f"constant {value}")

    def pow_(x: torch.Tensor) -> torch.Tensor:
        if scale != 1:
            x = x * scale
        if shift != 0:
            x = x + shift
        return x if power == 1 else x.pow(power)

    return _neuron(ctx, pow_, f"({scale} x + {shift}) ^ {power}")


class PReLU(CaffeLayer):
    def __init__(self, slope: torch.Tensor) -> None:
        super().__init__()
        self.add_blob("slope", slope)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # max(x, 0) + slope_c min(x, 0) == prelu, value and gradient.
        return (F.prelu(x, self.slope.reshape(-1)),)


@register("PReLU")
def build_prelu(ctx: BuildContext) -> Built:
    p = ctx.layer.prelu_param
    shape = ctx.one_to_one()
    if len(shape) < 2:
        raise ctx.error("bottom", f"expected at least 2 axes (N x C ...), got shape {list(shape)}")
    filler = p.filler if p.HasField("filler") else None
    if filler is None:
        # PReLU's default filler is the constant 0.25 (prelu_layer.cpp).
        filler = FillerParameter(type="constant", value=0.25)
    # Caffe gives a channel-shared slope no axes at all.
    (slope,) = ctx.params([() if p.channel_shared else (shape[1],)], [filler])
    return Built(PReLU(slope), [shape])
