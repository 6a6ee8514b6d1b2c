"""What a layer builder receives and returns.

A builder reads its LayerParameter, validates it against the bottom shapes
(Caffe's LayerSetUp + Reshape), asks for its parameter blobs by expected
shape, and returns a module plus the top shapes. Errors name the file, the
layer, its type and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ModelFormatError, UnsupportedLayerError, WeightsMismatchError
from ..netcheck import LayerCheck
from ..proto.caffe_relabel_caffe_pb2 import FillerParameter, LayerParameter
from .weights import StoredBlob

Shape = tuple[int, ...]


class CaffeLayer(nn.Module):
    """A layer's module: ``forward(*bottoms)`` returns a tuple of tops."""

    def add_blob(self, name: str, value: Optional[torch.Tensor]) -> None:
        """Register a parameter blob (None: an absent optional blob, e.g. no bias)."""
        # Frozen: the engine only ever differentiates with respect to the input.
        self.register_parameter(name, None if value is None else nn.Parameter(value, requires_grad=False))


@dataclass(frozen=True)
class Built:
    """A built layer: its module and the shapes of its tops (at the declared batch size)."""

    module: CaffeLayer
    top_shapes: list[Shape]


class BuildContext:
    """One layer being built: its definition, bottom shapes and stored blobs."""

    def __init__(self, layer: LayerParameter, bottom_shapes: Sequence[Shape],
                 stored: Optional[Sequence[StoredBlob]], weights_given: bool, source: str,
                 device: torch.device, weights_source: str) -> None:
        self.layer = layer
        self.name = layer.name
        self.type = layer.type
        self.bottom_shapes = [tuple(s) for s in bottom_shapes]
        self.stored = stored
        self.weights_given = weights_given
        self.weights_source = weights_source
        self.source = source
        self.device = device

    def check(self) -> LayerCheck:
        """This layer as the static check sees it, to reuse the check's shape arithmetic."""
        return LayerCheck(self.layer, self.bottom_shapes, self.source)

    def _where(self, field: str) -> str:
        return f"{self.source}: layer {self.name!r} ({self.type}): {field}"

    def error(self, field: str, message: str) -> ModelFormatError:
        """A definition error naming this layer and ``field`` (the caller raises it)."""
        return ModelFormatError(f"{self._where(field)}: {message}")

    def unsupported(self, field: str, message: str) -> UnsupportedLayerError:
        """A mode the engine refuses rather than approximates (the caller raises it)."""
        return UnsupportedLayerError(f"{self._where(field)}: {message}; the engine does not approximate it")

    def expect_bottoms(self, low: int, high: Optional[int] = None) -> None:
        """Between ``low`` and ``high`` (default: exactly ``low``) bottoms; None = unbounded."""
        n = len(self.bottom_shapes)
        if high is None:
            high = low
        if n < low or (high >= 0 and n > high):
            want = str(low) if low == high else f"{low}..{'any' if high < 0 else high}"
            raise self.error("bottom", f"expected {want} bottom blob(s), got {n}")

    def expect_tops(self, low: int, high: Optional[int] = None) -> None:
        n = len(self.layer.top)
        if high is None:
            high = low
        if n < low or (high >= 0 and n > high):
            want = str(low) if low == high else f"{low}..{'any' if high < 0 else high}"
            raise self.error("top", f"expected {want} top blob(s), got {n}")

    def one_to_one(self) -> Shape:
        """Check for exactly one bottom and one top; the bottom's shape."""
        self.expect_bottoms(1)
        self.expect_tops(1)
        return self.bottom_shapes[0]

    def axis(self, axis: int, num_axes: int, field: str) -> int:
        """Caffe's CanonicalAxisIndex: negative counts from the end; checked."""
        if not -num_axes <= axis < num_axes:
            raise self.error(field, f"axis {axis} is out of range for a blob with {num_axes} axes")
        return axis % num_axes

    def params(self, shapes: Sequence[Shape], fillers: Sequence[Optional[FillerParameter]]) -> list[torch.Tensor]:
        """The layer's parameter blobs, checked against ``shapes`` before any is converted.

        Without weights, only deterministic (constant) fillers are honoured:
        Caffe's random fillers cannot be reproduced, so they are an error.
        """
        if self.stored is None:
            if self.weights_given:
                raise WeightsMismatchError(
                    f"{self.weights_source}: layer {self.name!r} ({self.type}) has parameters in {self.source} "
                    "but no weights in the caffemodel"
                )
            return [self._fill(i, shape, filler) for i, (shape, filler) in enumerate(zip(shapes, fillers))]
        if len(self.stored) != len(shapes):
            raise WeightsMismatchError(
                f"{self.weights_source}: layer {self.name!r} ({self.type}) has {len(self.stored)} weight blobs, "
                f"{self.source} expects {len(shapes)}"
            )
        for i, (blob, shape) in enumerate(zip(self.stored, shapes)):
            if not blob.fits(shape):
                raise WeightsMismatchError(
                    f"{self.weights_source}: layer {self.name!r} ({self.type}) blob {i}: the weights have shape "
                    f"{list(blob.shape)}, {self.source} expects {list(shape)}"
                )
        return [torch.from_numpy(blob.array().reshape(shape)).to(self.device) for blob, shape in zip(self.stored, shapes)]

    def _fill(self, index: int, shape: Shape, filler: Optional[FillerParameter]) -> torch.Tensor:
        kind = filler.type if filler is not None else "constant"
        if kind != "constant":
            raise WeightsMismatchError(
                f"{self.source}: layer {self.name!r} ({self.type}) blob {index}: no weights given and its "
                f"filler {kind!r} is random; pass a caffemodel"
            )
        value = filler.value if filler is not None else 0.0
        return torch.full(shape, float(np.float32(value)), dtype=torch.float32, device=self.device)


def count(shape: Sequence[int], start: int = 0, end: Optional[int] = None) -> int:
    """Caffe's Blob::count: the product of the axes in [start, end)."""
    return int(np.prod(shape[start:end], dtype=np.int64))
