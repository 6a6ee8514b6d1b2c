"""A static check of a Caffe net definition, before any backend builds it.

Real Caffe stops the whole process (LOG(FATAL), CHECK, std::bad_alloc) on
many malformed definitions, and either backend would allocate whatever a
definition declares. :func:`check_net` walks the TEST-phase layers in order,
infers every blob's shape with plain integers (nothing is allocated), and
raises ModelFormatError (UnsupportedLayerError for a type it does not know)
naming the file, the layer, the field and what was expected, for:

- structure: a bottom not produced by an earlier layer (Caffe's order rule,
  which also rules out cycles), a top produced twice that is not the
  in-place use of the layer's own bottom by an element-wise layer that is
  its only reader (Caffe's split insertion breaks the others), two
  layers with one name (weights are matched by name), wrong bottom/top
  counts, parameter blobs inside the definition, a net without exactly one
  Input blob;
- the set-up checks Caffe enforces with CHECK for the layer types in
  :data:`LAYER_TYPES` (the engine's types): fields, axes, fillers. Other
  types are refused: Caffe also has data, file-writing and ``Python``
  layers, which read, write or import what a model file names;
- sizes: every blob and parameter has positive dims, at most
  :data:`MAX_AXES` axes and at most :data:`MAX_BLOB_ELEMENTS` values
  (Caffe's own int count), as do the buffers Caffe allocates inside a
  layer (im2col, LRN padding); geometry fields fit Caffe's int; the net's
  data and gradients fit :func:`max_net_bytes`, at the batch size the
  definition declares.

:func:`check_batch` repeats the shape and size checks at the batch a backend
is about to run, so that neither Caffe (which aborts on a blob over INT_MAX
values) nor the engine allocates past the limit.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .errors import ModelFormatError, NetTooLargeError, UnsupportedLayerError
from .proto.caffe_relabel_caffe_pb2 import (
    ConvolutionParameter,
    EltwiseParameter,
    FillerParameter,
    LayerParameter,
    LRNParameter,
    NetParameter,
    ParamSpec,
    PoolingParameter,
)
from .proto.phase import layers_in_test_phase
from .proto.upgrade import needs_upgrade, upgrade_net

#: Values in one blob or parameter: Caffe counts them in an int.
MAX_BLOB_ELEMENTS = 2**31 - 1
#: Environment variable holding the memory limit of one net, in bytes (see :func:`max_net_bytes`).
MAX_NET_BYTES_ENV = "CAFFE_RELABEL_MAX_NET_BYTES"
#: Bytes per value held: float32 data plus its float32 gradient. Caffe gives every blob and
#: parameter a diff, and pycaffe's backward fills them all (weight gradients included).
BYTES_PER_VALUE = 2 * 4
#: Caffe's kMaxBlobAxes.
MAX_AXES = 32
# Caffe reads uint32 geometry fields into int: larger values turn negative.
_INT_MAX = 2**31 - 1

Shape = tuple[int, ...]

# Layers Caffe runs in place (top == bottom) correctly: element-wise ones.
IN_PLACE_TYPES = frozenset({"AbsVal", "BatchNorm", "Bias", "Dropout", "ELU", "Exp", "Log", "Power", "PReLU", "ReLU",
                            "Scale", "Sigmoid", "Softmax", "TanH"})
# Caffe's GetFiller knows these; any other name is LOG(FATAL).
FILLER_TYPES = frozenset({"constant", "gaussian", "positive_unitball", "uniform", "xavier", "msra", "bilinear"})


@dataclass(frozen=True)
class NetShapes:
    """What the check found: the TEST-phase layers (upgraded) and every shape."""

    layers: list[LayerParameter]
    blobs: dict[str, Shape]  # at the declared batch size
    params: dict[str, list[Shape]]  # layer name -> its parameter blob shapes
    input: str
    elements: int


class LayerCheck:
    """One layer being checked: its definition and bottom shapes, and error helpers.

    Public so that the engine can reuse a check's arithmetic (pooling
    geometry) with the same error messages."""

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
            if not low <= v <= _INT_MAX:
                raise self.error(field, f"expected values in {low}..{_INT_MAX}, got {v}")

    def four_axes(self) -> Shape:
        shape = self.one()
        if len(shape) != 4:
            raise self.error("bottom", f"expected a 4-axis (N x C x H x W) input, got shape {list(shape)}")
        return shape


def _count(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _check_internal(c: LayerCheck, field: str, what: str, shape: Shape) -> None:
    """A buffer Caffe allocates for the layer, bounded as a blob is."""
    c.int_field(field, shape, low=1)
    if _count(shape) > MAX_BLOB_ELEMENTS:
        raise c.error(field, f"Caffe's {what} would hold {_count(shape)} values, more than {MAX_BLOB_ELEMENTS}")


def _filler(c: LayerCheck, field: str, filler: FillerParameter, shape: Shape) -> None:
    # The fillers run when Caffe sets the layer up, even when a caffemodel follows.
    if filler.type not in FILLER_TYPES:
        raise c.error(field, f"unknown filler {filler.type!r}; expected one of {', '.join(sorted(FILLER_TYPES))}")
    if filler.type == "gaussian":
        if not filler.std > 0 or math.isinf(filler.std):
            raise c.error(f"{field}.std", f"expected a positive finite std, got {filler.std}")
        if filler.sparse >= 0 and (not shape or filler.sparse > shape[0]):
            outputs = shape[0] if shape else 0
            raise c.error(f"{field}.sparse", f"expected at most {outputs} (the outputs), got {filler.sparse}")
    elif filler.sparse != -1:
        raise c.error(f"{field}.sparse", f"only the gaussian filler takes sparse, got {filler.sparse}")
    if filler.type == "uniform" and not filler.min <= filler.max:
        raise c.error(field, f"expected min <= max, got {filler.min} and {filler.max}")
    if filler.type == "bilinear" and (len(shape) != 4 or shape[2] != shape[3]):
        raise c.error(field, f"the bilinear filler needs a square 4-axis blob, got {list(shape)}")


def _with_fillers(c: LayerCheck, specs: Sequence[tuple[str, FillerParameter, Shape]]) -> list[Shape]:
    for field, filler, shape in specs:
        _filler(c, field, filler, shape)
    return [shape for _, _, shape in specs]


Rule = Callable[[LayerCheck], tuple[list[Shape], list[Shape]]]  # -> (top shapes, parameter shapes)


def input_shapes(c: LayerCheck) -> list[Shape]:
    """The top shapes an Input layer declares (one shape for all tops, or one each)."""
    c.counts((0, 0), (1, -1))
    return _per_top(c, "input_param.shape", [tuple(s.dim) for s in c.layer.input_param.shape])


def _input(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    return input_shapes(c), []


def _per_top(c: LayerCheck, field: str, shapes: Sequence[Shape]) -> list[Shape]:
    n = len(c.layer.top)
    if len(shapes) not in (1, n):
        raise c.error(field, f"expected one shape, or one per top ({n}), got {len(shapes)}")
    return [tuple(shapes[0] if len(shapes) == 1 else shapes[i]) for i in range(n)]


def dummy_data_shapes(c: LayerCheck) -> list[Shape]:
    """The top shapes a DummyData layer declares (``shape``, or the legacy num/channels/height/width)."""
    c.counts((0, 0), (1, -1))
    p = c.layer.dummy_data_param
    n = len(c.layer.top)
    legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
    if not any(legacy):
        return _per_top(c, "dummy_data_param.shape", [tuple(s.dim) for s in p.shape])
    if len(p.shape):
        raise c.error("dummy_data_param.shape", "expected shape OR num/channels/height/width, not both")
    for name, values in zip(("num", "channels", "height", "width"), legacy):
        if len(values) not in (1, n):
            raise c.error(f"dummy_data_param.{name}", f"expected 1 or {n} values, got {len(values)}")
    return [tuple(v[0] if len(v) == 1 else v[i] for v in legacy) for i in range(n)]


def _dummy_data(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    shapes = dummy_data_shapes(c)
    fillers = list(c.layer.dummy_data_param.data_filler)
    n = len(c.layer.top)
    if len(fillers) not in (0, 1, n):
        raise c.error("dummy_data_param.data_filler", f"expected 0, 1 or {n} data fillers, got {len(fillers)}")
    for i, shape in enumerate(shapes):
        if fillers:
            _filler(c, "dummy_data_param.data_filler", fillers[0 if len(fillers) == 1 else i], shape)
    return shapes, []


def _conv_pair(c: LayerCheck, p: ConvolutionParameter, name: str, default: Optional[int]) -> tuple[int, int]:
    values = list(getattr(p, "kernel_size" if name == "kernel" else name))
    field = f"convolution_param.{'kernel_size' if name == 'kernel' else name}"
    if name != "dilation" and (p.HasField(f"{name}_h") or p.HasField(f"{name}_w")):
        if values:
            raise c.error(field, f"expected {field} OR {name}_h/{name}_w, not both")
        pair = (getattr(p, f"{name}_h"), getattr(p, f"{name}_w"))
    elif not values:
        if default is None:
            raise c.error(field, "is required (or kernel_h and kernel_w)")
        pair = (default, default)
    elif len(values) <= 2:
        pair = (values[0], values[-1])
    else:
        raise c.error(field, f"expected 1 or 2 values for a 2-D convolution, got {len(values)}")
    c.int_field(field, pair, low=0 if name == "pad" else 1)
    return pair


def _convolution(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.convolution_param
    shape = c.one()
    if len(shape) != 4 or c.axis(p.axis, shape, "convolution_param.axis") != 1:
        raise c.unsupported("convolution_param.axis", f"only 2-D convolution over an N x C x H x W blob is supported, "
                                                      f"got shape {list(shape)} with axis {p.axis}")
    kernel, stride = _conv_pair(c, p, "kernel", None), _conv_pair(c, p, "stride", 1)
    pad, dilation = _conv_pair(c, p, "pad", 0), _conv_pair(c, p, "dilation", 1)
    c.int_field("convolution_param.num_output", [p.num_output], low=1)
    c.int_field("convolution_param.group", [p.group], low=1)
    if shape[1] % p.group or p.num_output % p.group:
        raise c.error("convolution_param.group", f"expected group {p.group} to divide both the input channels "
                                                 f"({shape[1]}) and num_output ({p.num_output})")
    out = []
    for size, k, s, pd, d in zip(shape[2:], kernel, stride, pad, dilation):
        c.int_field("convolution_param.pad", [size + 2 * pd])  # Caffe's int arithmetic
        extent = d * (k - 1) + 1
        if size + 2 * pd < extent:
            raise c.error("convolution_param.kernel_size", f"dilated kernel {extent} exceeds the padded input "
                                                           f"{size} + 2 x {pd}")
        out.append((size + 2 * pd - extent) // s + 1)
    # Caffe's im2col buffer: every kernel window of every output position.
    _check_internal(c, "convolution_param.kernel_size", "im2col buffer",
                    (shape[1] * kernel[0] * kernel[1], out[0], out[1]))
    specs = [("convolution_param.weight_filler", p.weight_filler, (p.num_output, shape[1] // p.group) + kernel)]
    if p.bias_term:
        specs.append(("convolution_param.bias_filler", p.bias_filler, (p.num_output,)))
    return [(shape[0], p.num_output, out[0], out[1])], _with_fillers(c, specs)


@dataclass(frozen=True)
class PoolWindow:
    """Kernel, stride, pad and pooled size per spatial axis (h, w)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]


