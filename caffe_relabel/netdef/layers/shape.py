"""Layers that move data without arithmetic: Concat, Split, Slice, Flatten, Reshape, Crop, Tile."""

from __future__ import annotations

from dataclasses import dataclass

from caffe_relabel.netdef.layers.check import LayerCheck, Setup, Shape, count
from caffe_relabel.netdef.layers.table import register


def _legacy_axis(c: LayerCheck, param: object, legacy: str, kind: str) -> int:
    if param.HasField(legacy):  # type: ignore[attr-defined]
        if param.HasField("axis"):  # type: ignore[attr-defined]
            raise c.error(f"{kind}.{legacy}", f"expected {legacy} OR axis, not both")
        return int(getattr(param, legacy))
    return int(param.axis)  # type: ignore[attr-defined]


@register("Concat", builder="shape:build_concat")
def _concat(c: LayerCheck) -> Setup:
    """Geometry: the axis (``axis`` or the deprecated ``concat_dim``), made non-negative."""
    c.counts((1, -1), (1, 1))
    axis = c.axis(_legacy_axis(c, c.layer.concat_param, "concat_dim", "concat_param"), c.bottoms[0], "concat_param.axis")
    first = c.bottoms[0]
    for i, s in enumerate(c.bottoms[1:], 1):
        if len(s) != len(first) or s[:axis] != first[:axis] or s[axis + 1:] != first[axis + 1:]:
            raise c.error("bottom", f"bottom {i} has shape {list(s)}, incompatible with bottom 0 {list(first)} "
                                    f"for concatenation along axis {axis}")
    out = list(first)
    out[axis] = sum(s[axis] for s in c.bottoms)
    return Setup((tuple(out),), geometry=axis)


@register("Split", builder="shape:build_split")
def _split(c: LayerCheck) -> Setup:
    c.counts((1, 1), (1, -1))
    return Setup((c.bottoms[0],) * len(c.layer.top))


@dataclass(frozen=True)
class SliceSizes:
    axis: int
    sizes: tuple[int, ...]


@register("Slice", builder="shape:build_slice")
def _slice(c: LayerCheck) -> Setup:
    """Geometry: the axis and each top's size along it (slice points, or an even split)."""
    c.counts((1, 1), (1, -1))
    p = c.layer.slice_param
    shape = c.bottoms[0]
    axis = c.axis(_legacy_axis(c, p, "slice_dim", "slice_param"), shape, "slice_param.axis")
    n, dim = len(c.layer.top), shape[axis]
    points = list(p.slice_point)
    if points:
        if len(points) != n - 1:
            raise c.error("slice_param.slice_point", f"expected {n - 1} slice points for {n} tops, got {len(points)}")
        bounds = [0] + points + [dim]
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise c.error("slice_param.slice_point", f"expected increasing points inside 1..{dim - 1}, got {points}")
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    elif dim % n:
        raise c.error("slice_param.slice_point", f"axis {axis} of size {dim} cannot be split evenly into {n} tops")
    else:
        sizes = [dim // n] * n
    tops = tuple(tuple(shape[:axis]) + (s,) + tuple(shape[axis + 1:]) for s in sizes)
    return Setup(tops, geometry=SliceSizes(axis, tuple(sizes)))


@register("Flatten", builder="shape:build_flatten")
def _flatten(c: LayerCheck) -> Setup:
    """Geometry: the first and last flattened axes, made non-negative."""
    p = c.layer.flatten_param
    shape = c.one()
    start = c.axis(p.axis, shape, "flatten_param.axis")
    end = c.axis(p.end_axis, shape, "flatten_param.end_axis")
    if end < start:
        raise c.error("flatten_param.end_axis", f"end_axis {p.end_axis} comes before axis {p.axis}")
    return Setup((tuple(shape[:start]) + (count(shape[start:end + 1]),) + tuple(shape[end + 1:]),), geometry=(start, end))


@dataclass(frozen=True)
class ReshapeTarget:
    """reshape_layer.cpp's rule: axes [start, end) become ``dims``; 0 copies the bottom's axis, -1 is inferred.

    Applied again at run time, where the batch size may differ from the declared one."""

    dims: tuple[int, ...]
    start: int
    end: int

    def known(self, shape: Shape) -> list[int]:
        """The target with 0s copied and the -1 left in place."""
        out = list(shape[:self.start]) + list(self.dims) + list(shape[self.end:])
        for i, d in enumerate(self.dims):
            if d == 0:
                out[self.start + i] = shape[self.start + i]
        return out

    def apply(self, shape: Shape) -> Shape:
        out = self.known(shape)
        if -1 in self.dims:
            out[self.start + self.dims.index(-1)] = count(shape) // count(d for d in out if d != -1)
        return tuple(out)


@register("Reshape", builder="shape:build_reshape")
def _reshape(c: LayerCheck) -> Setup:
    p = c.layer.reshape_param
    shape = c.one()
    dims = tuple(p.shape.dim)
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise c.error("reshape_param.shape", f"expected dimensions >= 0 and at most one -1 (inferred), got {list(dims)}")
    start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1
    if not 0 <= start <= len(shape):
        raise c.error("reshape_param.axis", f"axis {p.axis} is out of range for a blob with {len(shape)} axes")
    if p.num_axes < -1 or (p.num_axes != -1 and start + p.num_axes > len(shape)):
        raise c.error("reshape_param.num_axes", f"num_axes {p.num_axes} from axis {start} exceeds the {len(shape)} axes")
    target = ReshapeTarget(dims, start, len(shape) if p.num_axes == -1 else start + p.num_axes)
    for i, d in enumerate(dims):
        if d == 0 and start + i >= len(shape):
            raise c.error("reshape_param.shape", f"dimension {i} copies axis {start + i}, which the bottom lacks")
    known = count(d for d in target.known(shape) if d != -1)
    # Caffe divides by the known product: zero would be a division by zero.
    if -1 in dims and (known == 0 or count(shape) % known):
        raise c.error("reshape_param.shape", f"cannot infer the -1 dimension of {list(dims)} from {list(shape)}")
    out = target.apply(shape)
    if count(out) != count(shape):
        raise c.error("reshape_param.shape", f"cannot reshape {list(shape)} ({count(shape)} values) to {list(out)}")
    return Setup((out,), geometry=target)


@dataclass(frozen=True)
class CropWindow:
    """The first cropped axis, and the offset and size along each axis from it."""

    start: int
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]


