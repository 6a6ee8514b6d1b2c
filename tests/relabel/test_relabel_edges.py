"""The relabeller's defined edge cases (see relabel.py's docstring), on both backends.

NaN weights are refused when the model loads (tests/netdef/test_netcheck.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel import Relabeller

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.errors import CaffeRelabelError, ImageFormatError
from caffe_relabel.models.model import Model
from caffe_relabel.relabel.relabeller import StopReason
from tests.conftest import requires_pycaffe
from tests.relabel.test_relabel import Counting

SPEC = zoo.get("digits").input


@pytest.fixture(scope="module", params=[pytest.param("pycaffe", marks=requires_pycaffe), "engine"])
def model(request):
    if request.param == "pycaffe":
        from caffe_relabel.backends.pycaffe import PycaffeClassifier as cls
    else:
        pytest.importorskip("torch")
        from caffe_relabel.backends.engine import EngineClassifier as cls
    clf = cls(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS)
    return Model(clf, SPEC, "digits", zoo.class_names("digits"), "digits")


@pytest.fixture(scope="module")
def image(digits_data):
    return digits_data["images"][0][:, :, None] / 255.0


def _wrapped(model, grad_fn):
    return Model(Counting(model.classifier, grad_fn=grad_fn), SPEC, "digits", model.class_names, "digits")


def test_target_equal_to_current_label(model, image):
    label = int(model.classifier.forward(model.classifier._check_input(
        (image[None, :, :, 0] * 255 - testmodels.DIGITS_MEAN)[:, None])).argmax())
    r = Relabeller(model).run(image, label)
    assert r.success and r.stop == StopReason.TARGET and r.iterations == 0 and r.distortion == 0.0


@pytest.mark.parametrize("level", [0.0, 1.0])
def test_saturated_image(model, level):
    # All 0 or all 255: pixels can only move inward; the result is a defined stop, inside the range and the cap.
    flat = np.full((16, 16, 1), level)
    r = Relabeller(model, max_distortion=0.05, max_iter=40).run(flat, 7)
    assert r.stop in (StopReason.TARGET, StopReason.DISTORTION, StopReason.MAX_ITER, StopReason.STALLED)
    assert 0.0 <= r.image.min() and r.image.max() <= 1.0 and r.distortion <= 0.05
    assert np.isfinite(r.probs).all() and r.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_nan_gradient_stops_the_sample(model, image):
    r = Relabeller(_wrapped(model, lambda g: g * np.nan)).run(image, 3)
    assert not r.success and r.stop == StopReason.NON_FINITE and r.iterations == 0 and np.isfinite(r.image).all()


def test_infinite_gradient_stops_the_sample(model, image):
    def one_inf(g):
        g = g.copy()
        g.flat[0] = np.inf
        return g

    r = Relabeller(_wrapped(model, one_inf)).run(image, 3)
    assert r.stop == StopReason.NON_FINITE and not r.success


def test_zero_gradient_stalls(model, image):
    r = Relabeller(_wrapped(model, np.zeros_like)).run(image, 3)
    assert r.stop == StopReason.STALLED and r.iterations == 0 and r.distortion == 0.0


def test_nan_in_the_image_is_refused(model, image):
    bad = image.copy()
    bad[3, 4, 0] = np.nan
    with pytest.raises(ImageFormatError, match="NaN"):
        Relabeller(model).run(bad, 3)


def test_nan_in_an_input_blob_is_refused(model):
    x = np.zeros((1, 1, 16, 16), np.float32)
    x[0, 0, 2, 2] = np.nan
    with pytest.raises(CaffeRelabelError, match="finite input"):
        model.classifier.forward(x)
    with pytest.raises(CaffeRelabelError, match="finite input"):
        model.classifier.loss_and_gradient(x, [1])
