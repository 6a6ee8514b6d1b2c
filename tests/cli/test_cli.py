"""The command line, in-process: output, files and exit codes."""

from __future__ import annotations

import json

import pytest
import skimage.io

from caffe_relabel import cli

from caffe_relabel.models import testmodels
from tests.conftest import requires_pycaffe


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, digits_data):
    p = tmp_path_factory.mktemp("img") / "digit.png"
    skimage.io.imsave(p, digits_data["images"][0], check_contrast=False)
    return p, int(digits_data["labels"][0])


@requires_pycaffe
def test_classify_json(digit_png, capsys):
    path, label = digit_png
    assert cli.main(["classify", str(path), "-m", "digits", "--json", "--top", "3"]) == cli.EXIT_OK
    (block,) = json.loads(capsys.readouterr().out)
    top = block["top"]
    assert block["image"] == str(path) and len(top) == 3 and top[0]["class"] == label


@requires_pycaffe
def test_relabel_writes_an_image_that_carries_the_target(digit_png, tmp_path, capsys):
    path, label = digit_png
    target = (label + 5) % 10
    out = tmp_path / "out.png"
    rc = cli.main(["relabel", str(path), "-m", "digits", "-t", str(target), "--max-distortion", "0",
                   "--ensure-uint8", "-o", str(out), "-q"])
    text = capsys.readouterr().out
    assert rc == cli.EXIT_OK, text
    assert f"relabelled: {target} ({target})" in text and "distortion:" in text
    assert cli.main(["classify", str(out), "-m", "digits", "--json", "--top", "1"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["class"] == target


@requires_pycaffe
def test_failed_relabelling_exits_1(digit_png, capsys):
    path, label = digit_png
    rc = cli.main(["relabel", str(path), "-m", "digits", "-t", str((label + 1) % 10), "--json", "-q"])
    result = json.loads(capsys.readouterr().out)
    assert rc == cli.EXIT_FAILED and result["stop"] == "distortion" and result["distortion"] <= 0.01


@requires_pycaffe
def test_custom_prototxt_needs_a_mean(digit_png, capsys):
    path, _ = digit_png
    args = ["classify", str(path), "--prototxt", str(testmodels.DIGITS_PROTOTXT), "--weights", str(testmodels.DIGITS_WEIGHTS),
            "--channel-order", "GREY", "--resize", "0"]
    assert cli.main(args) == cli.EXIT_INPUT
    assert "--mean" in capsys.readouterr().err
    assert cli.main(args + ["--mean", "128", "--json"]) == cli.EXIT_OK


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["relabel", "missing.png", "-t", "3", "-m", "digits"], cli.EXIT_INPUT, "missing.png: image file not found"),
        (["relabel", "{digit}", "-t", "ten", "-m", "digits"], cli.EXIT_INPUT, "unknown class name 'ten'"),
        (["relabel", "{digit}", "-t", "3", "-m", "digitz"], cli.EXIT_INPUT, "did you mean digits"),
        (["relabel", "{digit}", "-m", "digits"], cli.EXIT_USAGE, "--target"),
        (["relabel", "{digit}", "--target=\u00b2", "-m", "digits", "-q"], cli.EXIT_USAGE, "ASCII digits"),
        (["relabel", "{digit}", "--target=--1", "-m", "digits", "-q"], cli.EXIT_USAGE, "ASCII digits"),
        (["experiment", "sweep", "--shard", "\u00b2/4"], cli.EXIT_USAGE, "expected i/n"),
        (["relabel", "{digit}", "-t", "3", "-m", "digits", "-q", "-o", ""], cli.EXIT_USAGE, "expected an output image"),
        (["frobnicate"], cli.EXIT_USAGE, "invalid choice"),
        (["classify", "{digit}", "--weights", "x.caffemodel"], cli.EXIT_INPUT, "--weights needs --prototxt"),
    ],
)
def test_user_errors_are_one_line_and_coded(argv, code, message, digit_png, capsys):
    argv = [a.replace("{digit}", str(digit_png[0])) for a in argv]
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse exits by itself on usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code
    assert message in err and "Traceback" not in err


def test_output_with_a_trailing_slash_is_refused_not_written(digit_png, tmp_path, capsys):
    out = str(tmp_path / "newdir.png") + "/"
    assert cli.main(["relabel", str(digit_png[0]), "-t", "3", "-m", "digits", "-q", "--max-iter", "2", "-o", out]) == cli.EXIT_USAGE
    assert "trailing slash" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_models_list(capsys):
    assert cli.main(["models", "list"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    for name in ("bvlc_googlenet", "bvlc_alexnet", "bvlc_reference_caffenet", "digits"):
        assert name in out


@pytest.mark.parametrize("mode", ["--untargeted", "--least-likely"])
def test_relabel_modes(digit_png, capsys, mode):
    path, label = digit_png
    rc = cli.main(["relabel", str(path), "-m", "digits", mode, "--max-distortion", "0", "--backend", "engine",
                   "--json", "-q"])
    result = json.loads(capsys.readouterr().out)
    assert rc == cli.EXIT_OK and result["goal"] == mode.lstrip("-").replace("-", "_") and result["success"]
    assert result["final_label"] != label
    if mode == "--untargeted":
        assert result["target"] is None and result["original_label"] == label


def test_relabel_modes_exclude_a_target(digit_png, capsys):
    path, _ = digit_png
    with pytest.raises(SystemExit) as e:  # argparse exits by itself on usage errors
        cli.main(["relabel", str(path), "-m", "digits", "-t", "3", "--untargeted"])
    assert e.value.code == cli.EXIT_USAGE
    assert "not allowed with" in capsys.readouterr().err
