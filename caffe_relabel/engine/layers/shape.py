"""Layers that move data without arithmetic: Concat, Split, Slice, Flatten, Reshape, Crop."""

from __future__ import annotations

from typing import Sequence

import torch

from ...netcheck import concat_axis, slice_sizes
from ..registry import register
from ..spec import Built, BuildContext, CaffeLayer, Shape, count


class Concat(CaffeLayer):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.cat(xs, dim=self.axis),)


@register("Concat")
def build_concat(ctx: BuildContext) -> Built:
    axis = concat_axis(ctx.check())  # the static check has matched the other axes
    out = list(ctx.bottom_shapes[0])
    out[axis] = sum(s[axis] for s in ctx.bottom_shapes)
    return Built(Concat(axis), [tuple(out)])


class Split(CaffeLayer):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,) * self.n


@register("Split")
def build_split(ctx: BuildContext) -> Built:
    ctx.expect_bottoms(1)
    ctx.expect_tops(1, -1)
    return Built(Split(len(ctx.layer.top)), [ctx.bottom_shapes[0]] * len(ctx.layer.top))


class Slice(CaffeLayer):
    def __init__(self, axis: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.axis, self.sizes = axis, list(sizes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.axis))


@register("Slice")
def build_slice(ctx: BuildContext) -> Built:
    axis, sizes = slice_sizes(ctx.check())
    shape = ctx.bottom_shapes[0]
    tops = [tuple(shape[:axis]) + (s,) + tuple(shape[axis + 1:]) for s in sizes]
    return Built(Slice(axis, sizes), tops)


class Flatten(CaffeLayer):
    def __init__(self, start: int, end: int) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.flatten(x, self.start, self.end),)


@register("Flatten")
def build_flatten(ctx: BuildContext) -> Built:
    p = ctx.layer.flatten_param
    shape = ctx.one_to_one()
    start = ctx.axis(p.axis, len(shape), "flatten_param.axis")
    end = ctx.axis(p.end_axis, len(shape), "flatten_param.end_axis")
    if end < start:
        raise ctx.error("flatten_param.end_axis", f"end_axis {p.end_axis} comes before axis {p.axis}")
    out = tuple(shape[:start]) + (count(shape, start, end + 1),) + tuple(shape[end + 1:])
    return Built(Flatten(start, end), [out])


class Reshape(CaffeLayer):
    def __init__(self, dims: Sequence[int], start: int, num_axes: int) -> None:
        super().__init__()
        self.dims, self.start, self.num_axes = list(dims), start, num_axes

    def target(self, shape: Sequence[int]) -> Shape:
        """reshape_layer.cpp: 0 copies the bottom's axis, -1 is inferred; axes outside
        [start, start + num_axes) are kept."""
        end = len(shape) if self.num_axes == -1 else self.start + self.num_axes
        out = list(shape[:self.start]) + list(self.dims) + list(shape[end:])
        for i, d in enumerate(self.dims):
            if d == 0:
                out[self.start + i] = shape[self.start + i]
        if -1 in self.dims:
            known = count([d for d in out if d != -1])
            out[self.start + self.dims.index(-1)] = count(shape) // known if known else 0
        return tuple(out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x.reshape(self.target(x.shape)),)


@register("Reshape")
def build_reshape(ctx: BuildContext) -> Built:
    p = ctx.layer.reshape_param
    shape = ctx.one_to_one()
    dims = list(p.shape.dim)
    if dims.count(-1) > 1:
        raise ctx.error("reshape_param.shape", f"expected at most one -1 (inferred) dimension, got {dims}")
    if any(d < -1 for d in dims):
        raise ctx.error("reshape_param.shape", f"expected dimensions >= -1, got {dims}")
    start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1
    if not 0 <= start <= len(shape):
        raise ctx.error("reshape_param.axis", f"axis {p.axis} is out of range for a blob with {len(shape)} axes")
    if p.num_axes < -1 or (p.num_axes != -1 and start + p.num_axes > len(shape)):
        raise ctx.error("reshape_param.num_axes", f"num_axes {p.num_axes} from axis {start} exceeds the {len(shape)} axes")
    for i, d in enumerate(dims):
        if d == 0 and start + i >= len(shape):
            raise ctx.error("reshape_param.shape", f"dimension {i} copies axis {start + i}, which the bottom lacks")
    module = Reshape(dims, start, p.num_axes)
    out = module.target(shape)
    if count(out) != count(shape):
        raise ctx.error("reshape_param.shape", f"cannot reshape {list(shape)} ({count(shape)} values) to {list(out)}")
    return Built(module, [out])


class Crop(CaffeLayer):
    def __init__(self, start: int, offsets: Sequence[int], sizes: Sequence[int]) -> None:
        super().__init__()
        self.start, self.offsets, self.sizes = start, list(offsets), list(sizes)

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor]:
        for i, (offset, size) in enumerate(zip(self.offsets, self.sizes)):
            x = x.narrow(self.start + i, offset, size)
        return (x,)


@register("Crop")
def build_crop(ctx: BuildContext) -> Built:
    ctx.expect_bottoms(2)
    ctx.expect_tops(1)
    p = ctx.layer.crop_param
    shape, ref = ctx.bottom_shapes
    start = ctx.axis(p.axis, len(shape), "crop_param.axis")
    n = len(shape) - start
    if len(p.offset) > 1 and len(p.offset) != n:
        raise ctx.error("crop_param.offset", f"expected 0, 1 or {n} offsets (one per axis from {start}), got {len(p.offset)}")
    if len(ref) != len(shape):
        raise ctx.error("bottom", f"the reference bottom has {len(ref)} axes, the data bottom {len(shape)}")
    offsets = [p.offset[0] if len(p.offset) == 1 else (p.offset[i] if p.offset else 0) for i in range(n)]
    sizes = list(ref[start:])
    for i, (offset, size) in enumerate(zip(offsets, sizes)):
        if shape[start + i] - offset < size:
            raise ctx.error("crop_param.offset", f"the crop of axis {start + i} (size {size}, offset {offset}) "
                                                 f"is out of bounds of the input size {shape[start + i]}")
    return Built(Crop(start, offsets, sizes), [tuple(shape[:start]) + tuple(sizes)])
