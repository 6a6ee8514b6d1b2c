"""InnerProduct: flattens every axis from ``axis`` on, then top = x W^T + b (inner_product_layer.cpp).

The axis (geometry) and the blob shapes come from the rule (caffe_relabel/netdef/layers/inner_product.py).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from caffe_relabel.engine.spec import Build, CaffeLayer


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


def build_inner_product(b: Build) -> InnerProduct:
    return InnerProduct(b.blobs[0], b.blobs[1] if len(b.blobs) == 2 else None, b.geometry,
                        b.layer.inner_product_param.transpose)
