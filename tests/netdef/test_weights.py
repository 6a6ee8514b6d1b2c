"""The one weights check: both backends refuse the same bad files with the same messages, and accept what Caffe writes."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel.models import testmodels
from caffe_relabel.errors import ModelFormatError, WeightsMismatchError
from caffe_relabel.netdef.netcheck import check_net
from caffe_relabel.netdef.proto import read_weights, write_weights
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import BlobProto
from caffe_relabel.netdef.proto.io import parse_net
from caffe_relabel.netdef.weights import StoredBlob, check_weights
from tests.conftest import requires_pycaffe

BACKENDS = [pytest.param("pycaffe", marks=requires_pycaffe), "engine"]

# A squeeze-and-excitation block: the two-bottom Scale "se" takes its scale from "gate" and has no blob.
SE_NET = """force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "squeeze" type: "Pooling" bottom: "conv" top: "squeeze" pooling_param { pool: AVE global_pooling: true } }
layer { name: "excite" type: "InnerProduct" bottom: "squeeze" top: "excite" inner_product_param { num_output: 4 } }
layer { name: "gate" type: "Sigmoid" bottom: "excite" top: "gate" }
layer { name: "se" type: "Scale" bottom: "conv" bottom: "gate" top: "se" scale_param { axis: 0 } }
layer { name: "fc" type: "InnerProduct" bottom: "se" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def _load(backend: str, prototxt, weights):
    if backend == "pycaffe":
        from caffe_relabel.backends.pycaffe import PycaffeClassifier

        return PycaffeClassifier(prototxt, weights)
    pytest.importorskip("torch")
    from caffe_relabel.backends.engine import EngineClassifier

    return EngineClassifier(prototxt, weights)


@requires_pycaffe
def test_a_two_bottom_scale_without_bias_loads_a_caffemodel_written_by_caffe(tmp_path) -> None:
    from caffe_relabel.backends.pycaffe import import_caffe

    caffe = import_caffe()
    caffe.set_mode_cpu()
    prototxt, caffemodel = tmp_path / "se.prototxt", tmp_path / "se.caffemodel"
    prototxt.write_text(SE_NET)
    net = caffe.Net(str(prototxt), caffe.TEST)
    rng = np.random.default_rng(0)
    for blobs in net.params.values():
        for blob in blobs:
            blob.data[...] = rng.normal(0.0, 0.5, blob.data.shape)
    net.save(str(caffemodel))
    # Caffe itself writes the Scale layer with no blob at all.
    assert "se" not in net.params
    assert [len(layer.blobs) for layer in read_weights(caffemodel).layer if layer.name == "se"] == [0]
    x = rng.normal(0.0, 1.0, (2, 3, 5, 5)).astype(np.float32)
    pycaffe_probs = _load("pycaffe", prototxt, caffemodel).forward(x)
    engine_probs = _load("engine", prototxt, caffemodel).forward(x)
    # float32 on both sides; summation order differs by a few ulp.
    np.testing.assert_allclose(engine_probs, pycaffe_probs, rtol=1e-5, atol=1e-7)


def _tampered(tmp_path, edit):
    net = read_weights(testmodels.DIGITS_WEIGHTS)
    edit(net)
    out = tmp_path / "tampered.caffemodel"
    write_weights(net, out)
    return out


def _layer(net, name):
    return next(layer for layer in net.layer if layer.name == name)


def _blob_on_relu(net):
    _layer(net, "relu1").blobs.add(data=[1.0], shape={"dim": [1]})


def _drop_conv2(net):
    del _layer(net, "conv2").blobs[:]


def _extra_bias(net):
    _layer(net, "fc2").blobs.add(data=[0.0] * 10, shape={"dim": [10]})


def _transposed(net):
    _layer(net, "fc2").blobs[0].shape.dim[:] = [64, 10]


def _both_layer_fields(net):
    net.layers.add(name="old")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("edit,match", [
    # Caffe CHECKs the blob count of every layer it finds by name: one on a ReLU would abort the process.
    (_blob_on_relu, "layer 'relu1' \\(ReLU\\) has 1 weight blobs, .*deploy.prototxt expects 0"),
    (_drop_conv2, "layer 'conv2' \\(Convolution\\) has parameters in .*deploy.prototxt but no weights in the caffemodel"),
    (_extra_bias, "layer 'fc2' \\(InnerProduct\\) has 3 weight blobs, .*deploy.prototxt expects 2"),
    (_transposed, "layer 'fc2' \\(InnerProduct\\) blob 0: the weights have shape \\[64, 10\\], .*deploy.prototxt "
                  "expects \\[10, 64\\]"),
    (_both_layer_fields, "both 'layer' and 'layers' \\(V1\\) fields"),
])
def test_both_backends_refuse_the_same_files_with_the_same_message(backend, edit, match, tmp_path) -> None:
    bad = _tampered(tmp_path, edit)
    with pytest.raises(WeightsMismatchError, match=match) as e:
        _load(backend, testmodels.DIGITS_PROTOTXT, bad)
    assert str(e.value).startswith(f"{bad}: ")


def test_legacy_blobs_match_the_shape_left_padded_to_four_axes() -> None:
    legacy = StoredBlob(BlobProto(num=1, channels=1, height=10, width=64), "w")
    assert legacy.shape == (1, 1, 10, 64)
    assert legacy.fits((10, 64)) and legacy.fits((1, 10, 64)) and not legacy.fits((64, 10))
    assert not legacy.fits((1, 1, 1, 10, 64))
    shaped = StoredBlob(BlobProto(shape={"dim": [1, 10, 64]}), "w")
    assert shaped.fits((1, 10, 64)) and not shaped.fits((10, 64))
    # Neither a shape nor the legacy fields: a 0-axis blob (a channel-shared PReLU slope).
    scalar = StoredBlob(BlobProto(data=[0.5]), "w")
    assert scalar.shape == () and scalar.fits(()) and scalar.array(()).tolist() == 0.5


def test_arrays_by_layer_are_checked_as_a_caffemodel_is() -> None:
    checked = check_net(parse_net(testmodels.DIGITS_PROTOTXT.read_text()))
    arrays = {layer.name: [np.zeros(s, np.float32) for s in checked.params[layer.name]] for layer in checked.layers}
    assert set(check_weights(arrays, checked, "net").layers) == {"conv1", "conv2", "fc1", "fc2"}
    arrays["fc1"] = arrays["fc1"][:1]
    with pytest.raises(WeightsMismatchError, match="<weights>: layer 'fc1' \\(InnerProduct\\) has 1 weight blobs, "
                                                   "net expects 2"):
        check_weights(arrays, checked, "net")
    arrays["fc1"] = [np.zeros((64, 512), np.float32), np.array([np.nan] * 64, np.float32)]
    with pytest.raises(ModelFormatError, match="<weights>: layer 'fc1' blob 1: blob holds 64 non-finite values"):
        check_weights(arrays, checked, "net").layers["fc1"][1].array((64,))
