"""The tensor API, the untargeted and least-likely modes, the loop's two array backends and short reprs."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel import Relabeller

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier
from caffe_relabel.backends.base import Classifier, LossGradient
from caffe_relabel.errors import ArgumentError, BackendUnavailableError
from caffe_relabel.models.model import Model
from caffe_relabel.images.preprocess import InputSpec, image_to_blob
from caffe_relabel.relabel.goals import LeastLikely, Untargeted
from caffe_relabel.relabel.results import StopReason
from tests.conftest import requires_pycaffe
from tests.relabel.test_relabel import Counting

torch = pytest.importorskip("torch")

SPEC = zoo.get("digits").input


@pytest.fixture(scope="module")
def batch(digits_data):
    """Eight digits as N x 1 x 16 x 16 float32 in [0, 1], and targets one class up."""
    x = digits_data["images"][:8].astype(np.float32)[:, None] / 255.0
    targets = [(int(l) + 1) % 10 for l in digits_data["labels"][:8]]
    return x, targets


def _torchattacks_style(module, x, targets, alpha=50.0, max_iter=300):
    """A plain torch loop as a torchattacks user writes it around ``model.blob_module``: the images go to the
    net's input (grey 0..255 minus the mean), sign steps of alpha/255 grey levels toward the target,
    clamp to the pixel range, each sample stops once it carries its target; back to [0, 1]."""
    mean = float(SPEC.mean[0])
    x = x * 255.0 - mean
    t = torch.as_tensor(targets)
    iterations = torch.zeros(len(x), dtype=torch.int64)
    running = torch.ones(len(x), dtype=torch.bool)
    for i in range(max_iter + 1):
        xr = x.clone().requires_grad_(True)
        logits = module(xr).flatten(1)
        running &= logits.argmax(1) != t
        if not running.any() or i == max_iter:
            break
        loss = torch.nn.functional.cross_entropy(logits, t, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xr)
        stepped = (x - alpha / 255.0 * grad.sign()).clamp(-mean, 255.0 - mean)
        x = torch.where(running[:, None, None, None], stepped, x).detach()
        iterations += running
    return (x.double() + mean) / 255.0, iterations, ~running


def test_tensor_api_agrees_with_a_torchattacks_style_loop(engine_model, batch):
    x, targets = batch
    xt = torch.from_numpy(x)
    ref, ref_iters, ref_ok = _torchattacks_style(engine_model.blob_module, xt, targets)
    got = Relabeller(engine_model, max_distortion=None, max_iter=300, batch_size=3).relabel_batch(xt, targets)
    assert got.success.tolist() == ref_ok.tolist() and sum(ref_ok.tolist()) >= 6
    assert got.iterations.tolist() == ref_iters.tolist()
    # The Relabeller adds the change to the user's float64 pixels; the plain loop rounds x * 255 - mean
    # to float32 first: 2^-24 relative of 255, i.e. ~1e-8 in [0, 1] units.
    np.testing.assert_allclose(got.images.numpy(), ref.numpy(), atol=1e-6)


def test_tensor_api_keeps_type_layout_dtype_and_matches_run_batch(engine_model, batch):
    x, targets = batch
    r = Relabeller(engine_model, max_distortion=None, max_iter=300, batch_size=4)
    results = r.run_batch([im.transpose(1, 2, 0) for im in x], targets)
    nhwc = r.relabel_batch(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.array(targets))
    assert isinstance(nhwc.images, np.ndarray) and nhwc.images.shape == (8, 16, 16, 1) and nhwc.images.dtype == np.float32
    nchw = r.relabel_batch(torch.from_numpy(x).double(), torch.tensor(targets))
    assert isinstance(nchw.images, torch.Tensor) and nchw.images.shape == (8, 1, 16, 16)
    assert nchw.images.dtype == torch.float64 and nchw.success.device == torch.device("cpu")
    for i, res in enumerate(results):
        assert nhwc.iterations[i] == nchw.iterations[i] == res.iterations
        assert nhwc.stops[i] == res.stop and nchw.labels[i] == res.final_label and nhwc.targets[i] == res.target
        # run_batch turns a grey image into RGB and back (rgb2gray's weights sum to 1 within 1e-16).
        np.testing.assert_allclose(nchw.images[i].numpy().transpose(1, 2, 0), res.image, atol=1e-15)
        np.testing.assert_allclose(nhwc.images[i], res.image, atol=1e-7)
        assert nchw.distortions[i].item() == pytest.approx(res.distortion, rel=1e-12)


def test_batch_results_carry_everything_run_gives(engine_model, batch):
    x, targets = batch
    goals = ["untargeted", "least_likely"] + targets[2:]
    r = Relabeller(engine_model, max_distortion=None, max_iter=300, batch_size=3, trace=True)
    results = r.run_batch([im.transpose(1, 2, 0) for im in x], goals)
    b = r.relabel_batch(torch.from_numpy(x), goals)
    assert b.goals == tuple(res.goal.name for res in results) and b.goals[:2] == ("untargeted", "least_likely")
    assert b.targets[0] == -1 and b.original_labels[0] == results[0].original_label  # named apart from the goal
    assert len(b.traces) == 8
    for i, res in enumerate(results):
        assert b.labels[i] == res.final_label and b.probs[i].item() == pytest.approx(res.final_prob, rel=1e-6)
        assert b.target_probs[i].item() == pytest.approx(res.target_prob, rel=1e-6)
        assert bool(b.success[i]) == res.success and b.stops[i] == res.stop
        assert b.uint8_labels[i] == res.uint8_label and bool(b.uint8_success[i]) == res.uint8_success
        assert b.uint8_distortions[i].item() == pytest.approx(res.uint8_distortion, rel=1e-9)
        assert b.traces[i].label == res.trace.label and len(b.traces[i].loss) == res.iterations + 1
        # The 8-bit images are on the 1/255 grid.
        assert torch.equal(torch.round(b.uint8_images[i] * 255) / 255, b.uint8_images[i].double().float())
    assert Relabeller(engine_model, max_iter=2).relabel_batch(x, targets).traces is None


def test_ensure_uint8_returns_the_8bit_images(engine_model, batch):
    x, targets = batch
    b = Relabeller(engine_model, max_distortion=None, max_iter=400, ensure_uint8=True).relabel_batch(x, targets)
    grid = np.round(b.images.astype(np.float64) * 255.0)
    np.testing.assert_allclose(b.images, grid / 255.0, atol=1e-7)  # float32 holds k/255 to 6e-8
    np.testing.assert_array_equal(b.images, b.uint8_images)
    ok = b.success
    assert ok.sum() >= 6 and b.uint8_success[ok].all() and (b.uint8_labels[ok] == np.array(targets)[ok]).all()


def test_the_relabeller_is_called_as_torchattacks_attacks_are(engine_model, batch):
    x, targets = batch
    attack = Relabeller(engine_model, max_distortion=None, max_iter=300)
    images = torch.from_numpy(x).double()
    adv = attack(images, torch.tensor(targets))
    assert isinstance(adv, torch.Tensor) and adv.shape == images.shape and adv.dtype == torch.float64
    assert adv.device == images.device and adv.layout == images.layout
    expected = attack.relabel_batch(images, torch.tensor(targets))
    assert torch.equal(adv, expected.images) and expected.success.sum() >= 6
    nhwc = attack(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), targets)
    assert isinstance(nhwc, np.ndarray) and nhwc.shape == (8, 16, 16, 1)
    logits = engine_model.classifier.forward(np.stack([image_to_blob(im, SPEC) for im in nhwc.astype(np.float64)]))
    ok = expected.success.numpy()
    assert (logits.argmax(1)[ok] == np.array(targets)[ok]).all()


def test_numpy_and_torch_loops_give_the_same_results(engine_model, digits_data):
    # Counting speaks numpy, so the Relabeller runs its numpy loop around the very same engine.
    images = [im[:, :, None] / 255.0 for im in digits_data["images"][:6]]
    targets = [(int(l) + 3) % 10 for l in digits_data["labels"][:6]]
    wrapped = Model(Counting(engine_model.classifier), SPEC, "digits", engine_model.class_names, "digits")
    for settings in (dict(max_distortion=None, max_iter=200), dict(max_distortion=0.05, ensure_uint8=True)):
        on_device = Relabeller(engine_model, batch_size=4, trace=True, **settings).run_batch(images, targets)
        on_host = Relabeller(wrapped, batch_size=4, trace=True, **settings).run_batch(images, targets)
        for a, b in zip(on_device, on_host):
            assert (a.iterations, a.stop, a.final_label, a.uint8_label) == (b.iterations, b.stop, b.final_label, b.uint8_label)
            np.testing.assert_array_equal(a.image, b.image)
            np.testing.assert_array_equal(a.probs, b.probs)
            assert a.trace.label == b.trace.label and a.trace.target_prob == b.trace.target_prob
            # float64 sums in another order (torch's, numpy's pairwise): the last bits only.
            assert a.distortion == pytest.approx(b.distortion, rel=1e-12, abs=1e-15)


@pytest.fixture(scope="module", params=[pytest.param("pycaffe", marks=requires_pycaffe), "engine"])
def model(request):
    clf = load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend=request.param)
    return Model(clf, SPEC, "digits", zoo.class_names("digits"), "digits")


def test_untargeted_moves_away_from_the_original_label(model, batch):
    x, _ = batch
    r = Relabeller(model, max_distortion=None, max_iter=300, batch_size=3)
    results = r.run_batch([im.transpose(1, 2, 0) for im in x], ["untargeted"] * len(x))
    for res in results:
        assert isinstance(res.goal, Untargeted) and res.target is None and res.aim == res.original_label
        assert res.success and res.final_label != res.original_label and res.iterations > 0
        assert res.uint8_success == (res.uint8_label != res.original_label)


def test_untargeted_steps_up_the_original_class_loss(model, batch):
    x, _ = batch
    res = Relabeller(model, max_iter=1, max_distortion=None).run(x[0].transpose(1, 2, 0), "untargeted")
    x0 = image_to_blob(x[0].transpose(1, 2, 0).astype(np.float64), SPEC)
    g = model.classifier.loss_and_gradient(x0[None], [res.original_label]).grad[0]
    expected = np.clip(x0 + np.float32(50 / 255) * np.sign(g), -128, 127)
    np.testing.assert_allclose(image_to_blob(res.image, SPEC), expected, atol=1e-4)


def test_least_likely_targets_the_originals_least_likely_class(model, batch):
    x, _ = batch
    results = Relabeller(model, max_distortion=None, max_iter=500).run_batch(
        [im.transpose(1, 2, 0) for im in x[:4]], ["least_likely"] * 4)
    for res in results:
        assert isinstance(res.goal, LeastLikely) and res.target == int(res.original_probs.argmin())
        assert res.success == (res.final_label == res.target) and res.success


def test_mixed_modes_in_one_batch(engine_model, batch):
    x, targets = batch
    got = Relabeller(engine_model, max_distortion=None, max_iter=500, batch_size=4).relabel_batch(
        x[:3], [targets[0], "untargeted", "least_likely"])
    assert got.success.all() and got.stops == (StopReason.TARGET,) * 3
    assert got.labels[0] == targets[0] and got.labels[1] != got.targets[1] and got.labels[2] == got.targets[2]


@pytest.mark.parametrize("x, targets, message", [
    ([[0.5]], 1, "numpy array or a torch tensor"),
    (np.zeros((2, 16, 16), np.float32), 1, "batch of images"),
    (np.zeros((0, 1, 16, 16), np.float32), 1, "empty batch"),
    (np.zeros((2, 1, 32, 32), np.float32), 1, "resize them first"),
    (np.zeros((2, 1, 16, 16), np.uint8), 1, "divide by 255"),
    (np.full((2, 1, 16, 16), 2.0, np.float32), 1, r"in \[0, 1\]"),
    (np.full((2, 1, 16, 16), np.nan, np.float32), 1, "finite"),
    (np.zeros((2, 1, 16, 16), np.float32), np.array([1.0, 2.0]), "integer class indices"),
    (np.zeros((2, 1, 16, 16), np.float32), [True, 1], "got bool"),
    (np.zeros((2, 1, 16, 16), np.float32), [1, 2, 3], "one target per image"),
    (np.zeros((2, 1, 16, 16), np.float32), 1.5, "got float"),
])
def test_relabel_batch_raises(engine_model, x, targets, message):
    with pytest.raises(ArgumentError, match=message):
        Relabeller(engine_model).relabel_batch(x, targets)


@pytest.mark.parametrize("make, message", [
    (lambda: torch.zeros(2, 1, 16, 16, device="meta"), "'meta' device"),
    (lambda: torch.zeros(2, 1, 16, 16).to_sparse(), "dense"),
    # Zero-stride views of 10^8 images: a few bytes themselves, a terabyte once copied.
    (lambda: torch.zeros(1, 1, 16, 16).expand(10**8, 1, 16, 16), "batch of 100000000 images needs"),
    (lambda: np.broadcast_to(np.zeros((1, 16, 16, 1), np.float32), (10**8, 16, 16, 1)), "batch of 100000000 images"),
])
def test_relabel_batch_refuses_tensors_without_data_and_oversized_views(engine_model, make, message):
    with pytest.raises(ArgumentError, match=message):
        Relabeller(engine_model).relabel_batch(make(), 1)


def test_a_callback_that_is_not_callable_is_refused(engine_model, batch):
    x, targets = batch
    r = Relabeller(engine_model, max_iter=1)
    images = [x[0].transpose(1, 2, 0)]
    with pytest.raises(ArgumentError, match="on_iteration to be callable or None, got int"):
        r.relabel_batch(x[:1], targets[:1], on_iteration=5)
    with pytest.raises(ArgumentError, match="on_iteration to be callable"):
        r.run_batch(images, targets[:1], on_iteration=5)
    with pytest.raises(ArgumentError, match="on_iteration to be callable"):
        next(r.iter_results(zip(images, targets[:1]), on_iteration=5))


class _Linear3x3(Classifier):
    """A fixed linear classifier of 3 x 3 RGB blobs: the net whose batch N x 3 x 3 x 3 fits both layouts."""

    backend_name = "linear"
    _input_shape, _num_classes = (3, 3, 3), 4
    weights = np.random.default_rng(0).normal(size=(27, 4))
    blob_names = property(lambda self: [])

    def forward(self, x):
        logits = np.asarray(x, np.float64).reshape(len(x), -1) @ self.weights
        e = np.exp(logits - logits.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def loss_and_gradient(self, x, targets):
        probs = self.forward(x)
        t = np.asarray(targets)
        d = probs.astype(np.float64)
        d[np.arange(len(t)), t] -= 1.0
        grad = (d @ self.weights.T).reshape(np.shape(x)).astype(np.float32)
        return LossGradient(probs, -np.log(probs[np.arange(len(t)), t]), grad)

    def blob(self, x, name):
        raise KeyError(name)


def test_a_layout_both_shapes_fit_must_be_named():
    spec = InputSpec(size=(3, 3), channel_order="RGB", mean=(0.0, 0.0, 0.0), resize=None, raw_scale=1.0)
    r = Relabeller(_Linear3x3(), input_spec=spec, max_distortion=None, max_iter=5)
    x = np.random.default_rng(1).uniform(0.2, 0.8, (6, 3, 3, 3))
    with pytest.raises(ArgumentError, match="fit both .*layout='NCHW' or layout='NHWC'"):
        r.relabel_batch(x, 1)
    with pytest.raises(ArgumentError, match="expected layout 'NCHW', 'NHWC' or None, got 'nchw'"):
        r.relabel_batch(x, 1, layout="nchw")
    as_nhwc = r.relabel_batch(x, 1, layout="NHWC")
    as_nchw = r.relabel_batch(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), 1, layout="NCHW")
    np.testing.assert_array_equal(as_nhwc.images, as_nchw.images.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(as_nhwc.labels, as_nchw.labels)
    # The two readings are different inputs: the net sees other blobs, so other answers.
    other = r.relabel_batch(x, 1, layout="NCHW")
    assert not np.array_equal(other.images, as_nhwc.images)
    with pytest.raises(ArgumentError, match="N x 3 x 3 x 3"):
        r.relabel_batch(np.zeros((2, 3, 3, 4)), 1, layout="NHWC")


def test_run_batch_takes_numpy_targets(engine_model, batch):
    x, targets = batch
    results = Relabeller(engine_model, max_iter=2).run_batch([im.transpose(1, 2, 0) for im in x[:3]], np.array(targets[:3]))
    assert [r.target for r in results] == targets[:3]


def test_blob_module_is_the_engines_network_and_module_wraps_it(engine_model):
    net = engine_model.classifier.net
    assert isinstance(engine_model.blob_module, torch.nn.Module) and engine_model.blob_module is net
    assert isinstance(engine_model.module, torch.nn.Module) and engine_model.module.net is net
    assert engine_model.module is engine_model.module  # one module, so .to() and hooks stick


@requires_pycaffe
def test_pycaffe_says_why_it_has_no_module():
    clf = load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend="pycaffe")
    with pytest.raises(BackendUnavailableError, match="real Caffe.*backend='engine'"):
        Model(clf, SPEC).module
    with pytest.raises(BackendUnavailableError, match="real Caffe.*backend='engine'"):
        Model(clf, SPEC).blob_module


def test_reprs_are_short(engine_model, batch):
    x, targets = batch
    res = Relabeller(engine_model, max_iter=3).run(x[0].transpose(1, 2, 0), targets[0])
    text = repr(res)
    assert len(text) < 300 and text.startswith(f"RelabelResult(target={targets[0]} '{targets[0]}', success=")
    assert f"iterations={res.iterations}" in text and "image=16x16x1" in text
    assert "goal=untargeted, original=" in repr(Relabeller(engine_model, max_iter=1).run(x[0].transpose(1, 2, 0), "untargeted"))
    assert repr(engine_model).startswith("Model('digits', backend=engine") and len(repr(engine_model)) < 300
    spec = InputSpec(size=(4, 4), mean=np.full((3, 8, 8), 100.0))
    assert "<3x8x8 mean image>" in repr(spec) and len(repr(spec)) < 200
    out = Relabeller(engine_model, max_iter=1).relabel_batch(x[:2], targets[:2])
    assert repr(out).startswith("BatchResult(n=2, success=") and len(repr(out)) < 200
