"""A layer's parameter tensors: from checked stored blobs, or from constant fillers when no weights are given."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from caffe_relabel.errors import WeightsMismatchError
from caffe_relabel.netdef.layers.check import Param
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter
from caffe_relabel.netdef.weights import CheckedWeights


def layer_tensors(layer: LayerParameter, params: tuple[Param, ...], weights: Optional[CheckedWeights], source: str,
                  device: torch.device) -> tuple[torch.Tensor, ...]:
    """The layer's parameters: its checked blobs when weights were given (see caffe_relabel.netdef.weights),
    else its fillers, which must be constant: Caffe's random fillers cannot be reproduced."""
    if weights is not None:
        stored = weights.layers.get(layer.name, [])
        return tuple(torch.from_numpy(blob.array(p.shape)).to(device) for blob, p in zip(stored, params))
    tensors = []
    for i, p in enumerate(params):
        if p.filler.type != "constant":
            raise WeightsMismatchError(f"{source}: layer {layer.name!r} ({layer.type}) blob {i}: no weights given and "
                                       f"its filler {p.filler.type!r} is random; pass a caffemodel")
        tensors.append(torch.full(p.shape, float(np.float32(p.filler.value)), dtype=torch.float32, device=device))
    return tuple(tensors)
