"""The pycaffe backend against real Caffe: gradients, force_backward, weight checks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from caffe_relabel.models import testmodels
from caffe_relabel.errors import BackendUnavailableError, ModelFormatError, UnsupportedLayerError, WeightsMismatchError
from caffe_relabel.netdef.proto import read_weights, write_weights
from tests.conftest import requires_pycaffe

pytestmark = requires_pycaffe


def _loss(clf, x, t):
    return float(clf.loss_and_gradient(x, [t]).loss[0])


def test_shapes_and_probabilities(digits_pycaffe, digits_blobs):
    assert digits_pycaffe.input_shape == (1, 16, 16)
    assert digits_pycaffe.num_classes == 10
    p = digits_pycaffe.forward(digits_blobs[:5])
    assert p.shape == (5, 10)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


def test_input_gradient_matches_finite_differences(digits_pycaffe, digits_blobs):
    # Central differences over float32 forwards. The step (0.1 grey levels
    # along a unit direction, so ~0.006 per pixel) rarely crosses a ReLU or
    # max-pool kink, and the loss change (~2e-4) dwarfs float32 rounding of
    # the probabilities (~1e-7), so 2% is a tolerance with room.
    rng = np.random.default_rng(0)
    # Dither: the digits' flat background gives exactly tied maxima in pool1,
    # where the gradient (Caffe routes it to the first maximum) is a valid
    # subgradient but finite differences see the largest one-sided slope.
    x = digits_blobs[:1] + rng.uniform(-4, 4, size=digits_blobs[:1].shape).astype(np.float32)
    label = int(digits_pycaffe.forward(x).argmax())
    target = (label + 3) % 10
    g = digits_pycaffe.loss_and_gradient(x, [target]).grad[0].astype(np.float64)
    h = 0.1
    for _ in range(5):
        v = rng.standard_normal(x.shape[1:])
        v /= np.linalg.norm(v)
        fd = (_loss(digits_pycaffe, x + h * v, target) - _loss(digits_pycaffe, x - h * v, target)) / (2 * h)
        assert fd == pytest.approx(float((g * v).sum()), rel=2e-2, abs=1e-6)
    # And per element, on the largest gradients.
    flat = np.argsort(-np.abs(g).ravel())[:5]
    for idx in flat:
        e = np.zeros(x.size)
        e[idx] = 1.0
        e = e.reshape(x.shape)
        fd = (_loss(digits_pycaffe, x + h * e, target) - _loss(digits_pycaffe, x - h * e, target)) / (2 * h)
        assert fd == pytest.approx(g.ravel()[idx], rel=2e-2)


def test_gradient_is_per_sample_and_batch_independent(digits_pycaffe, digits_blobs):
    x = digits_blobs[:4]
    targets = [1, 2, 3, 4]
    batch = digits_pycaffe.loss_and_gradient(x, targets)
    for i in range(4):
        one = digits_pycaffe.loss_and_gradient(x[i : i + 1], [targets[i]])
        # Caffe's GEMM blocking depends on the batch size: float32 rounding only.
        np.testing.assert_allclose(batch.grad[i], one.grad[0], rtol=1e-4, atol=1e-6 * np.abs(one.grad).max())
        np.testing.assert_allclose(batch.loss[i], one.loss[0], rtol=1e-6)
        assert batch.loss[i] == pytest.approx(-np.log(batch.probs[i, targets[i]]), rel=1e-5)


def test_data_gradient_needs_force_backward(digits_blobs):
    # Plain caffe.Net on the same definition without force_backward leaves the
    # data diff at zero; the backend's patched net gets a real gradient.
    from caffe_relabel.backends.pycaffe import PycaffeClassifier, import_caffe

    caffe = import_caffe()
    text = testmodels.DIGITS_PROTOTXT.read_text().replace("force_backward: true\n", "")
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp, "plain.prototxt")
        plain.write_text(text)
        net = caffe.Net(str(plain), str(testmodels.DIGITS_WEIGHTS), caffe.TEST)
        net.blobs["data"].data[...] = digits_blobs[:1]
        net.forward()
        net.blobs["prob"].diff[...] = 1.0
        net.backward()
        assert not np.any(net.blobs["data"].diff)

        patched = PycaffeClassifier(plain, testmodels.DIGITS_WEIGHTS)
        grad = patched.loss_and_gradient(digits_blobs[:1], [3]).grad
        assert np.count_nonzero(grad) > grad.size // 2


def _tampered_model(tmp: Path, edit) -> Path:
    net = read_weights(testmodels.DIGITS_WEIGHTS)
    edit(net)
    out = tmp / "tampered.caffemodel"
    write_weights(net, out)
    return out


def test_wrong_weight_shape_names_layer_and_both_shapes(tmp_path):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    def shrink_fc1(net):
        layer = next(l for l in net.layer if l.name == "fc1")
        layer.blobs[0].shape.dim[:] = [32, 512]
        del layer.blobs[0].data[32 * 512 :]

    bad = _tampered_model(tmp_path, shrink_fc1)
    with pytest.raises(WeightsMismatchError) as e:
        PycaffeClassifier(testmodels.DIGITS_PROTOTXT, bad)
    msg = str(e.value)
    assert "'fc1'" in msg and "[32, 512]" in msg and "[64, 512]" in msg and str(bad) in msg


def test_missing_layer_weights_are_an_error(tmp_path):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    def drop_conv2(net):
        keep = [l for l in net.layer if l.name != "conv2"]
        del net.layer[:]
        net.layer.extend(keep)

    bad = _tampered_model(tmp_path, drop_conv2)
    with pytest.raises(WeightsMismatchError, match="'conv2'.*no weights"):
        PycaffeClassifier(testmodels.DIGITS_PROTOTXT, bad)


def test_legacy_v1_caffemodel_loads_the_same(tmp_path, digits_pycaffe, digits_blobs):
    # Old zoo files use the V1 `layers` field and 4-D num/channels/height/width blobs.
    from caffe_relabel.backends.pycaffe import PycaffeClassifier
    from caffe_relabel.netdef.proto import NetParameter, V1LayerParameter

    new = read_weights(testmodels.DIGITS_WEIGHTS)
    old = NetParameter(name=new.name)
    for layer in new.layer:
        if not layer.blobs:
            continue
        v1 = old.layers.add(name=layer.name, type=V1LayerParameter.LayerType.Value(layer.type.upper().replace("INNERPRODUCT", "INNER_PRODUCT")))
        for b in layer.blobs:
            dims = list(b.shape.dim)
            dims = [1] * (4 - len(dims)) + dims
            v1.blobs.add(num=dims[0], channels=dims[1], height=dims[2], width=dims[3], data=b.data)
    path = tmp_path / "v1.caffemodel"
    write_weights(old, path)
    clf = PycaffeClassifier(testmodels.DIGITS_PROTOTXT, path)
    np.testing.assert_array_equal(clf.forward(digits_blobs[:8]), digits_pycaffe.forward(digits_blobs[:8]))


def test_unknown_layer_type_is_a_clear_error(tmp_path):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    proto = tmp_path / "bad.prototxt"
    proto.write_text(testmodels.DIGITS_PROTOTXT.read_text().replace('type: "LRN"', 'type: "Frobnicate"'))
    with pytest.raises(UnsupportedLayerError, match="'norm1'.*'Frobnicate'"):
        PycaffeClassifier(proto, testmodels.DIGITS_WEIGHTS)


def test_missing_bottom_is_a_clear_error(tmp_path):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    proto = tmp_path / "bad.prototxt"
    proto.write_text(testmodels.DIGITS_PROTOTXT.read_text().replace('bottom: "norm1"', 'bottom: "nowhere"'))
    with pytest.raises(ModelFormatError, match="'conv2'.*'nowhere'"):
        PycaffeClassifier(proto, testmodels.DIGITS_WEIGHTS)


def test_a_net_over_the_layer_limit_is_refused_before_caffe_builds_it(tmp_path, monkeypatch):
    import caffe

    from caffe_relabel.backends import load_classifier
    from caffe_relabel.errors import NetTooLargeError
    from caffe_relabel.netdef import netcheck
    from tests.backends.deep_net import deep_prototxt, deep_weights

    weights = deep_weights(tmp_path / "fc.caffemodel")
    over = deep_prototxt(tmp_path / "over.prototxt", netcheck.MAX_PYCAFFE_LAYERS + 1)
    built = []
    monkeypatch.setattr(caffe, "Net", lambda *a: built.append(a))
    # Counted in the text: refused before protobuf's parser (tens of seconds on the 50 MB file).
    monkeypatch.setattr("caffe_relabel.backends.pycaffe.parse_net", lambda *a, **k: built.append(a))
    with pytest.raises(NetTooLargeError, match=f"{netcheck.MAX_PYCAFFE_LAYERS + 1} layers, more than the "
                                               f"{netcheck.MAX_PYCAFFE_LAYERS}.*backend='engine'"):
        load_classifier(over, weights, backend="pycaffe")
    assert built == []
    monkeypatch.undo()
    # The limit is a count: at it, the net loads (a small limit here, so the test stays quick).
    monkeypatch.setattr(netcheck, "MAX_PYCAFFE_LAYERS", 40)
    clf = load_classifier(deep_prototxt(tmp_path / "at.prototxt", 40), weights, backend="pycaffe")
    assert clf.forward(np.ones((1, 1, 4, 4), np.float32)).shape == (1, 10)
    with pytest.raises(NetTooLargeError, match="41 layers"):
        load_classifier(deep_prototxt(tmp_path / "just_over.prototxt", 41), weights, backend="pycaffe")
    # The engine has no such limit.
    assert load_classifier(over, weights, backend="engine").num_classes == 10


def test_gpu_on_cpu_only_build_is_refused():
    from caffe_relabel.backends.pycaffe import PycaffeClassifier, gpu_usable

    if gpu_usable(0):
        pytest.skip("this pycaffe has a GPU")
    with pytest.raises(BackendUnavailableError, match="gpu:0.*use backend 'engine' \\(--backend engine\\)"):
        PycaffeClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, device="gpu:0")


def test_bad_arguments(digits_pycaffe, digits_blobs):
    with pytest.raises(Exception, match="shape N x 1 x 16 x 16"):
        digits_pycaffe.forward(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(Exception, match="0..9"):
        digits_pycaffe.loss_and_gradient(digits_blobs[:1], [10])
    with pytest.raises(Exception, match="closest: conv1"):
        digits_pycaffe.blob(digits_blobs[:1], "conv_1")
    assert digits_pycaffe.blob(digits_blobs[:2], "pool2").shape == (2, 32, 4, 4)
