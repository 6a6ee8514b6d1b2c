"""Blob sources: Input (the network's input) and DummyData (constant blobs)."""

from __future__ import annotations

from typing import Sequence

import torch

from ...netcheck import dummy_data_shapes, input_shapes
from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer, Shape


class Input(CaffeLayer):
    """Passes the network's inputs through as its tops."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return xs


@register("Input")
def build_input(ctx: BuildContext) -> Built:
    return Built(Input(), input_shapes(ctx.check()))


class DummyData(CaffeLayer):
    """Constant blobs (Caffe fills constant-filler tops once and never again)."""

    def __init__(self, shapes: Sequence[Shape], values: Sequence[float], device: torch.device) -> None:
        super().__init__()
        for i, (shape, value) in enumerate(zip(shapes, values)):
            self.register_buffer(f"top{i}", torch.full(shape, value, dtype=torch.float32, device=device), persistent=False)
        self.n = len(shapes)

    def forward(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"top{i}") for i in range(self.n))


@register("DummyData")
def build_dummy_data(ctx: BuildContext) -> Built:
    shapes = dummy_data_shapes(ctx.check())
    # The static check has validated the filler count: one for all tops, or one each.
    fillers = list(ctx.layer.dummy_data_param.data_filler)
    values = []
    for i in range(len(shapes)):
        filler = fillers[0] if len(fillers) == 1 else (fillers[i] if fillers else None)
        if filler is not None and filler.type != "constant":
            raise ctx.unsupported("dummy_data_param.data_filler", f"filler {filler.type!r} is random (Caffe refills it every pass)")
        values.append(float(filler.value) if filler is not None else 0.0)
    return Built(DummyData(shapes, values, ctx.device), shapes)
