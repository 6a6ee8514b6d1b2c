"""The static rules: what they derive for the builders, and the modes they refuse (layer, field, reason)."""

from __future__ import annotations

import pytest

from caffe_relabel.errors import ModelFormatError, UnsupportedLayerError
from caffe_relabel.netdef.layers.conv import ConvGeometry
from caffe_relabel.netdef.layers.pooling import PoolWindow
from caffe_relabel.netdef.layers.shape import CropWindow, ReshapeTarget, SliceSizes
from caffe_relabel.netdef.netcheck import check_net
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import PoolingParameter
from caffe_relabel.netdef.proto.io import parse_net

INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 6 dim: 7 dim: 8 } } }\n'


def _setup(body: str, name: str):
    return check_net(parse_net(INPUT + body), "net.prototxt").setups[name]


@pytest.mark.parametrize("body,name,geometry", [
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 group: 2 '
     'kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 dilation: 2 } }', "c", ConvGeometry((3, 2), (2, 2), (1, 1), (2, 2), 2)),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }',
     "p", PoolWindow(PoolingParameter.AVE, (3, 3), (2, 2), (0, 0), (3, 4), (7, 8), True)),
    ('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" slice_param { slice_point: 2 } }', "s",
     SliceSizes(1, (2, 4))),
    ('layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { axis: 1 shape { dim: -1 dim: 4 } } }',
     "r", ReshapeTarget((-1, 4), 1, 4)),
    ('layer { name: "ref" type: "DummyData" top: "ref" dummy_data_param { shape { dim: 1 dim: 1 dim: 4 dim: 3 } } } '
     'layer { name: "c" type: "Crop" bottom: "data" bottom: "ref" top: "c" crop_param { axis: 2 offset: 1 offset: 2 } }',
     "c", CropWindow(2, (1, 2), (4, 3))),
    ('layer { name: "f" type: "Flatten" bottom: "data" top: "f" flatten_param { axis: -3 end_axis: -2 } }', "f", (1, 2)),
    ('layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e" eltwise_param { coeff: 0.1 coeff: 2 } }',
     "e", (float.fromhex("0x1.99999ap-4"), 2.0)),  # 0.1 as float32, as Caffe computes with it
])
def test_rules_derive_the_geometry_builders_use(body, name, geometry) -> None:
    assert _setup(body, name).geometry == geometry


def test_reshape_target_applies_at_any_batch_size() -> None:
    target = _setup('layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: 0 dim: -1 } } }',
                    "r").geometry
    assert target.apply((2, 6, 7, 8)) == (2, 336) and target.apply((5, 6, 7, 8)) == (5, 336)


def test_parameters_carry_the_fillers_caffe_uses() -> None:
    body = ('layer { name: "pr" type: "PReLU" bottom: "data" top: "pr" } '
            'layer { name: "s" type: "Scale" bottom: "pr" top: "s" scale_param { bias_term: true } }')
    checked = check_net(parse_net(INPUT + body))
    (slope,) = checked.setups["pr"].params
    scale, bias = checked.setups["s"].params
    assert slope.shape == (6,) and (slope.filler.type, slope.filler.value) == ("constant", 0.25)
    assert (scale.filler.type, scale.filler.value) == ("constant", 1.0) and bias.filler.value == 0.0


def test_two_bottom_scale_has_a_parameter_only_with_bias_term() -> None:
    body = ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 6 } } '
            'layer { name: "se" type: "Scale" bottom: "data" bottom: "ip" top: "se" scale_param { axis: 0 } } '
            'layer { name: "sb" type: "Scale" bottom: "data" bottom: "ip" top: "sb" scale_param { axis: 0 bias_term: true } }')
    checked = check_net(parse_net(INPUT + body))
    assert checked.params["se"] == [] and checked.params["sb"] == [(2, 6)]


@pytest.mark.parametrize("body,error,match", [
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: STOCHASTIC kernel_size: 2 } }',
     UnsupportedLayerError, "net.prototxt: layer 'p' \\(Pooling\\): pooling_param.pool: STOCHASTIC pooling is random"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "mask" pooling_param { kernel_size: 2 } }',
     UnsupportedLayerError, "layer 'p' \\(Pooling\\): top: the second \\(max-index mask\\) top"),
    ('layer { name: "d" type: "DummyData" top: "d" dummy_data_param { shape { dim: 1 } data_filler { type: "gaussian" } } }',
     UnsupportedLayerError, "layer 'd' \\(DummyData\\): dummy_data_param.data_filler: filler 'gaussian' is random"),
    ('layer { name: "x" type: "Exp" bottom: "data" top: "x" exp_param { base: -2 } }', ModelFormatError,
     "layer 'x' \\(Exp\\): exp_param.base: expected -1 \\(e\\) or a positive base, got -2"),
])
def test_modes_that_cannot_be_reproduced_are_refused_statically(body, error, match) -> None:
    with pytest.raises(error, match=match):
        check_net(parse_net(INPUT + body), "net.prototxt")
