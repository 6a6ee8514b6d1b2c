"""The end of a relabelling: the 8-bit probabilities reuse what the loop already computed.

A hit under ``ensure_uint8`` was classified as an 8-bit image by the loop's
check, and an image still on the 8-bit grid is the blob the last step
classified: neither runs through the network again. Either way the reported
8-bit probabilities are those of the saved image.
"""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel import Relabeller
from caffe_relabel.backends import load_classifier
from caffe_relabel.images.preprocess import image_to_blob, quantize
from caffe_relabel.models import testmodels, zoo
from caffe_relabel.models.model import Model
from tests.relabel.test_relabel import Counting

SPEC = zoo.get("digits").input


class CountingForwards(Counting):
    """Also counts the forwards (the 8-bit checks) and the samples they carry."""

    forwarded = forward_calls = 0

    def forward(self, x):
        self.forwarded += len(x)
        self.forward_calls += 1
        return self.inner.forward(x)


@pytest.fixture(scope="module")
def classifier(backend):
    return load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend=backend)


@pytest.fixture(scope="module")
def images(digits_data):
    return [im[:, :, None] / 255.0 for im in digits_data["images"][:8]]


def relabel(classifier, images, targets, **kw):
    counting = CountingForwards(classifier)
    model = Model(counting, SPEC, "digits", zoo.class_names("digits"), "digits")
    return Relabeller(model, batch_size=3, trace=True, **{"max_distortion": None, "max_iter": 800, **kw}).run_batch(
        images, targets), counting


def saved_probs(classifier, image):
    return classifier.forward(image_to_blob(quantize(image), SPEC)[None])[0]


def test_ensure_uint8_hits_are_not_classified_again(classifier, images, digits_data):
    targets = [(int(l) + 3) % 10 for l in digits_data["labels"][:8]]
    results, counting = relabel(classifier, images, targets, ensure_uint8=True)
    assert all(r.stop == "target" for r in results)
    # One 8-bit forward per step whose float image carried the target (the loop's check), none after.
    assert counting.forwarded == sum(r.trace.label.count(r.target) for r in results)
    for r in results:
        p8 = saved_probs(classifier, r.image)
        assert r.uint8_label == int(p8.argmax()) and r.uint8_target_prob == pytest.approx(p8[r.target], abs=1e-6)


def test_an_image_on_the_8bit_grid_is_not_classified_again(classifier, images):
    labels = [int(classifier.forward(image_to_blob(im, SPEC)[None]).argmax()) for im in images[:4]]
    results, counting = relabel(classifier, images[:4], labels)  # carried already: no step taken
    assert counting.forwarded == 0
    for r in results:
        assert r.iterations == 0 and r.uint8_label == r.final_label
        np.testing.assert_array_equal([r.uint8_prob, r.uint8_target_prob], [r.probs.max(), r.target_prob])


def test_the_rest_are_classified_in_one_batch(classifier, images, digits_data):
    targets = [(int(l) + 5) % 10 for l in digits_data["labels"][:3]]
    results, counting = relabel(classifier, images[:3], targets, max_iter=2)  # all stop together, off the grid
    assert all(r.stop == "max_iter" for r in results)
    assert counting.forwarded == 3 and counting.forward_calls == 1
    for r in results:
        p8 = saved_probs(classifier, r.image)
        assert r.uint8_label == int(p8.argmax()) and r.uint8_prob == pytest.approx(p8.max(), abs=1e-6)
