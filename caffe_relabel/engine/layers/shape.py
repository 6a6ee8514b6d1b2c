"""Layers that move data without arithmetic: Concat, Split, Slice, Flatten, Reshape, Crop, Tile.

Axes, sizes, offsets and reshape targets come from the rules (caffe_relabel/netdef/layers/shape.py).
"""

from __future__ import annotations

from typing import Sequence

import torch

from caffe_relabel.netdef.layers.shape import CropWindow, ReshapeTarget, SliceSizes, Tiling
from caffe_relabel.engine.spec import Build, CaffeLayer, GeometryLayer


class Concat(GeometryLayer):
    geometry: int  # the axis

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.cat(xs, dim=self.geometry),)


class Split(CaffeLayer):
    layout_agnostic = True

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,) * self.n


def build_split(b: Build) -> Split:
    return Split(len(b.setup.tops))


class Slice(CaffeLayer):
    def __init__(self, axis: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.axis, self.sizes = axis, list(sizes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.axis))


def build_slice(b: Build) -> Slice:
    g: SliceSizes = b.geometry
    return Slice(g.axis, g.sizes)


class Flatten(CaffeLayer):
    def __init__(self, start: int, end: int) -> None:
        super().__init__()
        self.start, self.end = start, end

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.flatten(x, self.start, self.end),)


def build_flatten(b: Build) -> Flatten:
    start, end = b.geometry
    return Flatten(start, end)


class Reshape(GeometryLayer):
    geometry: ReshapeTarget

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # Caffe's rule again on the actual shape: the batch size may differ from the declared one.
        return (x.reshape(self.geometry.apply(tuple(x.shape))),)


class Crop(GeometryLayer):
    geometry: CropWindow
    layout_agnostic = True  # a view

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor]:
        w = self.geometry
        for i, (offset, size) in enumerate(zip(w.offsets, w.sizes)):
            x = x.narrow(w.start + i, offset, size)
        return (x,)


class Tile(GeometryLayer):
    geometry: Tiling

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        # Caffe copies the whole block from the axis on, tiles times: repeat, not repeat_interleave.
        reps = [1] * x.dim()
        reps[self.geometry.axis] = self.geometry.tiles
        return (x.repeat(reps),)


# The layer table names builders as functions of this module.
build_concat, build_reshape, build_crop, build_tile = Concat.build, Reshape.build, Crop.build, Tile.build