@register("Crop", builder="shape:build_crop")
def _crop(c: LayerCheck) -> Setup:
    c.counts((2, 2), (1, 1))
    p = c.layer.crop_param
    shape, ref = c.bottoms
    start = c.axis(p.axis, shape, "crop_param.axis")
    n = len(shape) - start
    if len(p.offset) > 1 and len(p.offset) != n:
        raise c.error("crop_param.offset", f"expected 0, 1 or {n} offsets (one per axis from {start}), got {len(p.offset)}")
    if len(ref) != len(shape):
        raise c.error("bottom", f"the reference bottom has {len(ref)} axes, the data bottom {len(shape)}")
    offsets = tuple(p.offset[0] if len(p.offset) == 1 else (p.offset[i] if p.offset else 0) for i in range(n))
    for i, offset in enumerate(offsets):
        if shape[start + i] - offset < ref[start + i]:
            raise c.error("crop_param.offset", f"the crop of axis {start + i} (size {ref[start + i]}, offset {offset}) "
                                               f"is out of bounds of the input size {shape[start + i]}")
    return Setup((tuple(shape[:start]) + tuple(ref[start:]),), geometry=CropWindow(start, offsets, tuple(ref[start:])))


@dataclass(frozen=True)
class Tiling:
    axis: int
    tiles: int


@register("Tile", builder="shape:build_tile")
def _tile(c: LayerCheck) -> Setup:
    """tile_layer.cpp: the blob from ``axis`` on is repeated ``tiles`` times along ``axis``."""
    p = c.layer.tile_param
    shape = c.one()
    axis = c.axis(p.axis, shape, "tile_param.axis")
    if not p.HasField("tiles"):
        raise c.error("tile_param.tiles", "is required (Caffe CHECKs it)")
    c.int_field("tile_param.tiles", [p.tiles], low=1)
    if axis == 0:
        # The top would hold tiles x N samples for N inputs: no longer one output per image.
        raise c.unsupported("tile_param.axis", "tiling the batch axis (0) mixes the samples of a batch; "
                                               "expected an axis after the batch")
    out = list(shape)
    out[axis] *= p.tiles
    return Setup((tuple(out),), geometry=Tiling(axis, p.tiles))
