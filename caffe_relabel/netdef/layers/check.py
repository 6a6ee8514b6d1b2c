"""What a layer's static rule works with: the layer being checked, and what it returns.

A rule (see :mod:`caffe_relabel.netdef.layers.table`) receives a :class:`LayerCheck`
(the LayerParameter, its bottom shapes, error helpers naming file, layer and
field) and returns a :class:`Setup`: top shapes, parameter blobs (shape and
the filler Caffe would use) and the geometry it derived, which the engine's
builder takes as it is. Plain integers only: nothing is allocated, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from caffe_relabel.errors import ModelFormatError, UnsupportedLayerError
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import FillerParameter, LayerParameter

#: Values in one blob or parameter: Caffe counts them in an int.
MAX_BLOB_ELEMENTS = 2**31 - 1
# Caffe reads uint32 geometry fields into int: larger values turn negative.
INT_MAX = 2**31 - 1
# Caffe's GetFiller knows these; any other name is LOG(FATAL).
FILLER_TYPES = frozenset({"constant", "gaussian", "positive_unitball", "uniform", "xavier", "msra", "bilinear"})

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Param:
    """One parameter blob: its shape and the filler Caffe sets it up with (its default applied)."""

    shape: Shape
    filler: FillerParameter


@dataclass(frozen=True)
class Setup:
    """A rule's result: top shapes, parameter blobs, and the geometry the builder needs (per type)."""

    tops: tuple[Shape, ...]
    params: tuple[Param, ...] = ()
    geometry: Any = None  # per type, documented by its rule

    @property
    def param_shapes(self) -> list[Shape]:
        return [p.shape for p in self.params]


def count(shape: Sequence[int]) -> int:
    """Caffe's Blob::count: the product of the axes (1 for none)."""
    return math.prod(shape)


class LayerCheck:
    """One layer being checked: its definition and bottom shapes, and error helpers."""

    def __init__(self, layer: LayerParameter, bottoms: list[Shape], source: str) -> None:
        self.layer, self.bottoms, self.source = layer, bottoms, source

    def error(self, field: str, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.source}: layer {self.layer.name!r} ({self.layer.type}): {field}: {message}")

    def unsupported(self, field: str, message: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self.source}: layer {self.layer.name!r} ({self.layer.type}): {field}: {message}")

    def counts(self, bottoms: tuple[int, int], tops: tuple[int, int]) -> None:
        """Caffe's CheckBlobCounts; -1 = no upper bound."""
        for what, n, (low, high) in (("bottom", len(self.bottoms), bottoms), ("top", len(self.layer.top), tops)):
            if n < low or (high >= 0 and n > high):
                want = str(low) if low == high else f"{low} or more" if high < 0 else f"{low}..{high}"
                raise self.error(what, f"expected {want} {what} blob(s), got {n}")

    def one(self) -> Shape:
        self.counts((1, 1), (1, 1))
        return self.bottoms[0]

    def axis(self, axis: int, shape: Shape, field: str) -> int:
        """Caffe's CanonicalAxisIndex."""
        if not -len(shape) <= axis < len(shape):
            raise self.error(field, f"axis {axis} is out of range for a blob with {len(shape)} axes {list(shape)}")
        return axis % len(shape)

    def int_field(self, field: str, values: Sequence[int], low: int = 0) -> None:
        for v in values:
            if not low <= v <= INT_MAX:
                raise self.error(field, f"expected values in {low}..{INT_MAX}, got {v}")

    def with_channels(self) -> Shape:
        """One bottom of at least 2 axes (N x C ...)."""
        shape = self.one()
        if len(shape) < 2:
            raise self.error("bottom", f"expected at least 2 axes (N x C ...), got shape {list(shape)}")
        return shape

    def four_axes(self) -> Shape:
        shape = self.one()
        if len(shape) != 4:
            raise self.error("bottom", f"expected a 4-axis (N x C x H x W) input, got shape {list(shape)}")
        return shape

    def internal(self, field: str, what: str, shape: Shape) -> None:
        """A buffer Caffe allocates for the layer, bounded as a blob is."""
        self.int_field(field, shape, low=1)
        if count(shape) > MAX_BLOB_ELEMENTS:
            raise self.error(field, f"Caffe's {what} would hold {count(shape)} values, more than {MAX_BLOB_ELEMENTS}")

    def filler(self, field: str, filler: FillerParameter, shape: Shape) -> None:
        """Caffe's filler set-up checks; the fillers run even when a caffemodel follows."""
        if filler.type not in FILLER_TYPES:
            raise self.error(field, f"unknown filler {filler.type!r}; expected one of {', '.join(sorted(FILLER_TYPES))}")
        if filler.type == "gaussian":
            if not filler.std > 0 or math.isinf(filler.std):
                raise self.error(f"{field}.std", f"expected a positive finite std, got {filler.std}")
            if filler.sparse >= 0 and (not shape or filler.sparse > shape[0]):
                outputs = shape[0] if shape else 0
                raise self.error(f"{field}.sparse", f"expected at most {outputs} (the outputs), got {filler.sparse}")
        elif filler.sparse != -1:
            raise self.error(f"{field}.sparse", f"only the gaussian filler takes sparse, got {filler.sparse}")
        if filler.type == "uniform" and not filler.min <= filler.max:
            raise self.error(field, f"expected min <= max, got {filler.min} and {filler.max}")
        if filler.type == "bilinear" and (len(shape) != 4 or shape[2] != shape[3]):
            raise self.error(field, f"the bilinear filler needs a square 4-axis blob, got {list(shape)}")

    def params(self, *specs: tuple[str, FillerParameter, Shape]) -> tuple[Param, ...]:
        """The parameter blobs ``(filler field, filler, shape)``, fillers checked."""
        for field, filler, shape in specs:
            self.filler(field, filler, shape)
        return tuple(Param(tuple(shape), filler) for _, filler, shape in specs)

    def per_top(self, field: str, shapes: Sequence[Shape]) -> tuple[Shape, ...]:
        """One shape for all tops, or one per top."""
        n = len(self.layer.top)
        if len(shapes) not in (1, n):
            raise self.error(field, f"expected one shape, or one per top ({n}), got {len(shapes)}")
        return tuple(tuple(shapes[0] if len(shapes) == 1 else shapes[i]) for i in range(n))


def constant(value: float) -> FillerParameter:
    """A constant filler: a layer's own default where Caffe does not use the proto's."""
    return FillerParameter(type="constant", value=value)


def filler_or(has: bool, filler: FillerParameter, default: float) -> FillerParameter:
    """``filler`` when the definition sets it, else the layer's own constant default."""
    return filler if has else constant(default)
