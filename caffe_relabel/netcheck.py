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
  :data:`caffe_relabel.layers.TABLE` (each type's rule lives in its
  family file there): fields, axes, fillers. Other types are refused:
  Caffe also has data, file-writing and ``Python`` layers, which read,
  write or import what a model file names;
- sizes: every blob and parameter has positive dims, at most
  :data:`MAX_AXES` axes and at most :data:`MAX_BLOB_ELEMENTS` values
  (Caffe's own int count), as do the buffers Caffe allocates inside a
  layer (im2col, LRN padding); geometry fields fit Caffe's int; the net
  holds at most :data:`MAX_NET_ELEMENTS` values in all, at the batch size
  the definition declares.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from .errors import ModelFormatError
from .layers import TABLE
from .layers.check import MAX_BLOB_ELEMENTS, LayerCheck, Setup, Shape
from .proto.caffe_relabel_caffe_pb2 import LayerParameter, NetParameter, ParamSpec
from .proto.phase import layers_in_test_phase
from .proto.upgrade import needs_upgrade, upgrade_net

#: Values in all blobs and parameters together (16 GiB of float32).
MAX_NET_ELEMENTS = 2**32
#: Caffe's kMaxBlobAxes.
MAX_AXES = 32

__all__ = ["MAX_AXES", "MAX_BLOB_ELEMENTS", "MAX_NET_ELEMENTS", "NetShapes", "check_net"]


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


def check_net(netdef: NetParameter, source: str = "<net>") -> NetShapes:
    """Check a net definition (current, V1 or with input fields) as described above."""
    if needs_upgrade(netdef):
        netdef = upgrade_net(netdef, source)
    layers = layers_in_test_phase(netdef.layer, netdef.state.stage, source)
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
        if total > MAX_NET_ELEMENTS:
            raise c.error("top", f"the net up to this layer holds {total} values, more than the {MAX_NET_ELEMENTS} "
                                 "caffe-relabel accepts")
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
