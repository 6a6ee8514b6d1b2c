"""The command line's input transform options (Caffe's names), on a LeNet-style net trained on 0..1 inputs."""

from __future__ import annotations

import json

import pytest
import skimage.io

from caffe_relabel import cli

from caffe_relabel.models import testmodels

LENET_SCALE = "0.00390625"  # 1/256, Caffe's MNIST LeNet


@pytest.fixture(scope="module")
def digit(tmp_path_factory, digits_data):
    p = tmp_path_factory.mktemp("img") / "digit.png"
    skimage.io.imsave(p, digits_data["images"][0], check_contrast=False)
    return p, int(digits_data["labels"][0])


@pytest.fixture(scope="module")
def lenet_style(tmp_path_factory):
    """The digits net re-expressed for inputs (pixel * 255 - 128) / 256, and its train_val."""
    folder = tmp_path_factory.mktemp("lenet_style")
    proto, weights = testmodels.scaled_digits(folder, float(LENET_SCALE))
    train_val = folder / "train_val.prototxt"
    train_val.write_text('layer { name: "d" type: "Data" top: "data" include { phase: TEST }\n'
                         f'  transform_param {{ scale: {LENET_SCALE} mean_value: 128 mirror: true }} }}\n')
    return proto, weights, train_val


def _relabel(argv, capsys) -> tuple[int, dict]:
    rc = cli.main(["relabel", *argv, "--max-distortion", "0", "--json", "-q"])
    out, err = capsys.readouterr()
    assert out, err
    return rc, json.loads(out)


@pytest.mark.parametrize("how", [["--mean", "128", "--input-scale", LENET_SCALE],
                                 ["--mean", "128", "--input_scale", LENET_SCALE, "--raw_scale", "255"],
                                 ["--train-val", "{train_val}"]])
def test_lenet_style_net_relabels_in_steps_of_50_255_grey_level(how, backend, digit, lenet_style, capsys):
    path, label = digit
    proto, weights, train_val = lenet_style
    target = str((label + 5) % 10)
    custom = ["--prototxt", str(proto), "--weights", str(weights), "--channel-order", "GREY", "--resize", "0"]
    custom += [a.replace("{train_val}", str(train_val)) for a in how]
    rc, got = _relabel([str(path), "-t", target, "--backend", backend, *custom], capsys)
    # The unscaled digits net, whose steps are 50/255 of a grey level (tests/relabel/test_relabel.py):
    # 1/256 is a power of two, so the same function and the same steps give the very same run.
    rc_ref, want = _relabel([str(path), "-t", target, "--backend", backend, "-m", "digits"], capsys)
    assert rc == rc_ref == cli.EXIT_OK and got["success"]
    assert got["iterations"] == want["iterations"] > 1
    assert got["distortion"] == want["distortion"] < 0.2  # 50 grey levels a step would be past 0.16 at once


@pytest.mark.parametrize("option", ["--raw-scale", "--input-scale", "--input_scale", "--raw_scale"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "x"])
def test_scales_must_be_finite_and_positive(option, value, digit, capsys):
    argv = ["classify", str(digit[0]), "--prototxt", str(testmodels.DIGITS_PROTOTXT),
            "--weights", str(testmodels.DIGITS_WEIGHTS), "--mean", "128", option, value]
    with pytest.raises(SystemExit) as e:  # argparse exits by itself on usage errors
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == cli.EXIT_USAGE
    assert option.replace("_", "-") in err and "expected a" in err and "Traceback" not in err


@pytest.mark.parametrize("extra", [["--input-scale", "0.5"], ["--train-val", "x.prototxt"], ["--mean", "1"]])
def test_transform_options_need_a_prototxt(extra, digit, capsys):
    assert cli.main(["classify", str(digit[0]), "-m", "digits", *extra]) == cli.EXIT_USAGE
    assert "only with --prototxt" in capsys.readouterr().err


def test_help_documents_the_transform(capsys):
    with pytest.raises(SystemExit):
        cli.main(["relabel", "--help"])
    text = capsys.readouterr().out
    for option in ("--raw-scale", "--raw_scale", "--input-scale", "--input_scale", "--mean-file", "--train-val",
                   "transform_param", "(pixel * raw_scale - mean) * input_scale"):
        assert option in text, option
