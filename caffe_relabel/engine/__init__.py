"""The Caffe-faithful engine: Caffe networks on PyTorch (CPU or CUDA).

``load_net(prototxt, weights)`` gives a :class:`CaffeNet`, a
``torch.nn.Module`` whose ``forward(x)`` returns the logits; every layer
follows Caffe's own ``src/caffe/layers/*.cpp`` forward (see each file under
``engine/layers``), and unsupported layer modes are refused, not approximated.
Layer types, their checks and their builders are registered once, in
:mod:`caffe_relabel.netdef.layers`. Requires torch (the ``engine`` extra).
"""

from __future__ import annotations

import os
from typing import Optional

from caffe_relabel.numerics import NUMERICS
from caffe_relabel.netdef.layers import ENGINE, TABLE
from caffe_relabel.netdef.proto.io import read_net
from caffe_relabel.netdef.weights import WeightsLike
from caffe_relabel.engine.net import CaffeNet, build_net


def load_net(prototxt: "str | os.PathLike[str]", weights: Optional[WeightsLike] = None, device: str = "cpu",
             numerics: str = "faithful") -> CaffeNet:
    """Build a :class:`CaffeNet` from a prototxt file and a caffemodel (or None)."""
    return build_net(read_net(prototxt), weights, device=device, numerics=numerics, source=str(prototxt))


def supported_types() -> list[str]:
    """Every layer type the engine runs, sorted."""
    return TABLE.names(ENGINE)


__all__ = ["NUMERICS", "CaffeNet", "build_net", "load_net", "supported_types"]
