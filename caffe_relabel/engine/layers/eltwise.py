"""Eltwise: SUM (with coefficients), PROD, MAX, as eltwise_layer.cpp."""

from __future__ import annotations

from typing import Sequence

import torch

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import EltwiseParameter
from caffe_relabel.engine.spec import Build, CaffeLayer


class Eltwise(CaffeLayer):
    layout_agnostic = True

    def __init__(self, op: int, coeffs: Sequence[float]) -> None:
        super().__init__()
        self.op, self.coeffs = op, list(coeffs)

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        if self.op == EltwiseParameter.PROD:
            out = xs[0] * xs[1]
            for x in xs[2:]:
                out = out * x
        elif self.op == EltwiseParameter.SUM:
            # 0 + c0 x0 + c1 x1 + ..., left to right (caffe_axpy per bottom).
            out = xs[0] if self.coeffs[0] == 1 else xs[0] * self.coeffs[0]
            for c, x in zip(self.coeffs[1:], xs[1:]):
                out = out + (x if c == 1 else x * c)
        else:
            # MAX: bottom 1 wins a tie with bottom 0 (a > b ? a : b), later
            # bottoms must be strictly greater; the gradient follows the
            # winner, which torch.where reproduces (torch.maximum would split ties).
            out = torch.where(xs[0] > xs[1], xs[0], xs[1])
            for x in xs[2:]:
                out = torch.where(x > out, x, out)
        return (out,)


def build_eltwise(b: Build) -> Eltwise:
    # The rule gives one float32 coefficient per bottom.
    return Eltwise(b.layer.eltwise_param.operation, b.geometry)
