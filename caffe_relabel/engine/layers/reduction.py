"""Reduction and ArgMax (reduction_layer.cpp, argmax_layer.cpp); axes come from the rules
(caffe_relabel/netdef/layers/reduction.py)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import ReductionParameter
from caffe_relabel.engine.spec import Build, CaffeLayer, Shape


class Reduction(CaffeLayer):
    def __init__(self, axis: int, operation: int, coeff: float) -> None:
        super().__init__()
        self.axis, self.operation, self.coeff = axis, operation, coeff

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = x.flatten(self.axis)
        if self.operation == ReductionParameter.ASUM:
            x = x.abs()  # gradient sign(x), 0 at 0, as caffe_cpu_sign
        elif self.operation == ReductionParameter.SUMSQ:
            x = x * x
        y = x.sum(dim=-1)
        # Caffe skips a coefficient of 1 (multiplying by it is exact anyway).
        return (y if self.coeff == 1 else y * self.coeff,)


def build_reduction(b: Build) -> Reduction:
    p = b.layer.reduction_param
    coeff = np.float32(p.coeff)
    if p.operation == ReductionParameter.MEAN:
        # coeff_ /= dim_, in float32.
        coeff = np.float32(coeff / np.float32(int(np.prod(b.bottoms[0][b.geometry:], dtype=np.int64))))
    return Reduction(b.geometry, p.operation, float(coeff))


class ArgMax(CaffeLayer):
    """Forward only: the top_k largest (ties: the larger index first, as std::greater on (value,
    index) pairs), as indices, or with out_max_val also (no axis) or only (axis) the values."""

    def __init__(self, axis: Optional[int], top_k: int, out_max_val: bool, top_shape: Shape) -> None:
        super().__init__()
        self.axis, self.top_k, self.out_max_val, self.top_shape = axis, top_k, out_max_val, top_shape

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = x.detach()
        axis = 1 if self.axis is None else self.axis
        if self.axis is None:
            x = x.reshape(x.shape[0], -1)
        size = x.shape[axis]
        # A stable descending sort of the reversed axis puts the larger index first among ties.
        values, flipped = torch.sort(x.flip(axis), dim=axis, descending=True, stable=True)
        values = values.narrow(axis, 0, self.top_k)
        indices = (size - 1 - flipped.narrow(axis, 0, self.top_k)).to(x.dtype)
        if self.axis is not None:
            return (values if self.out_max_val else indices,)
        out = torch.cat([indices, values], dim=1) if self.out_max_val else indices
        return (out.reshape((x.shape[0],) + tuple(self.top_shape[1:])),)


def build_argmax(b: Build) -> ArgMax:
    p = b.layer.argmax_param
    return ArgMax(b.geometry, p.top_k, p.out_max_val, b.setup.tops[0])
