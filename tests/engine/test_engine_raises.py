"""Error paths of the engine: every refusal names the layer, the field and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from caffe_relabel.engine import build_net, supported_types
from caffe_relabel.errors import ModelFormatError, UnsupportedLayerError, WeightsMismatchError
from caffe_relabel.netdef.proto.io import parse_net

INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'


def build(body: str, weights: object = None) -> object:
    return build_net(parse_net(INPUT + body), weights, source="net.prototxt")


def test_unknown_type_lists_supported_types() -> None:
    with pytest.raises(UnsupportedLayerError) as e:
        build('layer { name: "weird" type: "SPP" bottom: "data" top: "w" }')
    message = str(e.value)
    assert "'weird'" in message and "'SPP'" in message
    for t in ("Convolution", "LRN", "Pooling", "Softmax"):
        assert t in message
    assert supported_types() == sorted(supported_types())


def test_weight_shape_mismatch_names_layer_and_both_shapes() -> None:
    body = 'layer { name: "conv1" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }'
    with pytest.raises(WeightsMismatchError) as e:
        build(body, {"conv1": [np.zeros((4, 3, 5, 5), np.float32), np.zeros(4, np.float32)]})
    assert "'conv1'" in str(e.value) and "[4, 3, 5, 5]" in str(e.value) and "[4, 3, 3, 3]" in str(e.value)


def test_weight_count_mismatch() -> None:
    body = 'layer { name: "conv1" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }'
    with pytest.raises(WeightsMismatchError, match="'conv1'.*1 weight blobs.*expects 2"):
        build(body, {"conv1": [np.zeros((4, 3, 3, 3), np.float32)]})


def test_layer_missing_from_weights() -> None:
    body = 'layer { name: "conv1" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 } }'
    with pytest.raises(WeightsMismatchError, match="'conv1'.*no weights"):
        build(body, {"other": [np.zeros(1, np.float32)]})


def test_random_filler_without_weights() -> None:
    body = ('layer { name: "conv1" type: "Convolution" bottom: "data" top: "c" '
            'convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }')
    with pytest.raises(WeightsMismatchError, match="'conv1'.*'xavier' is random"):
        build(body)


def test_missing_bottom() -> None:
    with pytest.raises(ModelFormatError, match="'relu'.*bottom blob 'nothing' is not produced"):
        build('layer { name: "relu" type: "ReLU" bottom: "nothing" top: "r" }')


@pytest.mark.parametrize("body,match", [
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: STOCHASTIC kernel_size: 2 } }',
     "'p'.*pooling_param.pool.*STOCHASTIC"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "mask" pooling_param { kernel_size: 2 } }', "'p'.*top.*mask"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 1 stride: 3 } }', "'p'.*pooling_param.stride.*outside"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 axis: 2 } }',
     "'c'.*convolution_param.axis"),
])
def test_unsupported_modes_are_refused(body: str, match: str) -> None:
    with pytest.raises(UnsupportedLayerError, match=match):
        build(body)


@pytest.mark.parametrize("body,match", [
    ('layer { name: "n" type: "LRN" bottom: "data" top: "n" lrn_param { local_size: 4 } }', "'n'.*lrn_param.local_size.*odd"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 group: 2 } }',
     "'c'.*convolution_param.group"),
    ('layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 } }', "'c'.*kernel_size.*required"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 3 pad: 3 } }', "'p'.*pooling_param.pad"),
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { global_pooling: true kernel_size: 3 } }',
     "'p'.*global_pooling"),
    ('layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e" eltwise_param { coeff: 1 } }', "'e'.*eltwise_param.coeff"),
    ('layer { name: "f" type: "Flatten" bottom: "data" top: "f" } layer { name: "e" type: "Eltwise" bottom: "data" bottom: "f" top: "e" }',
     "'e'.*bottom 1 has shape \\[1, 192\\]"),
    ('layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: 5 dim: -1 } } }', "'r'.*reshape_param.shape"),
    ('layer { name: "s" type: "Softmax" bottom: "data" top: "s" softmax_param { axis: 4 } }', "'s'.*softmax_param.axis.*out of range"),
    ('layer { name: "ref" type: "DummyData" top: "ref" dummy_data_param { shape { dim: 1 dim: 3 dim: 9 dim: 2 } } } '
     'layer { name: "c" type: "Crop" bottom: "data" bottom: "ref" top: "c" }', "'c'.*crop_param.offset.*out of bounds"),
])
def test_bad_definitions_name_layer_and_field(body: str, match: str) -> None:
    with pytest.raises(ModelFormatError, match=match):
        build(body)


def test_net_without_input() -> None:
    with pytest.raises(ModelFormatError, match="one input blob"):
        build_net(parse_net('layer { name: "ref" type: "DummyData" top: "ref" dummy_data_param { shape { dim: 1 } } }'))


def test_bad_numerics_and_device() -> None:
    body = 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'
    with pytest.raises(ValueError, match="expected numerics"):
        build_net(parse_net(INPUT + body), numerics="turbo")
    with pytest.raises(ValueError, match="expected device"):
        build_net(parse_net(INPUT + body), device="tpu")


def test_cuda_without_cuda_is_unavailable() -> None:
    import torch

    from caffe_relabel.errors import BackendUnavailableError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BackendUnavailableError, match="'cuda'.*no CUDA device"):
        build_net(parse_net(INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'), device="cuda")
