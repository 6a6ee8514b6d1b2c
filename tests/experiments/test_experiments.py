"""Each experiment end to end on the digits model, with tiny settings."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.cli.experiments import _text
from caffe_relabel.errors import CaffeRelabelError, ModelNotFoundError
from caffe_relabel.experiments.features import last_fc_input
from caffe_relabel.experiments.limitations import _crop, _translate, run_limitations
from caffe_relabel.experiments.relabel_examples import run_examples
from caffe_relabel.experiments.sources import load_sources
from caffe_relabel.experiments.svm import run_svm
from caffe_relabel.experiments.synthesis import noise_image, run_synthesis
from caffe_relabel.files.paths import repo_prototxt
from caffe_relabel.models.testmodels import DIGITS_PROTOTXT

FAST = dict(settings=RelabelSettings(batch_size=32, max_distortion=0.2))


def _png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_examples_swap_two_classes_and_report_spread(tmp_path, digits_model):
    r = run_examples(digits_model, tmp_path, classes=["3", "8"], n=4, **FAST)
    a, b = r.swapped
    assert (a.source_label, a.target, b.source_label, b.target) == (3, 8, 8, 3)
    assert len(r.runs) == 4 and 0 < r.success_rate <= 1
    assert r.distortion.min <= r.distortion.mean <= r.distortion.max
    assert _png(r.figure1) and _png(r.figure2)
    # The CLI's text form shows each run's stop reason by its value, as JSON and the sweep store do.
    swapped = next(line for line in _text(r) if line.startswith("swapped:"))
    assert f"'stop': '{a.stop.value}'" in swapped and "StopReason" not in swapped


def test_confident_examples_lower_the_uncertainty(tmp_path, digits_model):
    plain = run_examples(digits_model, tmp_path, classes=["3", "8"], n=4, **FAST)
    sure = run_examples(digits_model, tmp_path, classes=["3", "8"], n=4, settings=FAST["settings"].replace(confidence=0.9))
    assert sure.entropy_after.mean < plain.entropy_after.mean
    assert sure.iterations.mean >= plain.iterations.mean
    assert sure.figure2 != plain.figure2 and _png(sure.figure2) and _png(plain.figure2)


def test_examples_need_exactly_two_classes(tmp_path, digits_model):
    with pytest.raises(ValueError, match="two classes"):
        run_examples(digits_model, tmp_path, classes=["3"], n=1)


def test_synthesis_is_seeded_and_relabels_noise(tmp_path, digits_model):
    assert np.array_equal(noise_image(digits_model, 3, 0.2), noise_image(digits_model, 3, 0.2))
    r = run_synthesis(digits_model, tmp_path, n_targets=3, **FAST)
    assert len(r.targets) == 3 and r.success_rate > 0 and _png(r.figure)


def test_svm_features_come_from_before_the_last_fc_layer():
    assert last_fc_input(DIGITS_PROTOTXT) == "fc1"
    assert last_fc_input(repo_prototxt("bvlc_googlenet")) == "pool5/7x7_s1"
    assert last_fc_input(repo_prototxt("bvlc_alexnet")) == "fc7"


def test_svm_scales_sets_down_to_the_data(tmp_path, digits_model):
    r = run_svm(digits_model, tmp_path, sets=1, n_train=4, n_test=6, **FAST)
    (s,) = r.sets
    assert r.layer == "fc1" and (s.n_train, s.n_test) == (4, 6)
    assert 0 <= s.accuracy <= 1 and _png(r.figure)


def test_limitations_rates_and_figures(tmp_path, digits_model):
    r = run_limitations(digits_model, tmp_path, n=4, **FAST)
    assert r.pairs == 4 and set(r.transforms) == {"crop 0.875", "shift 1px", "mirror"}
    for t in r.transforms.values():
        assert 0 <= t.reverts + t.keeps_target <= 1
    assert r.transfer is not None and r.transfer.to == "digits-mlp" and r.transfer.control_accuracy > 0.5
    assert 0 <= r.ablation.one_step_success <= 1
    assert all(_png(p) for p in r.figures.values()) and "figure3" in r.figures


def test_transforms_keep_the_image_size():
    img = np.random.default_rng(0).random((16, 16, 1))
    assert _crop(img, 0.875).shape == img.shape
    shifted = _translate(img, 2)
    assert shifted.shape == img.shape and np.array_equal(shifted[2:, 2:], img[:-2, :-2])


def test_sources_from_a_list_file_and_a_class_folder(tmp_path, digits_model):
    from caffe_relabel.images.preprocess import save_image

    for label in (1, 7):
        (tmp_path / "set" / str(label)).mkdir(parents=True)
        for i in range(3):
            save_image(np.full((16, 16, 1), 0.1 * i), tmp_path / "set" / str(label) / f"{i}.png")
    folder = load_sources(digits_model, tmp_path / "set", per_class=2)
    assert [s.label for s in folder] == [1, 1, 7, 7]
    listing = tmp_path / "val.txt"
    listing.write_text("set/1/0.png 1\n# comment\nset/7/2.png 7\n")
    assert [(s.label, s.id.endswith("2.png")) for s in load_sources(digits_model, listing)] == [(1, False), (7, True)]
    listing.write_text("set/1/0.png\n")
    with pytest.raises(CaffeRelabelError, match="val.txt:1: expected 'path label'"):
        load_sources(digits_model, listing)
    with pytest.raises(CaffeRelabelError, match="no such source folder"):
        load_sources(digits_model, tmp_path / "missing")
    listing.write_text("set/1/0.png \u00b2\n")  # a label in a file is the file's fault (exit 3), not a usage error
    with pytest.raises(ModelNotFoundError, match="val.txt:1: label: target '\u00b2': expected a class index"):
        load_sources(digits_model, listing)


@pytest.mark.parametrize("shift", [16, 100000])
def test_limitations_refuses_a_shift_past_the_input(tmp_path, shift):
    # --shift 100000 once asked for 74.5 GiB of padding.
    from caffe_relabel.errors import ArgumentError

    with pytest.raises(ArgumentError, match=r"expected 1 <= shift < 16 \(the input is 16 x 16\)"):
        run_limitations("digits", out_dir=tmp_path, n=2, shift=shift, backend="engine")


def test_limitations_keeps_its_own_batches_small_whatever_n(tmp_path, digits_model, monkeypatch):
    """The first-gradient ablation and the transformed images go through the net a small batch at a time:
    one batch of all n relabellings once asked 11.9 GiB of EfficientNet-Lite0 at n = 110."""
    from caffe_relabel.experiments import limitations

    clf = digits_model.classifier
    seen = []
    for name in ("forward", "loss_and_gradient"):
        real = getattr(clf, name)
        monkeypatch.setattr(clf, name, lambda x, *a, real=real: seen.append(len(x)) or real(x, *a))
    r = run_limitations(digits_model, tmp_path, n=40, **FAST)
    assert r.pairs == 40 and max(seen) <= max(limitations._BATCH, FAST["settings"].batch_size)
    assert seen.count(limitations._BATCH) >= 2  # the ablation's 40 gradients came in batches, not as one
