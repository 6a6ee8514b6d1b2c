"""Goals: one rule each, used alike by the loop, the 8-bit check and the saved-file check."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel import ArgumentError, LeastLikely, ModelNotFoundError, Relabeller, TargetClass, Untargeted
from caffe_relabel.relabel.goals import BOTTOM, TOP, target_list, to_goal


def test_each_goal_has_one_rule():
    assert TargetClass(target=3).reached(3, 0.2, 3) and not TargetClass(target=3).reached(4, 0.9, 3)
    assert not TargetClass(confidence=0.5, target=3).reached(3, 0.49, 3)
    # Untargeted: anything but the class it moves away from, and as confident as asked.
    assert Untargeted().reached(4, 0.2, 3) and not Untargeted().reached(3, 0.9, 3)
    assert not Untargeted(confidence=0.99).reached(4, 0.499, 3) and Untargeted(confidence=0.99).reached(4, 0.995, 3)
    assert LeastLikely().reached(7, 0.3, 7) and not LeastLikely().reached(6, 0.3, 7)
    assert (TargetClass(target=5).code, Untargeted().code, LeastLikely().code) == (5, TOP, BOTTOM)
    assert Untargeted.away and not TargetClass.away and not LeastLikely.away


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), True, "0.5"])
def test_a_confidence_outside_the_unit_interval_is_refused(bad):
    with pytest.raises(ArgumentError, match="confidence"):
        Untargeted(confidence=bad)


def test_targets_become_goals():
    resolve = {"three": 3}.get
    assert to_goal("three", resolve, 0.4) == TargetClass(confidence=0.4, target=3)
    assert to_goal(" Least-Likely ", resolve, 0.0) == LeastLikely()
    assert to_goal("untargeted", resolve, 0.7) == Untargeted(confidence=0.7)
    given = Untargeted(confidence=0.2)
    assert to_goal(given, resolve, 0.9) is given  # a Goal object keeps its own confidence
    with pytest.raises(ArgumentError, match="expected a target"):
        to_goal(2.5, resolve, 0.0)
    assert target_list(np.array([1, 2]), "targets") == [1, 2]
    assert target_list(given, "targets", 3) == [given] * 3


@pytest.fixture(scope="module")
def images(digits_data):
    return [im[:, :, None] / 255.0 for im in digits_data["images"][:6].astype(np.float64)]


def test_untargeted_honours_confidence(engine_model, images):
    """The regression of issue 24: --untargeted --confidence 0.99 reported success at p = 0.499."""
    plain = Relabeller(engine_model, max_distortion=None, max_iter=600).run_batch(images, ["untargeted"] * 6)
    sure = Relabeller(engine_model, max_distortion=None, max_iter=600, confidence=0.99).run_batch(images, ["untargeted"] * 6)
    assert all(r.success for r in plain) and any(r.final_prob < 0.99 for r in plain)
    for a, b in zip(plain, sure):
        assert b.target is None and b.original_label == a.original_label
        if b.success:
            assert b.final_label != b.original_label and b.final_prob >= 0.99
            assert b.iterations >= a.iterations
        assert b.uint8_success == (b.uint8_label != b.original_label and b.uint8_prob >= 0.99)
    assert any(b.success for b in sure)


def test_a_goal_object_as_target(engine_model, images):
    r = Relabeller(engine_model, max_distortion=None, max_iter=600).run(images[0], TargetClass(confidence=0.9, target=4))
    assert r.success and r.final_label == 4 and r.final_prob >= 0.9 and r.goal.confidence == 0.9
    with pytest.raises(ModelNotFoundError, match="out of range"):
        Relabeller(engine_model).run(images[0], TargetClass(target=10))  # the digits net has classes 0..9
