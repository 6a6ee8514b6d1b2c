"""A user's prototxt + caffemodel with a labels file, through classify, relabel and the experiments, on both backends."""

from __future__ import annotations

import json
import sqlite3

import pytest
import skimage.io

from caffe_relabel import cli
from caffe_relabel.cli.main import build_parser
from caffe_relabel.files.download import sha1_file
from caffe_relabel.models import testmodels

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MODEL_FLAGS = ("--model", "--prototxt", "--weights", "--train-val", "--mean", "--mean-file", "--raw-scale",
               "--input-scale", "--channel-order", "--resize", "--interpolation", "--resample", "--labels", "--backend",
               "--device", "--engine-mode")


@pytest.fixture(scope="module")
def data(tmp_path_factory, digits_data):
    """Two digit images in class subfolders, one loose, and a synset_words-style labels file."""
    root = tmp_path_factory.mktemp("user")
    images, labels = digits_data["images"], digits_data["labels"]
    picked = {}
    for i, label in enumerate(labels):
        picked.setdefault(int(label), i)
        if len(picked) == 2:
            break
    sources = root / "sources"
    for label, i in picked.items():
        (sources / str(label)).mkdir(parents=True)
        skimage.io.imsave(sources / str(label) / f"img{i}.png", images[i], check_contrast=False)
    (root / "synset_words.txt").write_text("".join(f"d{i} digit {n}\n" for i, n in enumerate(NAMES)))
    return root, sources, picked


def _user(root, backend, weights=testmodels.DIGITS_WEIGHTS) -> list[str]:
    return ["--prototxt", str(testmodels.DIGITS_PROTOTXT), "--weights", str(weights), "--mean", "128",
            "--channel-order", "GREY", "--resize", "0", "--labels", str(root / "synset_words.txt"),
            "--backend", backend, "--device", "cpu", "--engine-mode", "faithful"]


def _json(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert out, err
    return rc, json.loads(out)


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for deeper, subsub in _subparsers(sub):
                    yield f"{name} {deeper}", subsub


@pytest.mark.parametrize("command", ["classify", "relabel", "experiment examples", "experiment sweep",
                                     "experiment synthesis", "experiment svm", "experiment limitations", "report"])
def test_every_model_command_takes_every_model_option(command):
    parsers = dict(_subparsers(build_parser()))
    flags = {s for a in parsers[command]._actions for s in a.option_strings}
    assert set(MODEL_FLAGS) <= flags, set(MODEL_FLAGS) - flags


def test_classify_and_relabel_a_user_model_with_labels(data, backend, capsys):
    root, sources, picked = data
    label, i = next(iter(picked.items()))
    image = sources / str(label) / f"img{i}.png"
    rc, top = _json(["classify", str(image), "--json", "--top", "2", *_user(root, backend)], capsys)
    assert rc == cli.EXIT_OK and top[0]["top"][0]["class"] == label
    assert top[0]["top"][0]["name"] == f"digit {NAMES[label]}"
    target = (label + 5) % 10
    rc, got = _json(["relabel", str(image), "-t", f"d{target}", "--max-distortion", "0", "--json", "-q",
                     *_user(root, backend)], capsys)
    assert rc == cli.EXIT_OK and got["success"] and got["target"] == target and got["source"] == str(image)


def test_sweep_on_a_user_model_records_its_files_and_refuses_other_weights(data, backend, tmp_path, capsys):
    root, sources, picked = data
    store = tmp_path / "sweep.sqlite"
    sweep = ["experiment", "sweep", "--sources", str(sources), "--targets-per-source", "1", "--max-distortion", "0",
             "--store", str(store), "--out", str(tmp_path), "--json", "-q"]
    rc, got = _json([*sweep, *_user(root, backend)], capsys)
    assert rc == cli.EXIT_OK and got["summary"]["pairs"] == len(picked) and got["summary"]["model"] == "deploy.prototxt"
    with sqlite3.connect(store) as db:
        identity = json.loads(db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()[0])
    assert identity["files"] == [["deploy.prototxt", sha1_file(testmodels.DIGITS_PROTOTXT)],
                                 ["digits.caffemodel", sha1_file(testmodels.DIGITS_WEIGHTS)]]
    # A resume with the same files runs nothing more; with other weights it is refused in one line.
    rc, again = _json([*sweep, *_user(root, backend)], capsys)
    assert rc == cli.EXIT_OK and again["ran"] == 0 and again["already_stored"] == len(picked)
    other = tmp_path / "other"
    other.mkdir()
    _, scaled = testmodels.scaled_digits(other, 0.5)
    argv = [*sweep, *_user(root, backend, scaled), "--input-scale", "0.5"]
    assert cli.main(argv) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert "made with model files deploy.prototxt" in err and "scaled_digits.caffemodel" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    # The preprocessing is recorded too: another resampler is another store.
    assert identity["input"] == {"size": [16, 16], "channel_order": "GREY", "mean": [128.0], "resize": None,
                                 "interpolation": 1, "resample": "skimage", "raw_scale": 255.0, "input_scale": 1.0}
    assert cli.main([*sweep, *_user(root, backend), "--resample", "pillow"]) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert "made with input resample='skimage', expected resample='pillow'" in err and err.count("\n") == 1


def test_merge_refuses_stores_of_other_model_files(data, tmp_path, capsys):
    root, sources, _ = data
    stores = []
    for n, weights in enumerate([testmodels.DIGITS_WEIGHTS, testmodels.scaled_digits(tmp_path, 0.5)[1]]):
        stores.append(tmp_path / f"s{n}.sqlite")
        argv = ["experiment", "sweep", "--sources", str(sources), "--targets-per-source", "1",
                "--max-distortion", "0", "--store", str(stores[-1]), "--out", str(tmp_path), "--json", "-q",
                *_user(root, "engine", weights)] + (["--input-scale", "0.5"] if n else [])
        assert cli.main(argv) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["experiment", "merge", str(tmp_path / "m.sqlite"), *map(str, stores)]) == cli.EXIT_INPUT
    assert "made with model files" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["experiment", "examples", "--n", "1", "--classes", "{classes}"],
                                     ["experiment", "synthesis", "--targets", "3"],
                                     ["experiment", "limitations", "--n", "1"]])
def test_experiments_run_on_a_user_model(command, data, tmp_path, capsys):
    root, sources, picked = data
    command = [c.replace("{classes}", ",".join(map(str, picked))) for c in command]
    extra = [] if "synthesis" in command else ["--sources", str(sources)]
    rc, got = _json([*command, *extra, "--max-iter", "5", "--out", str(tmp_path), "--json", "-q",
                     *_user(root, "engine")], capsys)
    assert rc == cli.EXIT_OK and got["model"] == "deploy.prototxt"


def test_report_takes_a_model_or_a_prototxt_not_both(data, tmp_path, capsys):
    root, _, _ = data
    argv = ["report", "-q", "--out", str(tmp_path), "--model", "digits", *_user(root, "engine")]
    assert cli.main(argv) == cli.EXIT_USAGE
    assert "--model and --prototxt: expected one of them" in capsys.readouterr().err


def test_interpolation_and_resample_flags_reach_the_model_options():
    from caffe_relabel.cli.model_args import model_options

    args = build_parser().parse_args(["classify", "x.png", "--interpolation", "bicubic", "--resample", "pillow"])
    assert (model_options(args).interpolation, model_options(args).resample) == ("bicubic", "pillow")
    args = build_parser().parse_args(["classify", "x.png"])
    assert (model_options(args).interpolation, model_options(args).resample) == ("bilinear", "skimage")
