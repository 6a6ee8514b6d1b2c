"""Where a network's parameter blobs come from: a caffemodel, a NetParameter or arrays."""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ..proto.caffe_relabel_caffe_pb2 import BlobProto, NetParameter
from ..proto.io import blob_shape, blob_to_array, check_finite, read_weights, weights_by_layer

WeightsLike = Union[str, "os.PathLike[str]", NetParameter, Mapping[str, Sequence[np.ndarray]], None]


class StoredBlob:
    """One stored parameter blob; its values are converted only when asked for."""

    def __init__(self, value: Union[BlobProto, np.ndarray], source: str) -> None:
        self._value = value
        self._source = source
        if isinstance(value, np.ndarray):
            self.shape: tuple[int, ...] = tuple(value.shape)
            self._legacy = False
        else:
            # Caffe's rule (Blob::ShapeEquals): the legacy 4-D fields count only
            # when one is present; a blob with neither them nor a shape is 0-axis
            # (e.g. a channel-shared PReLU slope).
            self._legacy = any(value.HasField(f) for f in ("num", "channels", "height", "width"))
            if not self._legacy and not value.HasField("shape"):
                scalar = BlobProto()
                scalar.CopyFrom(value)
                scalar.shape.SetInParent()
                self._value = value = scalar
            self.shape = blob_shape(value)

    def fits(self, want: Sequence[int]) -> bool:
        """Caffe's Blob::ShapeEquals: legacy num/channels/height/width blobs match the
        expected shape left-padded with ones to four axes."""
        want = tuple(want)
        if not self._legacy:
            return self.shape == want
        return len(want) <= 4 and (1,) * (4 - len(want)) + want == self.shape

    def array(self) -> np.ndarray:
        if isinstance(self._value, np.ndarray):
            values = np.ascontiguousarray(self._value, dtype=np.float32)
            check_finite(values, self._source)
            return values
        return blob_to_array(self._value, source=self._source)


class WeightStore:
    """Parameter blobs by layer name; ``given`` is False when the net runs on its fillers."""

    def __init__(self, weights: WeightsLike) -> None:
        self.given = weights is not None
        self.source = "<weights>"
        self._layers: dict[str, list[StoredBlob]] = {}
        if weights is None:
            return
        if isinstance(weights, (str, os.PathLike)):
            self.source = str(weights)
            weights = read_weights(weights)
        if isinstance(weights, NetParameter):
            for name, layer in weights_by_layer(weights).items():
                where = f"{self.source}: layer {name!r}"
                self._layers[name] = [StoredBlob(b, f"{where} blob {i}") for i, b in enumerate(layer.blobs)]
        else:
            for name, arrays in weights.items():
                self._layers[name] = [StoredBlob(np.asarray(a), f"{self.source}: layer {name!r} blob {i}")
                                      for i, a in enumerate(arrays)]

    def get(self, layer_name: str) -> Optional[list[StoredBlob]]:
        return self._layers.get(layer_name)
