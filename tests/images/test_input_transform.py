"""The step and the distortion in grey levels, whatever the input transform (issue 13).

The digits model re-expressed for an input scale after the mean (LeNet's 1/256,
MobileNet's 0.017): conv1's weights divided by the scale, the same function of
the pixels (:func:`testmodels.scaled_digits`). On both backends.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from caffe_relabel import Relabeller

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier
from caffe_relabel.models.model import Model
from caffe_relabel.images.preprocess import image_to_blob

SPEC = zoo.get("digits").input
ALPHA = 50.0
GREY = 1 / 255  # one grey level in [0, 1] image units
LENET_SCALE = 0.00390625  # 1/256: Caffe's MNIST LeNet transform_param scale
MOBILENET_SCALE = 0.017


@pytest.fixture(scope="module")
def plain(backend) -> Model:
    clf = load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend=backend)
    return Model(clf, SPEC, "digits", zoo.class_names("digits"), "digits")


def _scaled(tmp_path_factory, backend: str, input_scale: float) -> Model:
    proto, weights = testmodels.scaled_digits(tmp_path_factory.mktemp("scaled"), input_scale)
    spec = dataclasses.replace(SPEC, input_scale=input_scale)
    return Model(load_classifier(proto, weights, backend=backend), spec, "digits_scaled", zoo.class_names("digits"), "digits")


@pytest.fixture(scope="module")
def lenet_style(tmp_path_factory, backend) -> Model:
    return _scaled(tmp_path_factory, backend, LENET_SCALE)


@pytest.fixture(scope="module")
def mobilenet_style(tmp_path_factory, backend) -> Model:
    return _scaled(tmp_path_factory, backend, MOBILENET_SCALE)


@pytest.fixture(scope="module")
def images(digits_data):
    return [im[:, :, None] / 255.0 for im in digits_data["images"][:4]]


def _targets(digits_data, n):
    return [(int(l) + 3) % 10 for l in digits_data["labels"][:n]]


def _assert_one_step_in_grey_levels(result, alpha: float) -> None:
    """Every pixel moved by alpha/255 of a grey level or not at all, most of them moved."""
    moved = np.abs(result.image - result.original) / GREY  # in grey levels
    # The blob is float32: near |x| = 2.2 (0.017 x 128) its spacing is 2.4e-7, 1e-4 of a
    # 0.0033-unit step; 1e-3 relative leaves room on any CPU.
    still = moved < 1e-6
    assert np.all(still | np.isclose(moved, alpha / 255, rtol=1e-3, atol=0)), np.unique(moved.round(6))
    assert (~still).mean() > 0.5  # most pixels have a gradient and room to move


@pytest.mark.parametrize("which", ["lenet_style", "mobilenet_style"])
@pytest.mark.parametrize("alpha", [ALPHA, 5.0])
def test_one_step_moves_a_pixel_by_alpha_over_255_grey_levels(which, alpha, request, plain, images, digits_data):
    model = request.getfixturevalue(which)
    target = _targets(digits_data, 1)[0]
    r = Relabeller(model, max_iter=1, max_distortion=None, alpha=alpha).run(images[0], target)
    assert r.iterations == 1 and r.stop == "max_iter"
    _assert_one_step_in_grey_levels(r, alpha)
    # The same step as on the unscaled net: same pixels, same way, same distortion.
    ref = Relabeller(plain, max_iter=1, max_distortion=None, alpha=alpha).run(images[0], target)
    np.testing.assert_allclose(r.image, ref.image, rtol=0, atol=1e-3 * alpha / 255 * GREY)  # float32 blob, as above
    assert r.distortion == pytest.approx(ref.distortion, rel=1e-3)


def test_blob_bounds_keep_pixels_between_black_and_white(mobilenet_style, images, digits_data):
    # Steps of 20 grey levels on a mostly black digit: many pixels are pushed below black and must
    # stop there, at the blob bound (0 - mean) * input_scale, not at (0 - mean).
    alpha = 20 * 255.0
    r = Relabeller(mobilenet_style, max_iter=2, max_distortion=None, alpha=alpha).run(images[0], _targets(digits_data, 1)[0])
    x = image_to_blob(r.original, mobilenet_style.input)
    low, _ = mobilenet_style.input.blob_bounds()
    assert np.isclose(x, low, atol=1e-6).mean() > 0.1  # many pixels start black
    delta = r.image - r.original
    assert r.iterations == 2 and np.abs(delta).max() == pytest.approx(2 * alpha / 255 * GREY, rel=1e-3)
    # The returned image is clipped to [0, 1] in any case: that the net saw this very image shows
    # no pixel went past black or white on the way.
    again = mobilenet_style.classifier.forward(image_to_blob(r.image, mobilenet_style.input)[None])[0]
    np.testing.assert_allclose(again, r.probs, atol=1e-5)  # float32 round trip through the image


def test_lenet_style_relabelling_is_the_unscaled_one(lenet_style, plain, images, digits_data):
    # 1/256 is a power of two: every blob, product and step is the unscaled one divided by 256
    # exactly, so the whole relabelling is bit-identical (both backends, any CPU).
    targets = _targets(digits_data, len(images))
    got = Relabeller(lenet_style, max_iter=400, max_distortion=None, batch_size=3).run_batch(images, targets)
    want = Relabeller(plain, max_iter=400, max_distortion=None, batch_size=3).run_batch(images, targets)
    for a, b in zip(got, want):
        assert a.success and b.success and a.iterations == b.iterations > 1
        assert a.final_label == b.final_label == a.target
        np.testing.assert_array_equal(a.image, b.image)
        assert a.distortion == b.distortion and a.uint8_distortion == b.uint8_distortion


def test_distortion_cap_is_in_pixels_whatever_the_scale(mobilenet_style, plain, images, digits_data):
    target = _targets(digits_data, 1)[0]
    a = Relabeller(mobilenet_style, max_distortion=0.02, max_iter=400).run(images[1], target)
    b = Relabeller(plain, max_distortion=0.02, max_iter=400).run(images[1], target)
    assert a.stop == b.stop == "distortion" and a.distortion <= 0.02 and b.distortion <= 0.02
    # The runs may part on a near-zero gradient whose sign float32 round-off flips, but the
    # cap binds at the same pixel distance: within one step's worth of distortion.
    assert a.iterations == pytest.approx(b.iterations, abs=2)
