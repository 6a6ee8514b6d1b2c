"""A net's parameter blobs as stored, checked against its definition: one check for both backends.

:func:`check_weights` does, in Python and before any backend reads a value,
everything Caffe's ``Net::CopyTrainedLayersFrom`` CHECKs (and more): one
layer list (current or V1, not both, not V0); for each layer of the checked
definition, as many stored blobs as the layer's rule declares parameters
(none for a layer without parameters, e.g. a two-bottom Scale without
bias), each of the declared shape under Caffe's Blob::ShapeEquals (legacy
num/channels/height/width blobs match the shape left-padded with ones) and
holding that many values. A layer with parameters that the file lacks is
an error too: Caffe would silently keep its filler values. Values are
checked finite where they are converted (:meth:`StoredBlob.array`, or
:func:`check_loaded` on what pycaffe loaded). Messages name the weights
file, the layer and its type, the blob, and what the definition expects.
Torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence, Union

import numpy as np

from caffe_relabel.errors import WeightsMismatchError
from caffe_relabel.netdef.netcheck import NetShapes
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import BlobProto, NetParameter
from caffe_relabel.netdef.proto.io import blob_shape, blob_to_array, check_blob_values, check_finite, read_weights

#: A caffemodel path, a parsed NetParameter, or arrays by layer name.
WeightsLike = Union[str, "os.PathLike[str]", NetParameter, Mapping[str, Sequence[np.ndarray]]]

Shape = tuple[int, ...]


def blob_label(source: str, layer: str, index: int) -> str:
    """How every message names one stored blob."""
    return f"{source}: layer {layer!r} blob {index}"


class StoredBlob:
    """One stored parameter blob; its values are converted (and checked finite) only when asked for."""

    def __init__(self, value: Union[BlobProto, np.ndarray], label: str) -> None:
        self._value = value
        self.label = label
        if isinstance(value, np.ndarray):
            self.shape: Shape = tuple(value.shape)
            self._legacy = False
        else:
            # Caffe's rule (Blob::ShapeEquals): the legacy 4-D fields count only
            # when one is present; a blob with neither them nor a shape is 0-axis
            # (e.g. a channel-shared PReLU slope).
            self._legacy = any(value.HasField(f) for f in ("num", "channels", "height", "width"))
            self.shape = blob_shape(value) if self._legacy or value.HasField("shape") else ()

    def fits(self, want: Shape) -> bool:
        """Caffe's Blob::ShapeEquals."""
        if not self._legacy:
            return self.shape == tuple(want)
        return len(want) <= 4 and (1,) * (4 - len(want)) + tuple(want) == self.shape

    def check_count(self) -> None:
        """Caffe's Blob::FromProto: as many values (and diffs, if any) as the shape holds."""
        if isinstance(self._value, BlobProto):
            check_blob_values(self._value, self.shape, self.label)

    def array(self, shape: Shape) -> np.ndarray:
        """float32 values in the definition's ``shape``; non-finite values are refused."""
        if isinstance(self._value, np.ndarray):
            values = np.ascontiguousarray(self._value, dtype=np.float32)
            check_finite(values, self.label)
        elif self.shape:
            values = blob_to_array(self._value, source=self.label)
        else:
            values = blob_to_array(_with_empty_shape(self._value), source=self.label)
        return values.reshape(shape)


def _with_empty_shape(blob: BlobProto) -> BlobProto:
    scalar = BlobProto()
    scalar.CopyFrom(blob)
    scalar.shape.SetInParent()
    return scalar


@dataclass(frozen=True)
class CheckedWeights:
    """The stored blobs of every layer with parameters, checked against the definition."""

    source: str
    layers: dict[str, list[StoredBlob]]


def _stored(weights: WeightsLike) -> tuple[str, list[tuple[str, list[StoredBlob]]]]:
    """Every stored layer in file order, (name, blobs), layers without blobs and repeated names included."""
    source = "<weights>"
    if isinstance(weights, (str, os.PathLike)):
        source = str(weights)
        weights = read_weights(weights)
    if isinstance(weights, NetParameter):
        if len(weights.layer) and len(weights.layers):
            raise WeightsMismatchError(f"{source}: the caffemodel has both 'layer' and 'layers' (V1) fields; "
                                       "expected one")
        if any(v1.HasField("layer") for v1 in weights.layers):
            raise WeightsMismatchError(f"{source}: the caffemodel uses the V0 layer format; expected V1 or current layers")
        return source, [(layer.name, [StoredBlob(b, blob_label(source, layer.name, i)) for i, b in enumerate(layer.blobs)])
                        for layer in (weights.layer or weights.layers)]
    return source, [(name, [StoredBlob(np.asarray(a), blob_label(source, name, i)) for i, a in enumerate(arrays)])
                    for name, arrays in weights.items()]


def check_weights(weights: WeightsLike, checked: NetShapes, definition: str) -> CheckedWeights:
    """The stored blobs matched to ``checked`` (the definition's static check), as described above.

    Like Caffe's Net::CopyTrainedLayersFrom, every stored layer whose name is in the net is
    checked, in file order, repeated names and layers without blobs included (Caffe CHECKs
    each one, aborting the process on a mismatch); a later copy replaces an earlier one.
    """
    source, stored = _stored(weights)
    types = {layer.name: layer.type for layer in checked.layers}
    layers: dict[str, list[StoredBlob]] = {}
    for name, blobs in stored:
        if name not in types:
            continue  # Caffe ignores it
        shapes = checked.params[name]
        where = f"{source}: layer {name!r} ({types[name]})"
        if shapes and not blobs:
            raise WeightsMismatchError(f"{where} has parameters in {definition} but no weights in the caffemodel")
        if len(blobs) != len(shapes):
            raise WeightsMismatchError(f"{where} has {len(blobs)} weight blobs, {definition} expects {len(shapes)}")
        for i, (blob, shape) in enumerate(zip(blobs, shapes)):
            if not blob.fits(shape):
                raise WeightsMismatchError(f"{where} blob {i}: the weights have shape {list(blob.shape)}, "
                                           f"{definition} expects {list(shape)}")
            blob.check_count()
        if blobs:
            layers[name] = blobs
    for layer in checked.layers:
        if checked.params[layer.name] and layer.name not in layers:
            raise WeightsMismatchError(f"{source}: layer {layer.name!r} ({layer.type}) has parameters in {definition} "
                                       "but no weights in the caffemodel")
    return CheckedWeights(source, layers)


def check_loaded(arrays: Mapping[str, Sequence[np.ndarray]], source: str) -> None:
    """Refuse non-finite values in parameters a backend has loaded itself (pycaffe's ``net.params``)."""
    for name, blobs in arrays.items():
        for i, values in enumerate(blobs):
            check_finite(values, blob_label(source, name, i))
