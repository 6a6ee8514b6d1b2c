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
  :data:`caffe_relabel.netdef.layers.TABLE` (each type's rule lives in its
  family file there): fields, axes, fillers. Other types are refused:
  Caffe also has data, file-writing and ``Python`` layers, which read,
  write or import what a model file names;
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
from typing import Optional, Sequence

from caffe_relabel.errors import ModelFormatError, NetTooLargeError
from caffe_relabel.netdef.layers import TABLE
from caffe_relabel.netdef.layers.check import MAX_BLOB_ELEMENTS, LayerCheck, Setup, Shape
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter, NetParameter, ParamSpec
from caffe_relabel.netdef.proto.phase import layers_in_test_phase
from caffe_relabel.netdef.proto.upgrade import needs_upgrade, upgrade_net

#: Environment variable holding the memory limit of one net, in bytes (see :func:`max_net_bytes`).
MAX_NET_BYTES_ENV = "CAFFE_RELABEL_MAX_NET_BYTES"
#: Bytes per value held: float32 data plus its float32 gradient. Caffe gives every blob and
#: parameter a diff, and pycaffe's backward fills them all (weight gradients included).
BYTES_PER_VALUE = 2 * 4
#: Caffe's kMaxBlobAxes.
MAX_AXES = 32
#: The most layers (``layer`` and V1 ``layers`` together) a definition may have for real Caffe: ten times
#: the deepest published Caffe nets (ResNet-1001: about 4,300). Counted in the text before it is parsed
#: (:func:`caffe_relabel.netdef.prototxt.count_layers`): a 50 MB, 318k-layer file is refused in seconds,
#: where parsing it takes tens, and Caffe's set-up, which Ctrl-C cannot interrupt, grows faster than the
#: layer count (2.1 s at 100k layers, 14 s at 318k). The engine has no such limit.
MAX_PYCAFFE_LAYERS = 50_000

__all__ = ["MAX_AXES", "MAX_BLOB_ELEMENTS", "MAX_NET_BYTES_ENV", "MAX_PYCAFFE_LAYERS", "NetShapes", "check_batch",
           "check_layer_count", "check_net", "max_net_bytes"]


@dataclass(frozen=True)
class NetShapes:
    """What the check found: the TEST-phase layers (upgraded), every shape, and each layer's set-up."""

    layers: list[LayerParameter]
    blobs: dict[str, Shape]  # at the declared batch size
    params: dict[str, list[Shape]]  # layer name -> its parameter blob shapes
    input: str
    elements: int
    setups: dict[str, Setup]  # layer name -> its rule's result (tops, parameters, geometry)


def _count(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _check_size(c: LayerCheck, what: str, shape: Shape) -> int:
    n = _count(shape)
    if len(shape) > MAX_AXES or any(d <= 0 for d in shape) or n > MAX_BLOB_ELEMENTS:
        raise c.error(what, f"shape {list(shape)} is out of bounds: expected at most {MAX_AXES} positive dims and "
                            f"at most {MAX_BLOB_ELEMENTS} values per blob")
    return n


def check_finite_settings(c: LayerCheck) -> None:
    """Refuse NaN or infinity in any float setting of the layer (Power scale, ELU alpha, LRN k, ...).

    Caffe takes them as given and every output becomes NaN: a silent wrong
    answer. A walk over the set fields covers every layer type, present and
    future; fillers are nested messages and are walked too.
    """
    from google.protobuf.descriptor import FieldDescriptor

    floats = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)

    def walk(msg, prefix: str) -> None:
        for fd, value in msg.ListFields():
            if fd.name == "blobs":  # weights: checked where they are read
                continue
            name = f"{prefix}{fd.name}"
            repeated = fd.label == FieldDescriptor.LABEL_REPEATED
            if fd.type in floats:
                for v in (value if repeated else [value]):
                    if not math.isfinite(v):
                        raise c.error(name, f"expected a finite number, got {v}")
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                for i, m in enumerate(value if repeated else [value]):
                    walk(m, f"{name}[{i}]." if repeated else f"{name}.")

    walk(c.layer, "")


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


def check_layer_count(n: int, source: str = "<net>", limit: Optional[int] = None) -> None:
    """Refuse a definition of ``n`` layers, more than ``limit`` (default :data:`MAX_PYCAFFE_LAYERS`);
    ``n`` from :func:`caffe_relabel.netdef.prototxt.count_layers`, before the text is parsed."""
    limit = MAX_PYCAFFE_LAYERS if limit is None else limit
    if n > limit:
        raise NetTooLargeError(f"{source}: {n} layers, more than the {limit} real Caffe is given "
                               f"(netcheck.MAX_PYCAFFE_LAYERS); load it with backend='engine'")


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
    if batch < 1 or batch > MAX_BLOB_ELEMENTS:
        raise NetTooLargeError(f"{source}: expected a batch of 1..{MAX_BLOB_ELEMENTS} samples, got {batch}")
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
    setups: dict[str, Setup] = {}
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
        entry = TABLE.lookup(layer.type, f"{source}: layer {layer.name!r}")
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
        check_finite_settings(c)
        setup = entry.rule(c)
        tops, shapes = setup.tops, setup.param_shapes
        if len(layer.param) > len(shapes):
            raise c.error("param", f"{len(layer.param)} param specs for {len(shapes)} parameter blobs")
        for i, shape in enumerate(shapes):
            total += _check_size(c, f"parameter blob {i}", shape)
            if i < len(layer.param) and layer.param[i].name:
                _check_shared(c, layer.param[i], shape, shared)
        params[layer.name] = shapes
        setups[layer.name] = setup
        for j, (top, shape) in enumerate(zip(layer.top, tops)):
            n = _check_size(c, f"top {top!r}", shape)
            if j < len(layer.bottom) and layer.bottom[j] == top:
                if not entry.in_place:
                    raise c.error("top", f"top {top!r} is computed in place, which Caffe does only for "
                                         f"element-wise layers ({', '.join(TABLE.in_place_names())})")
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
    return NetShapes(layers, blobs, params, inputs[0], total, setups)


def _check_shared(c: LayerCheck, spec: ParamSpec, shape: Shape, shared: dict[str, tuple[Shape, str]]) -> None:
    # Net::AppendParam: a shared parameter must match its owner (shape, or count when PERMISSIVE).
    owner = shared.setdefault(spec.name, (shape, c.layer.name))
    same = owner[0] == shape if spec.share_mode == ParamSpec.STRICT else _count(owner[0]) == _count(shape)
    if not same:
        raise c.error("param", f"shared parameter {spec.name!r} has shape {list(shape)} here and {list(owner[0])} "
                               f"in layer {owner[1]!r}")
