"""Blob sources and sinks: Input, DummyData (constant blobs), Parameter (a stored blob) and Silence."""

from __future__ import annotations

from typing import Sequence

import torch

from caffe_relabel.engine.spec import Build, CaffeLayer, Shape


class Input(CaffeLayer):
    """Passes the network's inputs through as its tops."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return xs


def build_input(b: Build) -> Input:
    return Input()


class DummyData(CaffeLayer):
    """Constant blobs (Caffe fills constant-filler tops once and never again)."""

    def __init__(self, shapes: Sequence[Shape], values: Sequence[float], device: torch.device) -> None:
        super().__init__()
        for i, (shape, value) in enumerate(zip(shapes, values)):
            self.register_buffer(f"top{i}", torch.full(shape, value, dtype=torch.float32, device=device), persistent=False)
        self.n = len(shapes)

    def forward(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"top{i}") for i in range(self.n))


def build_dummy_data(b: Build) -> DummyData:
    # The rule gives each top's constant value (it refuses random fillers).
    return DummyData(b.setup.tops, b.geometry, b.device)


class Parameter(CaffeLayer):
    """Its blob as its top (Caffe shares the data; the input gradient never reaches it)."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.add_blob("value", value)

    def forward(self) -> tuple[torch.Tensor]:
        return (self.value,)


def build_parameter(b: Build) -> Parameter:
    return Parameter(b.blobs[0])


class Silence(CaffeLayer):
    """No top: its bottoms then contribute nothing to any gradient, as in Caffe (which zeroes their diffs)."""

    def forward(self, *xs: torch.Tensor) -> tuple[()]:
        return ()


def build_silence(b: Build) -> Silence:
    return Silence()
