"""Element-wise layers: ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, Exp, Log, Power, Dropout, BNLL, Clip,
Swish, Threshold.

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

from caffe_relabel.engine.spec import Build, CaffeLayer

f32 = np.float32


class Elementwise(CaffeLayer):
    """A parameter-free element-wise function of one bottom."""

    layout_agnostic = True

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], description: str) -> None:
        super().__init__()
        self.fn = fn
        self.description = description

    def extra_repr(self) -> str:
        return self.description

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.fn(x),)


def build_relu(b: Build) -> CaffeLayer:
    slope = float(b.layer.relu_param.negative_slope)
    if slope == 0:
        return Elementwise(F.relu, "relu")
    # max(x, 0) + slope * min(x, 0) equals leaky_relu exactly; so does its gradient.
    return Elementwise(lambda x: F.leaky_relu(x, slope), f"negative_slope={slope}")


def build_dropout(b: Build) -> CaffeLayer:
    # At test time Caffe's Dropout copies its input (the scaling happens in training).
    return Elementwise(lambda x: x, "identity at test time")


def build_sigmoid(b: Build) -> CaffeLayer:
    # sigmoid_layer.cpp: 0.5 * tanh(0.5 * x) + 0.5, not 1 / (1 + exp(-x)).
    return Elementwise(lambda x: torch.tanh(x * 0.5) * 0.5 + 0.5, "0.5 tanh(0.5 x) + 0.5")


def build_tanh(b: Build) -> CaffeLayer:
    return Elementwise(torch.tanh, "tanh")


def build_absval(b: Build) -> CaffeLayer:
    return Elementwise(torch.abs, "abs")


def build_elu(b: Build) -> CaffeLayer:
    alpha = float(b.layer.elu_param.alpha)

    def elu(x: torch.Tensor) -> torch.Tensor:
        # Caffe: max(x, 0) + alpha (exp(min(x, 0)) - 1); exp - 1, not expm1.
        return torch.where(x > 0, x, alpha * (torch.exp(torch.clamp_max(x, 0)) - 1))

    return Elementwise(elu, f"alpha={alpha}")


def _log_base(base: float) -> f32:
    # The rule has checked base: -1 (e) or positive.
    return f32(1) if base == -1 else f32(math.log(f32(base)))


def build_exp(b: Build) -> CaffeLayer:
    p = b.layer.exp_param
    base, scale, shift = f32(p.base), f32(p.scale), f32(p.shift)
    inner = f32(_log_base(p.base) * scale)
    outer = f32(1) if shift == 0 else (f32(base ** shift) if base != -1 else f32(math.exp(shift)))
    inner_f, outer_f = float(inner), float(outer)

    def exp(x: torch.Tensor) -> torch.Tensor:
        y = torch.exp(x) if inner_f == 1 else torch.exp(x * inner_f)
        return y if outer_f == 1 else y * outer_f

    return Elementwise(exp, f"exp({inner_f} x) * {outer_f}")


def build_log(b: Build) -> CaffeLayer:
    p = b.layer.log_param
    base_scale = float(f32(1) / _log_base(p.base))
    scale, shift = float(f32(p.scale)), float(f32(p.shift))

    def log(x: torch.Tensor) -> torch.Tensor:
        if scale != 1:
            x = x * scale
        if shift != 0:
            x = x + shift
        y = torch.log(x)
        return y if base_scale == 1 else y * base_scale

    return Elementwise(log, f"log({scale} x + {shift}) * {base_scale}")


def build_power(b: Build) -> CaffeLayer:
    p = b.layer.power_param
    power, scale, shift = float(f32(p.power)), float(f32(p.scale)), float(f32(p.shift))
    if power * scale == 0:
        # Caffe ignores the input: a constant (its gradient is zero).
        value = 1.0 if power == 0 else float(f32(shift) ** f32(power))
        return Elementwise(lambda x: torch.full_like(x, value), f"constant {value}")
    return Elementwise(_affine(scale, shift) if power == 1 else _power(scale, shift, power),
                       f"({scale} x + {shift}) ^ {power}")


def _affine(scale: float, shift: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Caffe's scale-then-shift (two float32 roundings, skipping a scale of 1 and a shift of 0),
    each case as one element-wise kernel where one exists: EfficientNet's ReLU6 runs
    Power(-x + 6) 32 times per image, and these were a third of its forward."""
    if scale == 1:
        return (lambda x: x + shift) if shift != 0 else (lambda x: x)
    if shift == 0:
        return lambda x: x * scale
    if scale == -1:
        # (-x) + shift == shift - x exactly: negation does not round.
        return lambda x: torch.rsub(x, shift)
    # One allocation; the in-place add keeps the multiply's rounding (no fused multiply-add).
    return lambda x: (x * scale).add_(shift)


def _power(scale: float, shift: float, power: float) -> Callable[[torch.Tensor], torch.Tensor]:
    affine = _affine(scale, shift)
    return lambda x: affine(x).pow(power)


def build_bnll(b: Build) -> CaffeLayer:
    # bnll_layer.cpp: x > 0 ? x + log(1 + exp(-x)) : log(1 + exp(x)); its backward caps exp at 50:
    # e / (e + 1) with e = exp(min(x, 50)). softplus with threshold 50 is that, value and gradient
    # (above 50 both give x and 1, as exp(-50) vanishes next to x in float32).
    return Elementwise(lambda x: F.softplus(x, beta=1.0, threshold=50.0), "log(1 + exp(x))")


def build_clip(b: Build) -> CaffeLayer:
    p = b.layer.clip_param
    low, high = float(f32(p.min)), float(f32(p.max))
    if low > high:
        # Caffe's max(min, min(x, max)) is then min everywhere; its gradient mask (min <= x <= max) is empty.
        return Elementwise(lambda x: torch.full_like(x, low), f"constant {low}")
    # clamp's gradient passes where min <= x <= max, both ends included, as clip_layer.cpp's.
    return Elementwise(lambda x: torch.clamp(x, low, high), f"clip to [{low}, {high}]")


def build_swish(b: Build) -> CaffeLayer:
    beta = float(f32(b.layer.swish_param.beta))
    # swish_layer.cpp: x * sigmoid(beta x), with Caffe's own sigmoid (0.5 tanh(0.5 x) + 0.5);
    # caffe_scal multiplies by beta even when it is 1, which is exact.
    return Elementwise(lambda x: x * (torch.tanh(x * beta * 0.5) * 0.5 + 0.5), f"x sigmoid({beta} x)")


def build_threshold(b: Build) -> CaffeLayer:
    threshold = float(f32(b.layer.threshold_param.threshold))
    # 1 where x > threshold, else 0. A step: its derivative is 0 (Caffe has no backward; the
    # pycaffe backend refuses a net whose backward would reach it).
    return Elementwise(lambda x: (x > threshold).to(x.dtype), f"x > {threshold}")


class PReLU(CaffeLayer):
    layout_agnostic = True

    def __init__(self, slope: torch.Tensor) -> None:
        super().__init__()
        self.add_blob("slope", slope)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # max(x, 0) + slope_c min(x, 0) == prelu, value and gradient.
        return (F.prelu(x, self.slope.reshape(-1)),)


def build_prelu(b: Build) -> CaffeLayer:
    return PReLU(b.blobs[0])
