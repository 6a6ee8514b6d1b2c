"""Where a network's "features before the last fully connected layer" live."""

from __future__ import annotations

from pathlib import Path

from caffe_relabel.errors import ModelFormatError
from caffe_relabel.models.model import Model
from caffe_relabel.netdef.proto.io import read_net

# Caffe's V1LayerParameter.LayerType value of INNER_PRODUCT.
_V1_INNER_PRODUCT = 14


def definition_path(model: Model) -> Path:
    """The prototxt a loaded model was built from."""
    from caffe_relabel.models import zoo
    from caffe_relabel.models.options import RANDOM_PREFIX

    name = model.name[len(RANDOM_PREFIX):] if model.name.startswith(RANDOM_PREFIX) else model.name
    if name in zoo.MODELS:
        return zoo.prototxt_path(name)
    path = getattr(model.classifier, "prototxt", None)
    if path is None:
        raise ModelFormatError(f"model {model.name!r}: cannot tell which prototxt it was built from; name the feature blob")
    return Path(path)


def last_fc_input(prototxt: "str | Path") -> str:
    """The bottom blob of the last InnerProduct layer (the paper's SVM features)."""
    net = read_net(prototxt)
    bottoms = [list(l.bottom) for l in net.layer if l.type == "InnerProduct"]
    bottoms += [list(l.bottom) for l in net.layers if l.type == _V1_INNER_PRODUCT]
    if not bottoms or not bottoms[-1]:
        raise ModelFormatError(f"{prototxt}: no InnerProduct layer, so no features before the last fully connected layer")
    return bottoms[-1][0]
