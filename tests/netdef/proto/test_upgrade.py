"""V1 ``layers`` nets and old input fields, upgraded as Caffe's upgrade_proto.cpp does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caffe_relabel.models import testmodels
from caffe_relabel.errors import ModelFormatError
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import NetParameter, V1LayerParameter
from caffe_relabel.netdef.proto.io import parse_net, read_net, read_weights, to_text, write_weights
from caffe_relabel.netdef.proto.upgrade import V1_TYPE_NAMES, needs_upgrade, upgrade_net, upgrade_v1_layer
from tests.conftest import requires_pycaffe

V1_NAMES = {name: enum for enum, name in V1_TYPE_NAMES.items()}


def to_v1(net: NetParameter) -> NetParameter:
    """The digits net written the old way: V1 layers and net-level input fields."""
    out = NetParameter(name=net.name, force_backward=net.force_backward)
    for layer in net.layer:
        if layer.type == "Input":
            out.input.extend(layer.top)
            out.input_dim.extend(layer.input_param.shape[0].dim)
            continue
        v1 = out.layers.add(name=layer.name, type=V1_NAMES[layer.type])
        v1.bottom.extend(layer.bottom)
        v1.top.extend(layer.top)
        v1.blobs.extend(layer.blobs)
        for field, value in layer.ListFields():
            if field.name.endswith("_param") and field.name in V1LayerParameter.DESCRIPTOR.fields_by_name:
                getattr(v1, field.name).CopyFrom(value)
    return out


def test_v1_types_params_and_blobs_move() -> None:
    v1 = V1LayerParameter(name="conv1", type=V1LayerParameter.CONVOLUTION, bottom=["data"], top=["conv1"],
                          blobs_lr=[1.0, 2.0], weight_decay=[1.0, 0.0], param=["w"])
    v1.convolution_param.num_output = 8
    v1.convolution_param.kernel_size.append(3)
    v1.blobs.add(num=8, channels=1, height=3, width=3)
    layer = upgrade_v1_layer(v1)
    assert layer.type == "Convolution" and layer.name == "conv1"
    assert list(layer.bottom) == ["data"] and list(layer.top) == ["conv1"]
    assert layer.convolution_param.num_output == 8 and list(layer.convolution_param.kernel_size) == [3]
    assert [p.lr_mult for p in layer.param] == [1.0, 2.0] and [p.decay_mult for p in layer.param] == [1.0, 0.0]
    assert layer.param[0].name == "w" and len(layer.blobs) == 1 and layer.blobs[0].num == 8


@pytest.mark.parametrize("enum,name", [(V1LayerParameter.INNER_PRODUCT, "InnerProduct"), (V1LayerParameter.SOFTMAX_LOSS, "SoftmaxWithLoss"),
                                       (V1LayerParameter.TANH, "TanH"), (V1LayerParameter.ABSVAL, "AbsVal"), (V1LayerParameter.LRN, "LRN")])
def test_v1_type_names(enum: int, name: str) -> None:
    assert upgrade_v1_layer(V1LayerParameter(name="x", type=enum)).type == name


def test_input_fields_become_an_input_layer_first() -> None:
    net = parse_net('input: "data" input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227\n'
                    'layer { name: "relu" type: "ReLU" bottom: "data" top: "r" }')
    up = upgrade_net(net)
    assert [layer.name for layer in up.layer] == ["input", "relu"]
    assert up.layer[0].type == "Input" and list(up.layer[0].top) == ["data"]
    assert list(up.layer[0].input_param.shape[0].dim) == [10, 3, 227, 227]
    assert not len(up.input) and not len(up.input_dim)
    shaped = upgrade_net(parse_net('input: "a" input_shape { dim: 1 dim: 2 } layers { name: "r" type: RELU bottom: "a" top: "a" }'))
    assert list(shaped.layer[0].input_param.shape[0].dim) == [1, 2] and shaped.layer[1].type == "ReLU"


def test_transform_fields_move_and_batch_norm_freezes() -> None:
    net = parse_net('layers { name: "d" type: DATA top: "d" data_param { source: "s" scale: 0.5 mirror: true } }')
    layer = upgrade_net(net).layer[0]
    assert layer.type == "Data" and layer.transform_param.scale == 0.5 and layer.transform_param.mirror
    assert not layer.data_param.HasField("scale")
    bn = upgrade_net(parse_net('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 } }'))
    assert [p.lr_mult for p in bn.layer[0].param] == [0, 0, 0]


def test_refusals() -> None:
    with pytest.raises(ModelFormatError, match="both 'layer'.*and 'layers'"):
        upgrade_net(parse_net('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }'), source="x.prototxt")
    with pytest.raises(ModelFormatError, match="'old'.*V0 layer format"):
        upgrade_net(parse_net('layers { name: "old" layer { name: "old" type: "conv" } }'))
    with pytest.raises(ModelFormatError, match="expected 4 per input"):
        upgrade_net(parse_net('input: "data" input_dim: 1 input_dim: 3'))


def test_current_nets_need_no_upgrade() -> None:
    assert not needs_upgrade(read_net(testmodels.DIGITS_PROTOTXT))


@requires_pycaffe
def test_v1_digits_runs_like_caffe(tmp_path: Path, digits_blobs: np.ndarray) -> None:
    """A V1 prototxt + V1 caffemodel: the engine agrees with real Caffe reading the same files."""
    pytest.importorskip("torch")
    from caffe_relabel.backends.engine import EngineClassifier
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    proto = tmp_path / "v1.prototxt"
    proto.write_text(to_text(to_v1(read_net(testmodels.DIGITS_PROTOTXT))))
    weights = tmp_path / "v1.caffemodel"
    write_weights(to_v1(read_weights(testmodels.DIGITS_WEIGHTS)), weights)
    assert len(read_weights(weights).layers) and not len(read_weights(weights).layer)
    engine, caffe = EngineClassifier(proto, weights), PycaffeClassifier(proto, weights)
    x = digits_blobs[:20]
    np.testing.assert_allclose(engine.forward(x), caffe.forward(x), atol=1e-6)
    reference = EngineClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS)
    assert np.array_equal(engine.forward(x), reference.forward(x))