def pool_geometry(c: LayerCheck, p: PoolingParameter, height: int, width: int) -> PoolWindow:
    """PoolingLayer::LayerSetUp's checks and the pooled size (ceil, last window inside).

    The one implementation of Caffe's pooling arithmetic: the engine builds
    its pooling (and within-channel LRN) from the window this returns.
    """
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
            raise c.error("pooling_param.kernel_size", "with global_pooling the kernel size cannot be specified")
        kernel = (height, width)
    elif p.HasField("kernel_size") == (p.HasField("kernel_h") and p.HasField("kernel_w")):
        raise c.error("pooling_param.kernel_size", "expected kernel_size OR both kernel_h and kernel_w")
    else:
        kernel = (p.kernel_size, p.kernel_size) if p.HasField("kernel_size") else (p.kernel_h, p.kernel_w)
    for name in ("pad", "stride"):
        if p.HasField(name) and (p.HasField(f"{name}_h") or p.HasField(f"{name}_w")):
            raise c.error(f"pooling_param.{name}", f"expected {name} OR {name}_h and {name}_w")
        if p.HasField(f"{name}_h") != p.HasField(f"{name}_w"):
            raise c.error(f"pooling_param.{name}_h", f"expected both {name}_h and {name}_w")
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad, p.pad)
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride, p.stride)
    c.int_field("pooling_param.kernel_size", kernel, low=1)
    c.int_field("pooling_param.stride", stride, low=1)
    c.int_field("pooling_param.pad", pad)
    if p.global_pooling and (pad != (0, 0) or stride != (1, 1)):
        raise c.error("pooling_param.global_pooling", "with global_pooling only pad 0 and stride 1 are allowed")
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise c.error("pooling_param.pad", f"expected pad {list(pad)} smaller than the kernel {list(kernel)}")
    out = []
    for size, k, s, pd in zip((height, width), kernel, stride, pad):
        c.int_field("pooling_param.pad", [size + 2 * pd])  # Caffe's int arithmetic
        if k > size + 2 * pd:
            raise c.error("pooling_param.kernel_size", f"kernel {k} is larger than the padded input ({size} + 2 x {pd})")
        span = size + 2 * pd - k
        n = (-(-span // s) if p.round_mode == PoolingParameter.CEIL else span // s) + 1
        n = n - 1 if pd and (n - 1) * s >= size + pd else n
        if (n - 1) * s - pd >= size:
            # Only without padding and with stride > kernel: Caffe's MAX backward then writes
            # through index -1 (heap corruption), and AVE divides by a non-positive count.
            raise c.unsupported("pooling_param.stride", f"the last window starts outside the input (size {size}, "
                                                        f"kernel {k}, stride {s})")
        out.append(n)
    return PoolWindow(kernel, stride, pad, (out[0], out[1]))


def _pooling(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.pooling_param
    if len(c.layer.top) > 1:
        raise c.unsupported("top", "the second (max-index mask) top of Pooling is not supported")
    shape = c.four_axes()
    if p.pool == PoolingParameter.STOCHASTIC:
        raise c.unsupported("pooling_param.pool", "STOCHASTIC pooling is random, and not implemented on CPU by Caffe")
    return [(shape[0], shape[1]) + pool_geometry(c, p, shape[2], shape[3]).out], []


def _inner_product(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.inner_product_param
    shape = c.one()
    axis = c.axis(p.axis, shape, "inner_product_param.axis")
    c.int_field("inner_product_param.num_output", [p.num_output], low=1)
    k = _count(shape[axis:])
    specs = [("inner_product_param.weight_filler", p.weight_filler, (k, p.num_output) if p.transpose else (p.num_output, k))]
    if p.bias_term:
        specs.append(("inner_product_param.bias_filler", p.bias_filler, (p.num_output,)))
    return [tuple(shape[:axis]) + (p.num_output,)], _with_fillers(c, specs)


def _lrn(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.lrn_param
    shape = c.four_axes()
    c.int_field("lrn_param.local_size", [p.local_size], low=1)
    if p.local_size % 2 != 1:
        raise c.error("lrn_param.local_size", f"Caffe's LRN supports only odd sizes, got {p.local_size}")
    # Caffe's zero-padded copy of the squares (across channels) or its pooling (within).
    _check_internal(c, "lrn_param.local_size", "padded buffer", (shape[1] + p.local_size - 1, shape[2] + p.local_size,
                                                                 shape[3] + p.local_size))
    if p.norm_region == LRNParameter.WITHIN_CHANNEL:
        pool = PoolingParameter(pool=PoolingParameter.AVE, pad=(p.local_size - 1) // 2, kernel_size=p.local_size)
        return [(shape[0], shape[1]) + pool_geometry(c, pool, shape[2], shape[3]).out], []
    return [shape], []


def _neuron(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    shape = c.one()
    for kind in ("exp", "log"):
        if c.layer.type.lower() == kind:
            base = getattr(c.layer, f"{kind}_param").base
            if base != -1 and not base > 0:
                raise c.error(f"{kind}_param.base", f"expected -1 (e) or a positive base, got {base}")
    return [shape], []


def _prelu(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.prelu_param
    shape = c.one()
    if len(shape) < 2:
        raise c.error("bottom", f"expected at least 2 axes (N x C ...), got shape {list(shape)}")
    slope = () if p.channel_shared else (shape[1],)
    return [shape], _with_fillers(c, [("prelu_param.filler", p.filler, slope)])


def _batch_norm(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    shape = c.one()
    if len(shape) < 2:
        raise c.error("bottom", f"expected at least 2 axes (N x C ...), got shape {list(shape)}")
    return [shape], [(shape[1],), (shape[1],), (1,)]


def _scale_bias_shape(c: LayerCheck, kind: str, axis_field: int, num_axes: int) -> Shape:
    c.counts((1, 2), (1, 1))
    shape = c.bottoms[0]
    if len(c.bottoms) == 2:
        blob = c.bottoms[1]
        axis = 0 if not blob else c.axis(axis_field, shape, f"{kind}.axis")
    else:
        axis = c.axis(axis_field, shape, f"{kind}.axis")
        if num_axes < -1 or (num_axes >= 0 and axis + num_axes > len(shape)):
            raise c.error(f"{kind}.num_axes", f"num_axes {num_axes} from axis {axis} exceeds the {len(shape)} axes "
                                              f"of the bottom {list(shape)}")
        blob = tuple(shape[axis:] if num_axes == -1 else shape[axis:axis + num_axes])
        axis = axis if blob else 0
    if tuple(shape[axis:axis + len(blob)]) != tuple(blob):
        raise c.error("bottom", f"the {kind.split('_')[0]} blob shape {list(blob)} does not match the bottom "
                                f"{list(shape)} from axis {axis}")
    return tuple(blob)


def _scale(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.scale_param
    blob = _scale_bias_shape(c, "scale_param", p.axis, p.num_axes)
    specs = [] if len(c.bottoms) == 2 else [("scale_param.filler", p.filler, blob)]
    if p.bias_term:
        specs.append(("scale_param.bias_filler", p.bias_filler, blob))
    return [c.bottoms[0]], _with_fillers(c, specs)


def _bias(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.bias_param
    blob = _scale_bias_shape(c, "bias_param", p.axis, p.num_axes)
    specs = [] if len(c.bottoms) == 2 else [("bias_param.filler", p.filler, blob)]
    return [c.bottoms[0]], _with_fillers(c, specs)


def _legacy_axis(c: LayerCheck, param: object, legacy: str, kind: str) -> int:
    if param.HasField(legacy):  # type: ignore[attr-defined]
        if param.HasField("axis"):  # type: ignore[attr-defined]
            raise c.error(f"{kind}.{legacy}", f"expected {legacy} OR axis, not both")
        return int(getattr(param, legacy))
    return int(param.axis)  # type: ignore[attr-defined]


def concat_axis(c: LayerCheck) -> int:
    """The Concat axis (``axis`` or the deprecated ``concat_dim``), made non-negative."""
    c.counts((1, -1), (1, 1))
    return c.axis(_legacy_axis(c, c.layer.concat_param, "concat_dim", "concat_param"), c.bottoms[0], "concat_param.axis")


def _concat(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    axis = concat_axis(c)
    first = c.bottoms[0]
    for i, s in enumerate(c.bottoms[1:], 1):
        if len(s) != len(first) or s[:axis] != first[:axis] or s[axis + 1:] != first[axis + 1:]:
            raise c.error("bottom", f"bottom {i} has shape {list(s)}, incompatible with bottom 0 {list(first)} "
                                    f"for concatenation along axis {axis}")
    out = list(first)
    out[axis] = sum(s[axis] for s in c.bottoms)
    return [tuple(out)], []


def _split(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    c.counts((1, 1), (1, -1))
    return [c.bottoms[0]] * len(c.layer.top), []


def slice_sizes(c: LayerCheck) -> tuple[int, list[int]]:
    """The Slice axis and the size of each top along it (slice points, or an even split)."""
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
    return axis, sizes


def _slice(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    axis, sizes = slice_sizes(c)
    shape = c.bottoms[0]
    return [tuple(shape[:axis]) + (s,) + tuple(shape[axis + 1:]) for s in sizes], []


def _flatten(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.flatten_param
    shape = c.one()
    start = c.axis(p.axis, shape, "flatten_param.axis")
    end = c.axis(p.end_axis, shape, "flatten_param.end_axis")
    if end < start:
        raise c.error("flatten_param.end_axis", f"end_axis {p.end_axis} comes before axis {p.axis}")
    return [tuple(shape[:start]) + (_count(shape[start:end + 1]),) + tuple(shape[end + 1:])], []


def _reshape(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    p = c.layer.reshape_param
    shape = c.one()
    dims = list(p.shape.dim)
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise c.error("reshape_param.shape", f"expected dimensions >= 0 and at most one -1 (inferred), got {dims}")
    start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1
    if not 0 <= start <= len(shape):
        raise c.error("reshape_param.axis", f"axis {p.axis} is out of range for a blob with {len(shape)} axes")
    if p.num_axes < -1 or (p.num_axes != -1 and start + p.num_axes > len(shape)):
        raise c.error("reshape_param.num_axes", f"num_axes {p.num_axes} from axis {start} exceeds the {len(shape)} axes")
    end = len(shape) if p.num_axes == -1 else start + p.num_axes
    out = list(shape[:start]) + dims + list(shape[end:])
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= len(shape):
                raise c.error("reshape_param.shape", f"dimension {i} copies axis {start + i}, which the bottom lacks")
            out[start + i] = shape[start + i]
    if -1 in dims:
        known = _count(d for d in out if d != -1)
        # Caffe divides by the known product: zero would be a division by zero.
        if known == 0 or _count(shape) % known:
            raise c.error("reshape_param.shape", f"cannot infer the -1 dimension of {dims} from {list(shape)}")
        out[start + dims.index(-1)] = _count(shape) // known
    if _count(out) != _count(shape):
        raise c.error("reshape_param.shape", f"cannot reshape {list(shape)} ({_count(shape)} values) to {out}")
    return [tuple(out)], []


def _crop(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    c.counts((2, 2), (1, 1))
    p = c.layer.crop_param
    shape, ref = c.bottoms
    start = c.axis(p.axis, shape, "crop_param.axis")
    n = len(shape) - start
    if len(p.offset) > 1 and len(p.offset) != n:
        raise c.error("crop_param.offset", f"expected 0, 1 or {n} offsets (one per axis from {start}), got {len(p.offset)}")
    if len(ref) != len(shape):
        raise c.error("bottom", f"the reference bottom has {len(ref)} axes, the data bottom {len(shape)}")
    for i in range(n):
        offset = p.offset[0] if len(p.offset) == 1 else (p.offset[i] if p.offset else 0)
        if shape[start + i] - offset < ref[start + i]:
            raise c.error("crop_param.offset", f"the crop of axis {start + i} (size {ref[start + i]}, offset {offset}) "
                                               f"is out of bounds of the input size {shape[start + i]}")
    return [tuple(shape[:start]) + tuple(ref[start:])], []


def _softmax(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    shape = c.one()
    c.axis(c.layer.softmax_param.axis, shape, "softmax_param.axis")
    return [shape], []


def _eltwise(c: LayerCheck) -> tuple[list[Shape], list[Shape]]:
    c.counts((2, -1), (1, 1))
    p = c.layer.eltwise_param
    for i, s in enumerate(c.bottoms[1:], 1):
        if s != c.bottoms[0]:
            raise c.error("bottom", f"bottom {i} has shape {list(s)}, bottom 0 has {list(c.bottoms[0])}; "
                                    "expected equal shapes")
    if len(p.coeff) and p.operation != EltwiseParameter.SUM:
        raise c.error("eltwise_param.coeff", "coefficients are only allowed with operation SUM")
    if len(p.coeff) not in (0, len(c.bottoms)):
        raise c.error("eltwise_param.coeff", f"expected one coefficient per bottom ({len(c.bottoms)}), got {len(p.coeff)}")
    return [c.bottoms[0]], []


#: Layer type -> its rule; the types both backends accept.
LAYER_TYPES: dict[str, Rule] = {
    "Input": _input, "DummyData": _dummy_data, "Convolution": _convolution, "Pooling": _pooling,
    "InnerProduct": _inner_product, "LRN": _lrn, "PReLU": _prelu, "BatchNorm": _batch_norm, "Scale": _scale,
    "Bias": _bias, "Concat": _concat, "Split": _split, "Slice": _slice, "Flatten": _flatten, "Reshape": _reshape,
    "Crop": _crop, "Softmax": _softmax, "Eltwise": _eltwise,
    **{t: _neuron for t in ("AbsVal", "Dropout", "ELU", "Exp", "Log", "Power", "ReLU", "Sigmoid", "TanH")},
}


def _check_size(c: LayerCheck, what: str, shape: Shape) -> int:
    n = _count(shape)
    if len(shape) > MAX_AXES or any(d <= 0 for d in shape) or n > MAX_BLOB_ELEMENTS:
        raise c.error(what, f"shape {list(shape)} is out of bounds: expected at most {MAX_AXES} positive dims and "
                            f"at most {MAX_BLOB_ELEMENTS} values per blob")
    return n


def max_net_bytes() -> int:
    """The memory one net may need (data and gradients): $CAFFE_RELABEL_MAX_NET_BYTES, else half of physical RAM.

    Half, so that a net a model file declares (or a batch an option asks for) can never take
    the machine: beyond it the kernel's OOM killer ends this process, or another one.
    A fixed cap (say 4 GiB) would refuse GoogLeNet at the batches the sweep runs on a GPU host.
    """
    value = os.environ.get(MAX_NET_BYTES_ENV)
    if value is None:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    try:
        limit = int(float(value))
    except (ValueError, OverflowError):
        limit = 0
    if limit <= 0:
        raise NetTooLargeError(f"{MAX_NET_BYTES_ENV}={value!r}: expected a positive number of bytes")
    return limit


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_net(netdef: NetParameter, source: str = "<net>", max_bytes: Optional[int] = None) -> NetShapes:
    """Check a net definition (current, V1 or with input fields) as described above.

    max_bytes: the memory limit (default :func:`max_net_bytes`)."""
    if needs_upgrade(netdef):
        netdef = upgrade_net(netdef, source)
    layers = layers_in_test_phase(netdef.layer, netdef.state.stage, source)
    return _walk(layers, source, max_net_bytes() if max_bytes is None else max_bytes, "")


def check_batch(checked: NetShapes, batch: int, source: str = "<net>", max_bytes: Optional[int] = None) -> NetShapes:
    """``checked`` (from :func:`check_net`) with its input reshaped to ``batch`` samples, checked again.

    Every shape is inferred anew (integers only: cheap), since not every blob scales with the
    batch (a Reshape or InnerProduct over axis 0 can refuse another batch, as Caffe would
    abort). Raises NetTooLargeError naming the batch, the blob or the memory needed and the limit.
    """
    if batch < 1 or batch > _INT_MAX:
        raise NetTooLargeError(f"{source}: expected a batch of 1..{_INT_MAX} samples, got {batch}")
    layers = []
    for layer in checked.layers:
        if layer.type == "Input":
            copy = LayerParameter()
            copy.CopyFrom(layer)
            for shape in copy.input_param.shape:
                if len(shape.dim):
                    shape.dim[0] = batch
            layer = copy
        layers.append(layer)
    try:
        return _walk(layers, source, max_net_bytes() if max_bytes is None else max_bytes, f" at a batch of {batch}")
    except NetTooLargeError:
        raise
    except ModelFormatError as e:
        raise NetTooLargeError(f"{e} (at a batch of {batch} samples)") from None


def _walk(layers: list[LayerParameter], source: str, max_bytes: int, at: str) -> NetShapes:
    # check_net's walk over the TEST-phase layers; `at` says which batch, for the memory error.
    blobs: dict[str, Shape] = {}
    params: dict[str, list[Shape]] = {}
    shared: dict[str, tuple[Shape, str]] = {}
    inputs: list[str] = []
    names: set[str] = set()
    readers: Counter[str] = Counter()  # layers reading each blob since it was last written
    total = 0
    for layer in layers:
        c = LayerCheck(layer, [], source)
        if layer.name in names:
            raise c.error("name", "another layer has this name; expected unique names (weights are matched by name)")
        names.add(layer.name)
        if layer.type not in LAYER_TYPES:
            raise UnsupportedLayerError(f"{source}: layer {layer.name!r}: layer type {layer.type!r} is not supported; "
                                        f"supported types: {', '.join(sorted(LAYER_TYPES))}")
        if len(layer.blobs):
            raise c.error("blobs", "the definition carries parameter blobs; expected them in the caffemodel")
        for b in layer.bottom:
            if b not in blobs:
                raise c.error("bottom", f"bottom blob {b!r} is not produced by any earlier layer")
        c.bottoms = [blobs[b] for b in layer.bottom]
        for b in layer.bottom:
            readers[b] += 1
        # Net::Init and Layer::SetLossWeights CHECK these counts.
        for field, n, per, want in (("propagate_down", len(layer.propagate_down), "bottom", len(layer.bottom)),
                                    ("loss_weight", len(layer.loss_weight), "top", len(layer.top))):
            if n not in (0, want):
                raise c.error(field, f"expected none or one per {per} ({want}), got {n}")
        tops, shapes = LAYER_TYPES[layer.type](c)
        if len(layer.param) > len(shapes):
            raise c.error("param", f"{len(layer.param)} param specs for {len(shapes)} parameter blobs")
        for i, shape in enumerate(shapes):
            total += _check_size(c, f"parameter blob {i}", shape)
            if i < len(layer.param) and layer.param[i].name:
                _check_shared(c, layer.param[i], shape, shared)
        params[layer.name] = shapes
        for j, (top, shape) in enumerate(zip(layer.top, tops)):
            n = _check_size(c, f"top {top!r}", shape)
            if j < len(layer.bottom) and layer.bottom[j] == top:
                if layer.type not in IN_PLACE_TYPES:
                    raise c.error("top", f"top {top!r} is computed in place, which Caffe does only for "
                                         f"element-wise layers ({', '.join(sorted(IN_PLACE_TYPES))})")
                if readers[top] > 1:
                    # Caffe's InsertSplits renames the bottoms of a blob read twice, and this top then
                    # clashes with the original (LOG(FATAL) "produced by multiple sources").
                    raise c.error("top", f"blob {top!r} is computed in place here but also read by another layer; "
                                         "expected an in-place layer to be the only reader of its bottom")
            elif top in blobs:
                raise c.error("top", f"top blob {top!r} is produced by an earlier layer too; expected unique top "
                                     "names except in-place (top == bottom) layers")
            else:
                total += n
            blobs[top] = shape
            readers[top] = 0
        if total * BYTES_PER_VALUE > max_bytes:
            need = total * BYTES_PER_VALUE
            raise NetTooLargeError(
                f"{source}: layer {layer.name!r} ({layer.type}): the net up to this layer needs {_gib(need)} ({need} "
                f"bytes: {total} values, data and gradients){at}, more than the limit of {_gib(max_bytes)} "
                f"({max_bytes} bytes); raise it with {MAX_NET_BYTES_ENV}=BYTES if the machine has the memory")
        if layer.type == "Input":
            inputs.extend(layer.top)
    if len(inputs) != 1:
        raise ModelFormatError(f"{source}: expected a net with one input blob, got {len(inputs)}: {inputs}")
    return NetShapes(layers, blobs, params, inputs[0], total)


def _check_shared(c: LayerCheck, spec: ParamSpec, shape: Shape, shared: dict[str, tuple[Shape, str]]) -> None:
    # Net::AppendParam: a shared parameter must match its owner (shape, or count when PERMISSIVE).
    owner = shared.setdefault(spec.name, (shape, c.layer.name))
    same = owner[0] == shape if spec.share_mode == ParamSpec.STRICT else _count(owner[0]) == _count(shape)
    if not same:
        raise c.error("param", f"shared parameter {spec.name!r} has shape {list(shape)} here and {list(owner[0])} "
                               f"in layer {owner[1]!r}")
