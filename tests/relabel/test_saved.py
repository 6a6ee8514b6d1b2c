"""A lossy -o file is read back and classified; the CLI exits 1 when it lost the target."""

from __future__ import annotations

import json

import pytest
import skimage.io

from caffe_relabel import cli
from caffe_relabel.errors import ArgumentError
from caffe_relabel.relabel.goals import TargetClass, Untargeted
from caffe_relabel.relabel.saved import check_saved, is_lossy
from tests.conftest import requires_pycaffe


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, digits_data):
    p = tmp_path_factory.mktemp("img") / "digit.png"
    skimage.io.imsave(p, digits_data["images"][0], check_contrast=False)
    return p, int(digits_data["labels"][0])


def test_lossy_suffixes():
    assert is_lossy("a.JPG") and is_lossy("b.webp") and not is_lossy("c.png") and not is_lossy("d.tiff")


@requires_pycaffe
def test_a_jpeg_that_lost_the_target_exits_1_unless_lossy_output_is_allowed(digit_png, tmp_path, capsys):
    path, label = digit_png
    target = (label + 5) % 10
    out = tmp_path / "out.jpg"
    # Uncapped, stopping at the first top-1 step: JPEG's re-compression undoes it on this 16x16 digit.
    args = ["relabel", str(path), "-m", "digits", "-t", str(target), "--max-distortion", "0", "-o", str(out), "-q"]
    assert cli.main(args + ["--json"]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["success"] and result["uint8_success"] and not result["saved"]["carries_target"]
    assert "lost the target" in captured.err and "--allow-lossy" in captured.err
    assert cli.main(["classify", str(out), "-m", "digits", "--json", "--top", "1"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["class"] == result["saved"]["label"]  # as `classify` reads it

    assert cli.main(args + ["--allow-lossy"]) == cli.EXIT_OK
    assert "read back: NOT the target" in capsys.readouterr().out


@requires_pycaffe
def test_ensure_uint8_with_a_lossy_file_is_refused_before_any_work(digit_png, tmp_path, capsys):
    path, label = digit_png
    out = tmp_path / "out.jpg"
    rc = cli.main(["relabel", str(path), "-m", "digits", "-t", str((label + 5) % 10), "--ensure-uint8", "-o", str(out)])
    assert rc == cli.EXIT_USAGE and "--ensure-uint8" in capsys.readouterr().err and not out.exists()


@requires_pycaffe
def test_check_saved_reads_the_file_back(digit_png, tmp_path, digits_model_loaded):
    path, label = digit_png
    check = check_saved(digits_model_loaded, path, TargetClass(target=label))
    assert not check.lossy and check.label == label and check.carries_target
    assert not check_saved(digits_model_loaded, path, TargetClass(target=(label + 1) % 10)).carries_target
    # Untargeted: the file carries the goal when it is anything but the class it moved away from.
    assert not check_saved(digits_model_loaded, path, Untargeted(), aim=label).carries_target
    assert check_saved(digits_model_loaded, path, Untargeted(), aim=(label + 1) % 10).carries_target
    # ... and a confidence the file's top-1 does not reach is not met.
    assert not check_saved(digits_model_loaded, path, Untargeted(confidence=0.999999), aim=(label + 1) % 10
                           ).carries_target or check.prob >= 0.999999


def test_check_saved_needs_the_aim_of_a_goal_that_came_from_the_image(digit_png, digits_model_loaded):
    with pytest.raises(ArgumentError, match="aim="):
        check_saved(digits_model_loaded, digit_png[0], Untargeted())


@pytest.fixture(scope="module")
def digits_model_loaded():
    from caffe_relabel.models.model import load_model

    return load_model("digits")
