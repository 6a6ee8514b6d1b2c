"""The engine backend: the Classifier contract, and fidelity to real Caffe.

Definitions used throughout:
- logit error: max |engine - caffe| / max |caffe| over the logits blob,
  required <= 1e-5 (float32 summation-order differences measure ~1e-6 on
  the zoo nets; a wrong layer rule measures >= 1e-3).
- sign agreement: the fraction of input-gradient elements with equal sign,
  counted over elements above the float32 noise floor. The default floor is
  1e-6 * max |grad| (float32 resolution relative to the largest element);
  required >= 99.99%.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffe_relabel.models import testmodels
from caffe_relabel.backends import load_classifier
from caffe_relabel.backends.engine import EngineClassifier
from caffe_relabel.errors import ArgumentError, CaffeRelabelError
from tests.conftest import requires_pycaffe

LOGIT_TOL = 1e-5
SIGN_AGREEMENT = 0.9999
NOISE_FLOOR = 1e-6


def sign_agreement(got: np.ndarray, want: np.ndarray, floor: float) -> float:
    mask = np.abs(want) > floor
    return float((np.sign(got[mask]) == np.sign(want[mask])).mean())


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def digits_engine() -> EngineClassifier:
    return EngineClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS)


def test_contract(digits_engine, digits_blobs) -> None:
    clf = digits_engine
    assert clf.backend_name == "engine"
    assert clf.input_shape == (1, 16, 16) and clf.num_classes == 10
    p = clf.forward(digits_blobs[:5])
    assert p.shape == (5, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert clf.forward(digits_blobs[0]).shape == (1, 10)  # C x H x W is one sample
    assert "pool1" in clf.blob_names and clf.blob(digits_blobs[:2], "pool1").shape == (2, 16, 8, 8)


def test_accuracy(digits_engine, digits_blobs, digits_data) -> None:
    acc = (digits_engine.forward(digits_blobs).argmax(1) == digits_data["labels"]).mean()
    assert acc >= 0.95


def test_loss_and_gradient_are_batch_independent(digits_engine, digits_blobs) -> None:
    x, t = digits_blobs[:6], [3, 1, 4, 1, 5, 9]
    whole = digits_engine.loss_and_gradient(x, t)
    assert whole.grad.shape == x.shape and whole.loss.shape == (6,)
    for i in (0, 5):
        one = digits_engine.loss_and_gradient(x[i:i + 1], [t[i]])
        np.testing.assert_allclose(one.grad[0], whole.grad[i], rtol=1e-5, atol=1e-7 * np.abs(whole.grad).max())
        np.testing.assert_allclose(one.loss[0], whole.loss[i], rtol=1e-5)
    np.testing.assert_allclose(whole.loss, -np.log(whole.probs[np.arange(6), t]), rtol=1e-5)


def test_gradient_lowers_the_loss(digits_engine, digits_blobs) -> None:
    x = digits_blobs[:1]
    r = digits_engine.loss_and_gradient(x, [7])
    after = digits_engine.loss_and_gradient(x - 0.5 * np.sign(r.grad), [7])
    assert after.loss[0] < r.loss[0]


def test_module_is_a_torch_module_returning_logits(digits_engine, digits_blobs) -> None:
    module = digits_engine.module
    assert isinstance(module, torch.nn.Module)
    assert not any(p.requires_grad for p in module.parameters())
    with torch.no_grad():
        logits = module(torch.from_numpy(digits_blobs[:3]))
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), digits_engine.forward(digits_blobs[:3]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(logits.numpy(), digits_engine.blob(digits_blobs[:3], "fc2"), rtol=1e-6)


def test_modes_select_on_cpu(digits_blobs) -> None:
    fast = EngineClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, numerics="fast")
    faithful = EngineClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, numerics="faithful")
    # faithful: NCHW and Caffe's im2col convolutions; fast: channels-last oneDNN (engine/device.py).
    convs = lambda clf: [m.im2col for m in clf.module.layers if hasattr(m, "im2col")]  # noqa: E731
    assert convs(faithful) == [True, True] and convs(fast) == [False, False]
    assert not faithful.module.channels_last and fast.module.channels_last
    np.testing.assert_allclose(fast.forward(digits_blobs[:4]), faithful.forward(digits_blobs[:4]), rtol=1e-4, atol=1e-7)


def test_bad_arguments(digits_engine, digits_blobs) -> None:
    with pytest.raises(CaffeRelabelError, match="expected input of shape"):
        digits_engine.forward(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(CaffeRelabelError, match="target classes"):
        digits_engine.loss_and_gradient(digits_blobs[:1], [10])
    with pytest.raises(CaffeRelabelError, match="no blob named 'pool'"):
        digits_engine.blob(digits_blobs[:1], "pool")


def test_load_classifier_picks_engine(digits_blobs) -> None:
    clf = load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend="engine")
    assert isinstance(clf, EngineClassifier) and clf.numerics == "faithful"
    # Fast numerics are the engine's: 'auto' takes the engine for it even where pycaffe imports.
    fast = load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend="auto", numerics="fast")
    assert isinstance(fast, EngineClassifier) and fast.numerics == "fast" and fast.module.channels_last
    with pytest.raises(ArgumentError, match="numerics 'fast' are the engine's; backend 'pycaffe' runs only 'faithful'"):
        load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend="pycaffe", numerics="fast")
    with pytest.raises(ArgumentError, match="expected numerics 'faithful' or 'fast' or 'fast-bf16', got 'turbo'"):
        load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, numerics="turbo")


@requires_pycaffe
def test_digits_matches_pycaffe(digits_engine, digits_pycaffe, digits_blobs, digits_data) -> None:
    x, t = digits_blobs, (digits_data["labels"] + 1) % 10
    a, b = digits_engine.loss_and_gradient(x, t), digits_pycaffe.loss_and_gradient(x, t)
    assert relative_error(digits_engine.blob(x, "fc2"), digits_pycaffe.blob(x, "fc2")) <= LOGIT_TOL
    assert np.abs(a.probs - b.probs).max() <= 1e-5
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-4, atol=1e-6)
    assert sign_agreement(a.grad, b.grad, NOISE_FLOOR * np.abs(b.grad).max()) >= SIGN_AGREEMENT


@requires_pycaffe
def test_digits_sign_gradient_run_is_identical(digits_engine, digits_pycaffe, digits_blobs, digits_data) -> None:
    # The paper's rule, 10 steps, each backend from its own previous iterate:
    # identical sign patterns at every step keep the two runs bit-identical.
    # pool1 sees exact ties from the flat background, so this also checks that
    # MAX pooling routes ties to the first maximum as Caffe does.
    x0, t = digits_blobs[:16], (digits_data["labels"][:16] + 3) % 10
    xe, xc = x0.copy(), x0.copy()
    for step in range(10):
        ge = np.sign(digits_engine.loss_and_gradient(xe, t).grad)
        gc = np.sign(digits_pycaffe.loss_and_gradient(xc, t).grad)
        assert np.array_equal(ge, gc), f"sign patterns differ at step {step}: {(ge != gc).sum()} elements"
        xe, xc = xe - (50 / 255) * ge, xc - (50 / 255) * gc


def _zoo_pair(name: str):
    proto, weights = testmodels.random_model(name)
    return EngineClassifier(proto, weights), load_classifier(proto, weights, backend="pycaffe")


ZOO = ["bvlc_googlenet", "bvlc_alexnet", "bvlc_reference_caffenet"]


@requires_pycaffe
@pytest.mark.parametrize("name", ZOO)
def test_zoo_matches_pycaffe_batch1(name: str) -> None:
    engine, caffe = _zoo_pair(name)
    rng = np.random.default_rng(0)
    x = rng.uniform(-120, 120, size=(1,) + engine.input_shape).astype(np.float32)
    logits = engine.net.logits_name
    assert relative_error(engine.blob(x, logits), caffe.blob(x, logits)) <= LOGIT_TOL
    a, b = engine.loss_and_gradient(x, [281]), caffe.loss_and_gradient(x, [281])
    assert sign_agreement(a.grad, b.grad, NOISE_FLOOR * np.abs(b.grad).max()) >= SIGN_AGREEMENT
