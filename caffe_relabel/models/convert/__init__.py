"""Converters that turn pretrained models from other frameworks into Caffe models.

Each converter writes a deploy prototxt (``force_backward: true``) and a
caffemodel using only layers BVLC Caffe has, through this package's own
protobuf schema, so converting needs no Caffe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from caffe_relabel.models.convert.efficientnet_lite0 import convert_efficientnet_lite0
from caffe_relabel.models.convert.efficientnet_lite0_arch import INFO as EFFICIENTNET_LITE0
from caffe_relabel.models.convert.efficientnet_lite0_arch import ModelInfo

# Model name -> (converter writing into a folder, metadata); a new converter joins here.
CONVERTERS: dict[str, tuple[Callable[[Path], tuple[Path, Path]], ModelInfo]] = {
    EFFICIENTNET_LITE0.name: (convert_efficientnet_lite0, EFFICIENTNET_LITE0),
}

__all__ = ["CONVERTERS", "EFFICIENTNET_LITE0", "ModelInfo", "convert_efficientnet_lite0"]
