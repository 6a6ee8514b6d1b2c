"""The Relabeller on the trained digits model, with real pycaffe and with the engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from caffe_relabel import Relabeller, RelabelSettings

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier
from caffe_relabel.backends.base import Classifier, LossGradient
from caffe_relabel.errors import ArgumentError, ModelNotFoundError
from caffe_relabel.models.model import Model
from caffe_relabel.images.preprocess import image_to_blob

SPEC = zoo.get("digits").input


@pytest.fixture(scope="module")
def classifier(backend) -> Classifier:
    return load_classifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS, backend=backend)


@pytest.fixture(scope="module")
def model(classifier):
    return Model(classifier, SPEC, "digits", zoo.class_names("digits"), "digits")


@pytest.fixture(scope="module")
def images(digits_data):
    return [im[:, :, None] / 255.0 for im in digits_data["images"][:12]]


def _targets(digits_data, n, shift=1):
    return [(int(l) + shift) % 10 for l in digits_data["labels"][:n]]


def test_one_step_is_the_papers_rule(model, images, digits_data):
    target = _targets(digits_data, 1)[0]
    r = Relabeller(model, max_iter=1, max_distortion=None).run(images[0], target)
    x0 = image_to_blob(images[0], SPEC)
    g = model.classifier.loss_and_gradient(x0[None], [target]).grad[0]
    expected = np.clip(x0 - np.float32(50 / 255) * np.sign(g), -128, 127)
    assert r.iterations == 1 and r.stop == "max_iter" and not r.success
    np.testing.assert_allclose(image_to_blob(r.image, SPEC), expected, atol=1e-4)
    moved = np.abs(image_to_blob(r.image, SPEC) - x0)
    # Every channel moved by exactly one step or not at all (float32 round-off aside).
    assert np.all((moved < 1e-4) | (np.abs(moved - 50 / 255) < 1e-4))


def test_each_sample_stops_as_soon_as_it_carries_the_target(model, images, digits_data):
    targets = _targets(digits_data, 6)
    results = Relabeller(model, max_distortion=None, max_iter=600, batch_size=4, trace=True).run_batch(images[:6], targets)
    for r, t in zip(results, targets):
        assert r.success and r.stop == "target" and r.final_label == t == r.target
        assert len(r.trace.label) == r.iterations + 1
        assert r.trace.label[-1] == t and t not in r.trace.label[:-1]
        assert r.original_label == r.trace.label[0] == int(r.original_probs.argmax())
        assert r.distortion == pytest.approx(r.trace.distortion[-1], abs=1e-9)
    assert len({r.iterations for r in results}) > 1  # they really stopped separately


def test_distortion_cap_is_never_exceeded(model, images, digits_data):
    results = Relabeller(model, max_distortion=0.01, batch_size=4).run_batch(images, _targets(digits_data, 12))
    failed = [r for r in results if not r.success]
    assert failed, "the digits net should resist a 0.01 cap"
    for r in results:
        assert r.distortion <= 0.01 + 1e-12
    for r in failed:
        assert r.stop == "distortion" and r.iterations > 0
        # One more step of 50/255 on every channel would pass the cap.
        assert r.distortion + np.sqrt(1) * 50 / 255 / 255 > 0.01


def test_continuous_batching_matches_one_at_a_time(model, images, digits_data):
    targets = _targets(digits_data, 7, shift=4)
    kw = dict(max_distortion=None, max_iter=400)
    batched = Relabeller(model, batch_size=3, **kw).run_batch(images[:7], targets)
    single = [Relabeller(model, batch_size=1, **kw).run(im, t) for im, t in zip(images[:7], targets)]
    for a, b in zip(batched, single):
        assert a.iterations == b.iterations and a.stop == b.stop
        assert a.distortion == pytest.approx(b.distortion, abs=1e-6)


class Counting(Classifier):
    """Wraps a classifier, counting the samples each call carries."""

    def __init__(self, inner: Classifier, grad_fn=None):
        self.inner, self.samples, self.calls, self.grad_fn = inner, 0, 0, grad_fn

    input_shape = property(lambda self: self.inner.input_shape)
    num_classes = property(lambda self: self.inner.num_classes)
    blob_names = property(lambda self: self.inner.blob_names)

    def forward(self, x):
        return self.inner.forward(x)

    def blob(self, x, name):
        return self.inner.blob(x, name)

    def loss_and_gradient(self, x, targets):
        self.samples += len(x)
        self.calls += 1
        lg = self.inner.loss_and_gradient(x, targets)
        return lg if self.grad_fn is None else LossGradient(lg.probs, lg.loss, self.grad_fn(lg.grad))


def test_cost_follows_the_sum_of_iterations(model, images, digits_data):
    counting = Counting(model.classifier)
    m = Model(counting, SPEC, "digits", model.class_names, "digits")
    results = Relabeller(m, max_distortion=None, max_iter=600, batch_size=4).run_batch(images, _targets(digits_data, 12))
    assert counting.samples == sum(r.iterations + 1 for r in results)
    # Refilled slots: far fewer batched calls than a fixed-batch run of 3 x max would take.
    longest = max(r.iterations for r in results)
    assert counting.calls < 3 * (longest + 1)


def test_target_already_carried(model, images):
    label = model.classifier.forward(image_to_blob(images[0], SPEC)[None]).argmax()
    r = Relabeller(model).run(images[0], int(label))
    assert r.success and r.iterations == 0 and r.distortion == 0.0


def test_ensure_uint8_keeps_going_until_the_saved_image_carries_the_target(model, images, digits_data):
    targets = _targets(digits_data, 12, shift=2)
    loose = Relabeller(model, max_distortion=None, max_iter=800, batch_size=6).run_batch(images, targets)
    strict = Relabeller(model, max_distortion=None, max_iter=800, batch_size=6, ensure_uint8=True).run_batch(images, targets)
    assert any(not r.uint8_success for r in loose), "some 8-bit images should lose the label"
    for a, b in zip(loose, strict):
        assert b.success and b.uint8_success
        assert b.iterations >= a.iterations


def test_non_finite_gradient_stops_the_sample(model, images):
    m = Model(Counting(model.classifier, grad_fn=lambda g: g * np.nan), SPEC, "digits", model.class_names, "digits")
    r = Relabeller(m).run(images[0], 3)
    assert not r.success and r.stop == "non_finite" and r.iterations == 0
    assert np.all(np.isfinite(r.image))


def test_zero_gradient_stalls(model, images):
    m = Model(Counting(model.classifier, grad_fn=np.zeros_like), SPEC, "digits", model.class_names, "digits")
    r = Relabeller(m).run(images[0], 3)
    assert not r.success and r.stop == "stalled" and r.iterations == 0 and r.distortion == 0.0


def test_saturated_image_stays_in_range(model):
    white = np.ones((16, 16, 1))
    r = Relabeller(model, max_distortion=None, max_iter=30).run(white, 5)
    assert r.image.min() >= 0.0 and r.image.max() <= 1.0


def test_bad_arguments(model, images):
    with pytest.raises(ArgumentError, match="0 < alpha"):
        Relabeller(model, alpha=0)
    with pytest.raises(ArgumentError, match="1 <= batch_size"):
        Relabeller(model, batch_size=0)
    with pytest.raises(ArgumentError, match="unknown relabelling setting 'alpah'"):
        Relabeller(model, alpah=3)
    with pytest.raises(ArgumentError, match="one target per image"):
        Relabeller(model).run_batch(images[:2], [1])
    with pytest.raises(ModelNotFoundError, match="out of range"):
        Relabeller(model).run(images[0], 10)
    with pytest.raises(ArgumentError, match="ASCII digits"):
        Relabeller(model).run(images[0], "\u00b2")


def test_settings_record_and_keywords_build_the_same_relabeller(model, images):
    settings = RelabelSettings(max_distortion=None, max_iter=40, batch_size=2)
    a = Relabeller(model, settings).run(images[0], 3)
    b = Relabeller(model, max_distortion=None, max_iter=40, batch_size=2).run(images[0], 3)
    c = Relabeller(model, settings.replace(max_iter=1000), max_iter=40).run(images[0], 3)
    assert a.iterations == b.iterations == c.iterations and a.distortion == b.distortion == c.distortion
    assert Relabeller(model, settings, max_iter=7).settings == settings.replace(max_iter=7)


def test_model_by_name(classifier, images):
    r = Relabeller("digits", max_distortion=None, max_iter=300, backend=classifier.backend_name).run(images[0], "3")
    assert r.target == 3 and r.success
    assert r.summary()["iterations"] == r.iterations


def test_confidence_keeps_going_until_the_target_is_probable(model, images, digits_data):
    targets = _targets(digits_data, 4, shift=3)
    plain = Relabeller(model, max_distortion=None, max_iter=800).run_batch(images[:4], targets)
    sure = Relabeller(model, max_distortion=None, max_iter=800, confidence=0.9).run_batch(images[:4], targets)
    for a, b in zip(plain, sure):
        assert a.success and b.success
        assert b.target_prob >= 0.9 and b.iterations >= a.iterations
    assert any(a.target_prob < 0.9 for a in plain)
    with pytest.raises(ArgumentError, match="confidence"):
        Relabeller(model, confidence=1.0)


def test_uint8_success_asks_for_the_same_confidence(model, images, digits_data):
    targets = _targets(digits_data, 4, shift=3)
    plain = Relabeller(model, max_distortion=None, max_iter=800).run_batch(images[:4], targets)
    # Made after the fact with a confidence the 8-bit image does not reach: top-1 alone no longer counts.
    r = next(r for r in plain if r.uint8_success and r.uint8_target_prob < 0.9)
    assert not dataclasses.replace(r, goal=dataclasses.replace(r.goal, confidence=0.9)).uint8_success
    assert r.summary()["uint8_success"] is True


def test_a_bare_backend_with_its_input_spec(classifier, images):
    r = Relabeller(classifier, input_spec=SPEC, max_distortion=None, max_iter=300).run(images[0], 3)
    assert r.success and r.final_label == 3
    with pytest.raises(ArgumentError, match="input_spec"):
        Relabeller(classifier)


def test_a_file_is_decoded_once_for_its_run_of_targets(model, digits_data, tmp_path, monkeypatch):
    """A sweep gives each source's targets in a row: the file is read and resized once for them all, read
    again once it changes, and every result still owns its arrays."""
    import os

    import skimage.io

    from caffe_relabel.relabel import relabeller as module

    path = tmp_path / "digit.png"
    skimage.io.imsave(path, digits_data["images"][0], check_contrast=False)
    reads = []
    real = module.load_image
    monkeypatch.setattr(module, "load_image", lambda img: reads.append(img) or real(img))
    r = Relabeller(model, max_iter=2)
    results = r.run_batch([path] * 5, [1, 2, 3, 4, 5])
    assert len(reads) == 1 and [x.source for x in results] == [str(path)] * 5
    results[0].original[...] = 0  # the caller's own copy: the next pairs do not see it
    assert r.run(path, 6).original.any() and len(reads) == 1
    skimage.io.imsave(path, digits_data["images"][1], check_contrast=False)
    os.utime(path, ns=(1, 1))  # a new file under the old name, whatever the clock's resolution
    changed = r.run(path, 6)
    assert len(reads) == 2 and not np.array_equal(changed.original, results[1].original)
