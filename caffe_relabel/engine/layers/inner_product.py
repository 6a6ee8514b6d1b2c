"""InnerProduct: flattens every axis from ``axis`` on, then top = x W^T + b.

Weights are num_output x K (K = the flattened size), or K x num_output with
``transpose: true``; the bias is num_output (inner_product_layer.cpp).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer, count


class InnerProduct(CaffeLayer):
    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], axis: int, transpose: bool) -> None:
        super().__init__()
        self.add_blob("weight", weight)
        self.add_blob("bias", bias)
        self.axis, self.transpose = axis, transpose

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        flat = x.flatten(self.axis)
        weight = self.weight.t() if self.transpose else self.weight
        return (F.linear(flat, weight, self.bias),)


@register("InnerProduct")
def build_inner_product(ctx: BuildContext) -> Built:
    p = ctx.layer.inner_product_param
    shape = ctx.one_to_one()
    axis = ctx.axis(p.axis, len(shape), "inner_product_param.axis")
    if p.num_output <= 0:
        raise ctx.error("inner_product_param.num_output", f"expected a positive number of outputs, got {p.num_output}")
    k = count(shape, axis)
    shapes = [(k, p.num_output) if p.transpose else (p.num_output, k)]
    fillers = [p.weight_filler if p.HasField("weight_filler") else None]
    if p.bias_term:
        shapes.append((p.num_output,))
        fillers.append(p.bias_filler if p.HasField("bias_filler") else None)
    blobs = ctx.params(shapes, fillers)
    module = InnerProduct(blobs[0], blobs[1] if p.bias_term else None, axis, p.transpose)
    return Built(module, [tuple(shape[:axis]) + (p.num_output,)])
