"""What a layer builder receives and returns.

A builder is ``build(b: Build) -> CaffeLayer``: the static rule of its
layer type (:mod:`caffe_relabel.netdef.layers`) has already checked the layer and
derived its tops, parameter shapes and geometry (``b.setup``), and its
parameter tensors are loaded and checked (``b.blobs``). A builder only
constructs the module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from caffe_relabel.errors import UnsupportedLayerError
from caffe_relabel.netdef.layers.check import Setup, Shape
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter


class CaffeLayer(nn.Module):
    """A layer's module: ``forward(*bottoms)`` returns a tuple of tops."""

    #: Whether it computes the same bits from channels-last bottoms (element-wise layers, views); the
    #: faithful net hands the others NCHW copies, since a reduction may sum in another order there.
    layout_agnostic: bool = False

    def add_blob(self, name: str, value: Optional[torch.Tensor]) -> None:
        """Register a parameter blob (None: an absent optional blob, e.g. no bias)."""
        # Frozen: the engine only ever differentiates with respect to the input.
        self.register_parameter(name, None if value is None else nn.Parameter(value, requires_grad=False))


@dataclass(frozen=True)
class Build:
    """One layer to build: its definition, bottom shapes, its rule's Setup and its parameter tensors."""

    layer: LayerParameter
    bottoms: tuple[Shape, ...]
    setup: Setup
    blobs: tuple[torch.Tensor, ...]
    device: torch.device
    source: str
    im2col: bool  # convolutions as Caffe's im2col + GEMM (engine.device.uses_im2col)

    @property
    def geometry(self) -> Any:
        return self.setup.geometry

    def refuse(self, field: str, message: str) -> UnsupportedLayerError:
        """A limit of the engine itself (not of Caffe), naming file, layer and field (the caller raises it)."""
        return UnsupportedLayerError(f"{self.source}: layer {self.layer.name!r} ({self.layer.type}): {field}: "
                                     f"{message}; the engine does not approximate it")


class GeometryLayer(CaffeLayer):
    """A layer set up by its rule's geometry alone (an axis, a reshape target, a crop window, a tiling)."""

    def __init__(self, geometry: Any) -> None:
        super().__init__()
        self.geometry = geometry

    @classmethod
    def build(cls, b: Build) -> "GeometryLayer":
        return cls(b.geometry)


def count(shape: "tuple[int, ...] | torch.Size", start: int = 0, end: Optional[int] = None) -> int:
    """Caffe's Blob::count: the product of the axes in [start, end)."""
    return int(np.prod(shape[start:end], dtype=np.int64))
