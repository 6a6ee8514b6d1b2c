"""Blob sources: Input (the network's input) and DummyData (constant blobs)."""

from __future__ import annotations

from typing import Sequence

import torch

from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer, Shape


class Input(CaffeLayer):
    """Passes the network's inputs through as its tops."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return xs


def _shapes(ctx: BuildContext, field: str, shapes: Sequence[Shape]) -> list[Shape]:
    n = len(ctx.layer.top)
    if len(shapes) not in (1, n):
        raise ctx.error(field, f"expected one shape, or one per top ({n}), got {len(shapes)}")
    return [tuple(shapes[0] if len(shapes) == 1 else shapes[i]) for i in range(n)]


@register("Input")
def build_input(ctx: BuildContext) -> Built:
    ctx.expect_bottoms(0)
    ctx.expect_tops(1, -1)
    shapes = _shapes(ctx, "input_param.shape", [tuple(s.dim) for s in ctx.layer.input_param.shape])
    return Built(Input(), shapes)


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
    ctx.expect_bottoms(0)
    ctx.expect_tops(1, -1)
    p = ctx.layer.dummy_data_param
    n = len(ctx.layer.top)
    legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
    if any(legacy):
        if len(p.shape):
            raise ctx.error("dummy_data_param.shape", "expected shape OR num/channels/height/width, not both")
        for name, values in zip(("num", "channels", "height", "width"), legacy):
            if len(values) not in (1, n):
                raise ctx.error(f"dummy_data_param.{name}", f"expected 1 or {n} values, got {len(values)}")
        shapes = [tuple(v[0] if len(v) == 1 else v[i] for v in legacy) for i in range(n)]
    else:
        shapes = _shapes(ctx, "dummy_data_param.shape", [tuple(s.dim) for s in p.shape])
    fillers = list(p.data_filler)
    if len(fillers) not in (0, 1, n):
        raise ctx.error("dummy_data_param.data_filler", f"expected 0, 1 or {n} data fillers, got {len(fillers)}")
    values = []
    for i in range(n):
        filler = fillers[0] if len(fillers) == 1 else (fillers[i] if fillers else None)
        if filler is not None and filler.type != "constant":
            raise ctx.unsupported("dummy_data_param.data_filler", f"filler {filler.type!r} is random (Caffe refills it every pass)")
        values.append(float(filler.value) if filler is not None else 0.0)
    return Built(DummyData(shapes, values, ctx.device), shapes)
