"""Caffe's file formats, read and written with protobuf.

The schema (``caffe_relabel_caffe.proto``) is Caffe's own with a different
package name, so it can live beside pycaffe's ``caffe_pb2`` in one process.
Regenerate the Python module with ``make proto``.
"""

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import BlobProto, BlobShape, LayerParameter, NetParameter, V1LayerParameter
from caffe_relabel.netdef.proto.io import (
    LayerWeights,
    blob_to_array,
    read_mean,
    read_net,
    read_weights,
    weights_by_layer,
    write_weights,
)

__all__ = [
    "BlobProto",
    "BlobShape",
    "LayerParameter",
    "LayerWeights",
    "NetParameter",
    "V1LayerParameter",
    "blob_to_array",
    "read_mean",
    "read_net",
    "read_weights",
    "weights_by_layer",
    "write_weights",
]
