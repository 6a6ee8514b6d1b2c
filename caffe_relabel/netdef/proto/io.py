"""Readers and writers for prototxt, caffemodel and binaryproto files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, Union

import numpy as np
from google.protobuf import message, text_format

from caffe_relabel.files import atomic_write
from caffe_relabel.files.bounded_read import LIMITS, read_bounded
from caffe_relabel.errors import ModelFormatError
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import BlobProto, NetParameter

PathLike = Union[str, "os.PathLike[str]"]

# A caffemodel larger than this is refused before protobuf allocates it
# (Caffe's own reader stops at 2 GiB; the largest zoo models are ~550 MB).
MAX_MODEL_BYTES = LIMITS["caffemodel"]


def _read_bytes(path: PathLike, what: str, kind: str) -> bytes:
    return read_bounded(path, what, kind, ModelFormatError)


_Message = TypeVar("_Message", bound=message.Message)


def _read_binary(path: PathLike, into: _Message, what: str, kind: str, not_a: str) -> _Message:
    """``path`` decoded into the empty protobuf message ``into``; a file that does not decode is "not a ``not_a``"."""
    data = _read_bytes(path, what, kind)
    try:
        into.ParseFromString(data)
    except message.DecodeError as e:
        raise ModelFormatError(f"{path}: not a {not_a} (protobuf decode failed: {e})") from None
    return into


def read_text(path: PathLike, what: str) -> str:
    """A text file (a prototxt) of at most 64 MiB, decoded as UTF-8."""
    data = _read_bytes(path, what, "prototxt")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFormatError(f"{path}: {what} is not UTF-8 text (byte {e.start})") from None


def read_net(path: PathLike) -> NetParameter:
    """Parse a prototxt (protobuf text format) into a NetParameter."""
    return parse_net(read_text(path, "prototxt"), source=str(path))


def parse_net(text: str, source: str = "<prototxt>") -> NetParameter:
    """Parse prototxt text; errors name ``source`` and the line and column.

    Strict, as Caffe's C++ parser is (a singular field given twice is an
    error, where protobuf's Python ``Merge`` would keep the last): text
    accepted here is text Caffe accepts.
    """
    net = NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        raise ModelFormatError(f"{source}: not a valid Caffe net definition: {e}") from None
    return net


def read_weights(path: PathLike) -> NetParameter:
    """Parse a binary caffemodel into a NetParameter (``layer`` or V1 ``layers``)."""
    net = _read_binary(path, NetParameter(), "caffemodel", "caffemodel", "Caffe binary model")
    if not net.layer and not net.layers:
        raise ModelFormatError(f"{path}: caffemodel holds no layers (is it a prototxt or another file?)")
    # protobuf hands back bytes for string fields that are not valid UTF-8.
    for i, layer in enumerate(net.layer or net.layers):
        if not isinstance(layer.name, str) or (net.layer and not isinstance(layer.type, str)):
            raise ModelFormatError(f"{path}: layer {i}: name or type is not valid UTF-8 text")
    return net


def blob_shape(blob: BlobProto) -> tuple[int, ...]:
    """The blob's shape: ``shape.dim`` or, in old files, num/channels/height/width."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return (blob.num, blob.channels, blob.height, blob.width)


def check_blob_values(blob: BlobProto, shape: tuple[int, ...], source: str = "<blob>") -> None:
    """Caffe's Blob::FromProto checks: as many values (and diffs, if any) as ``shape`` holds.

    Caffe reads ``double_data`` when it has any values, ``data`` otherwise.
    """
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    for kind, doubles, floats in (("values", blob.double_data, blob.data), ("diffs", blob.double_diff, blob.diff)):
        n = len(doubles) or len(floats)
        if n != count and (kind == "values" or n):
            raise ModelFormatError(f"{source}: blob declares shape {list(shape)} ({count} values) but holds {n} {kind}")


def blob_to_array(blob: BlobProto, source: str = "<blob>") -> np.ndarray:
    """A float32 array of the blob's data in its declared shape; non-finite values are refused."""
    shape = blob_shape(blob)
    check_blob_values(blob, shape, source)
    # fromiter with a known count: protobuf's repeated field has no buffer
    # interface, and np.asarray on it is about 2.5x slower.
    if len(blob.double_data):
        values = np.fromiter(blob.double_data, dtype=np.float64, count=len(blob.double_data)).astype(np.float32)
    else:
        values = np.fromiter(blob.data, dtype=np.float32, count=len(blob.data))
    check_finite(values, source)
    return values.reshape(shape)


def check_finite(values: np.ndarray, source: str) -> None:
    """Refuse NaN or infinite weights: no relabelling on them means anything."""
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ModelFormatError(f"{source}: blob holds {bad} non-finite values (NaN or inf); expected finite numbers")


@dataclass(frozen=True)
class LayerWeights:
    """The parameter blobs of one layer as stored in a caffemodel."""

    name: str
    type: str
    shapes: tuple[tuple[int, ...], ...]
    blobs: tuple[BlobProto, ...]


def weights_by_layer(net: NetParameter) -> dict[str, LayerWeights]:
    """Parameter blobs by layer name, from either the current or the V1 layer list."""
    out: dict[str, LayerWeights] = {}
    layers = list(net.layer) if net.layer else list(net.layers)
    for layer in layers:
        if not layer.blobs:
            continue
        type_name = layer.type if isinstance(layer.type, str) else _v1_type_name(layer.type)
        out[layer.name] = LayerWeights(
            name=layer.name,
            type=type_name,
            shapes=tuple(blob_shape(b) for b in layer.blobs),
            blobs=tuple(layer.blobs),
        )
    return out


def _v1_type_name(enum_value: int) -> str:
    from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import V1LayerParameter

    return V1LayerParameter.LayerType.Name(enum_value)


def read_mean(path: PathLike) -> np.ndarray:
    """A mean file (binaryproto BlobProto) as a float32 C x H x W array."""
    blob = _read_binary(path, BlobProto(), "mean binaryproto", "mean", "Caffe binaryproto blob")
    arr = blob_to_array(blob, source=str(path))
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.size == 0:
        raise ModelFormatError(f"{path}: mean blob has shape {list(arr.shape)}, expected 1 x C x H x W or C x H x W")
    return arr


def write_weights(net: NetParameter, path: PathLike) -> None:
    """Write a NetParameter as a binary caffemodel, atomically (OutputError if it cannot be written)."""
    atomic_write.write_bytes(path, net.SerializeToString(), "caffemodel")


def to_text(net: NetParameter) -> str:
    """Protobuf text format of a NetParameter (a prototxt)."""
    return text_format.MessageToString(net)
