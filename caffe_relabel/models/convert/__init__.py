"""Converters that turn pretrained models from other frameworks into Caffe models.

Each converter writes a deploy prototxt (``force_backward: true``) and a
caffemodel using only layers BVLC Caffe has, through this package's own
protobuf schema, so converting needs no Caffe.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from caffe_relabel.models.convert.efficientnet_lite import convert
from caffe_relabel.models.convert.efficientnet_lite_arch import VARIANTS, ModelInfo

# Model name -> (converter writing into a folder, metadata); a new converter joins here.
CONVERTERS: dict[str, tuple[Callable[[Path], tuple[Path, Path]], ModelInfo]] = {
    name: (functools.partial(convert, variant), variant.info) for name, variant in VARIANTS.items()
}
