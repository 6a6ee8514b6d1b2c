"""The classifier head on both backends, and the static refusals of the new layer types (layer, field, reason)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caffe_relabel.errors import ModelFormatError, UnsupportedLayerError
from caffe_relabel.netdef.netcheck import check_net
from caffe_relabel.netdef.proto.io import parse_net
from tests.conftest import requires_pycaffe

INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }\n'
IP = 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 5 weight_filler { type: "constant" value: 0.01 } } }\n'
SOFTMAX = 'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }\n'
ARGMAX = 'layer { name: "top" type: "ArgMax" bottom: "prob" top: "top" argmax_param { top_k: 2 } }\n'


def _engine(tmp_path: Path, body: str):
    pytest.importorskip("torch")
    from caffe_relabel.backends.engine import EngineClassifier

    path = tmp_path / "net.prototxt"
    path.write_text(INPUT + body)
    return EngineClassifier(path)


def _pycaffe(tmp_path: Path, body: str):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    path = tmp_path / "net.prototxt"
    path.write_text(INPUT + body)
    return PycaffeClassifier(path)


BACKENDS = [pytest.param(_engine, id="engine"), pytest.param(_pycaffe, id="pycaffe", marks=requires_pycaffe)]


@pytest.mark.parametrize("make", BACKENDS)
@pytest.mark.parametrize("body,message", [
    ('layer { name: "prob" type: "Softmax" bottom: "data" top: "prob" softmax_param { axis: 2 } }',
     "layer 'prob' \\(Softmax\\): softmax_param.axis: the net's final Softmax normalises over axis 2 of a \\[2, 3, 4, 4\\] blob"),
    # Axis 1 of a blob with spatial axes: a softmax per pixel, not over the classes.
    ('layer { name: "prob" type: "Softmax" bottom: "data" top: "prob" }', "normalises over axis 1 of a \\[2, 3, 4, 4\\] blob"),
    (IP + 'layer { name: "top" type: "ArgMax" bottom: "ip" top: "top" } layer { name: "t" type: "TanH" bottom: "top" top: "t" }',
     "layer 'top' \\(ArgMax\\): ArgMax has no gradient .* only as the layer that gives the net's output"),
    ('layer { name: "top" type: "ArgMax" bottom: "data" top: "top" argmax_param { axis: 2 } }',
     "argmax_param.axis: 2 is not the class axis"),
])
def test_heads_a_classifier_cannot_use_are_refused(tmp_path, make, body: str, message: str) -> None:
    with pytest.raises(UnsupportedLayerError, match=message):
        make(tmp_path, body)


@pytest.mark.parametrize("make", BACKENDS)
def test_a_trailing_argmax_is_skipped(tmp_path, make) -> None:
    with_argmax = make(tmp_path, IP + SOFTMAX + ARGMAX)
    plain = make(tmp_path, IP + SOFTMAX)
    x = np.random.default_rng(0).normal(0, 10, size=(2, 3, 4, 4)).astype(np.float32)
    assert with_argmax.num_classes == plain.num_classes == 5
    a, b = with_argmax.loss_and_gradient(x, [1, 4]), plain.loss_and_gradient(x, [1, 4])
    assert np.array_equal(a.probs, b.probs) and np.allclose(a.probs.sum(axis=1), 1, atol=1e-6)
    assert np.array_equal(a.grad, b.grad) and np.abs(a.grad).max() > 0


def test_threshold_before_the_scores_is_refused_on_pycaffe_only(tmp_path) -> None:
    body = IP + 'layer { name: "t" type: "Threshold" bottom: "ip" top: "t" } ' + \
        'layer { name: "sum" type: "Eltwise" bottom: "ip" bottom: "t" top: "sum" }'
    engine = _engine(tmp_path, body)
    assert engine.num_classes == 5
    pytest.importorskip("caffe")
    with pytest.raises(UnsupportedLayerError, match="layer 't' \\(Threshold\\): Caffe has no backward for it and aborts"):
        _pycaffe(tmp_path, body)


def _check(body: str) -> None:
    check_net(parse_net(INPUT + body), "net.prototxt")


@pytest.mark.parametrize("body,error,message", [
    ('layer { name: "r" type: "Reduction" bottom: "data" top: "r" }', UnsupportedLayerError,
     "layer 'r' \\(Reduction\\): reduction_param.axis: reducing from axis 0 .* sums over the samples"),
    ('layer { name: "t" type: "Tile" bottom: "data" top: "t" tile_param { axis: 0 tiles: 2 } }', UnsupportedLayerError,
     "layer 't' \\(Tile\\): tile_param.axis: tiling the batch axis"),
    ('layer { name: "t" type: "Tile" bottom: "data" top: "t" tile_param { axis: 1 } }', ModelFormatError,
     "tile_param.tiles: is required"),
    ('layer { name: "a" type: "ArgMax" bottom: "data" top: "a" argmax_param { top_k: 49 } }', ModelFormatError,
     "argmax_param.top_k: top_k 49 exceeds the 48 values of a sample"),
    ('layer { name: "a" type: "ArgMax" bottom: "data" top: "a" argmax_param { top_k: 0 } }', ModelFormatError,
     "argmax_param.top_k: expected at least 1"),
    ('layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" convolution_param { num_output: 2 kernel_size: 3 pad: 3 } }',
     ModelFormatError, "layer 'd' \\(Deconvolution\\): convolution_param.pad: pad 3 leaves no output"),
    ('layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" convolution_param { num_output: 4 group: 2 kernel_size: 3 } }',
     ModelFormatError, "convolution_param.group: expected group 2 to divide both the input channels \\(3\\)"),
    ('layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: 2 dim: 3 dim: 2 dim: 2 dim: 2 dim: 2 } } } '
     'layer { name: "m" type: "MVN" bottom: "r" top: "m" }', ModelFormatError, "layer 'm' \\(MVN\\): bottom: .* at most 4 axes"),
    # Caffe's backward of these reads the bottom, or writes the bottom diff first: in place it is wrong.
    ('layer { name: "p" type: "Power" bottom: "data" top: "data" power_param { scale: -1 shift: 6 } }', ModelFormatError,
     "layer 'p' \\(Power\\): top: top 'data' is computed in place"),
    ('layer { name: "a" type: "AbsVal" bottom: "data" top: "data" }', ModelFormatError, "computed in place"),
    ('layer { name: "s" type: "Silence" bottom: "data" top: "x" }', ModelFormatError, "expected 0 top blob"),
])
def test_static_refusals(body: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _check(body)


def test_rules_derive_the_new_shapes() -> None:
    body = ('layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 dilation: 2 } } '
            'layer { name: "a" type: "ArgMax" bottom: "data" top: "a" argmax_param { top_k: 3 out_max_val: true } } '
            'layer { name: "ax" type: "ArgMax" bottom: "data" top: "ax" argmax_param { axis: 2 top_k: 2 } } '
            'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 5 } } '
            'layer { name: "m" type: "MVN" bottom: "ip" top: "m" } '
            'layer { name: "r" type: "Reduction" bottom: "data" top: "r" reduction_param { axis: 2 } } '
            'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 7 } } }')
    checked = check_net(parse_net(INPUT + body), "net.prototxt")
    # Deconvolution: 2 x (4 - 1) + 2 x (3 - 1) + 1 - 2 x 1 = 9; weights channels x num_output x k x k.
    assert checked.blobs["d"] == (2, 4, 9, 9) and checked.params["d"] == [(3, 4, 3, 3), (4,)]
    assert checked.blobs["a"] == (2, 2, 3, 1) and checked.blobs["ax"] == (2, 3, 2, 4)
    assert checked.blobs["m"] == (2, 5, 1, 1)  # Caffe's MVN top has 4 axes
    assert checked.blobs["r"] == (2, 3) and checked.blobs["p"] == (7,) and checked.params["p"] == [(7,)]
