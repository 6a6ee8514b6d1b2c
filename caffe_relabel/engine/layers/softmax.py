"""Softmax over one axis (softmax_layer.cpp: subtract the max, exp, normalize)."""

from __future__ import annotations

import torch

from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer


class Softmax(CaffeLayer):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # float32 even under autocast: probabilities feed the loss and the stop test.
        return (torch.softmax(x.float(), dim=self.axis),)


@register("Softmax")
def build_softmax(ctx: BuildContext) -> Built:
    shape = ctx.one_to_one()
    axis = ctx.axis(ctx.layer.softmax_param.axis, len(shape), "softmax_param.axis")
    return Built(Softmax(axis), [shape])
