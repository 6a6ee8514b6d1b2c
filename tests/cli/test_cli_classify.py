"""classify on several images and folders; relabel's JSON names its files; progress bars end where the work did."""

from __future__ import annotations

import json
import re
import sys

import pytest
import skimage.io

from caffe_relabel import cli


@pytest.fixture(scope="module")
def digits(tmp_path_factory, digits_data):
    """Three digit PNGs in a folder (with a non-image beside them), and their labels."""
    folder = tmp_path_factory.mktemp("digits")
    labels = {}
    for i in (2, 0, 1):
        p = folder / f"d{i}.png"
        skimage.io.imsave(p, digits_data["images"][i], check_contrast=False)
        labels[p] = int(digits_data["labels"][i])
    (folder / "notes.txt").write_text("not an image")
    return folder, labels


def test_classify_takes_files_and_folders_one_block_each(digits, capsys):
    folder, labels = digits
    files = sorted(labels)
    one = files[1]
    assert cli.main(["classify", str(one), str(folder), "-m", "digits", "--json", "--top", "2"]) == cli.EXIT_OK
    blocks = json.loads(capsys.readouterr().out)
    # The file as given, then the folder's image files sorted by name (notes.txt is not one).
    assert [b["image"] for b in blocks] == [str(one)] + [str(f) for f in files]
    assert all(len(b["top"]) == 2 and b["top"][0]["class"] == labels[type(one)(b["image"])] for b in blocks)
    assert cli.main(["classify", str(folder), "-m", "digits", "--top", "1"]) == cli.EXIT_OK
    text = capsys.readouterr().out.splitlines()
    assert text[0::2] == [f"{f}:" for f in files]
    assert all(re.fullmatch(r"  \S+ \(\d\) p=\d\.\d{4}", line) for line in text[1::2])


def test_classify_checks_every_file_before_loading(digits, tmp_path, capsys):
    folder, labels = digits
    assert cli.main(["classify", str(folder), str(tmp_path / "missing.png"), "-m", "digitz"]) == cli.EXIT_INPUT
    assert "missing.png: image file not found" in capsys.readouterr().err  # not the model name's error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["classify", str(empty), "-m", "digits"]) == cli.EXIT_INPUT
    assert "empty: no image files in the folder" in capsys.readouterr().err


def test_relabel_json_names_the_source_and_the_output(digits, tmp_path, capsys):
    folder, labels = digits
    image = sorted(labels)[0]
    out = tmp_path / "out.png"
    argv = ["relabel", str(image), "-m", "digits", "-t", str((labels[image] + 5) % 10), "--max-distortion", "0",
            "--backend", "engine", "--json", "-o", str(out)]
    assert cli.main(argv) == cli.EXIT_OK
    got = json.loads(capsys.readouterr().out)
    assert got["source"] == str(image) and got["output"] == str(out) and out.exists()


def _relabel_with_bar(image, label, capsys, monkeypatch, tty: bool, quiet: bool = False) -> tuple[dict, str]:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    argv = ["relabel", str(image), "-m", "digits", "-t", str((label + 5) % 10), "--max-distortion", "0",
            "--backend", "engine", "--max-iter", "500", "-o", str(image.with_name("unused.png"))]
    assert cli.main(argv + (["-q"] if quiet else [])) == cli.EXIT_OK
    out, err = capsys.readouterr()
    return re.search(r"iterations: (\d+)", out), err


def test_progress_bar_ends_full_on_a_terminal(digits, capsys, monkeypatch):
    folder, labels = digits
    image = sorted(labels)[0]
    found, err = _relabel_with_bar(image, labels[image], capsys, monkeypatch, tty=True)
    n = int(found.group(1))
    assert n < 500  # it stopped early: the bar's total is what was done, not --max-iter
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and f"{n}/{n}" in last, last


@pytest.mark.parametrize("tty,quiet", [(False, False), (True, True)])
def test_no_progress_bar_off_a_terminal_or_when_quiet(digits, capsys, monkeypatch, tty, quiet):
    folder, labels = digits
    image = sorted(labels)[0]
    found, err = _relabel_with_bar(image, labels[image], capsys, monkeypatch, tty=tty, quiet=quiet)
    assert found and "relabelling" not in err and "%" not in err


def test_sweep_bar_ends_full_and_counts_pairs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    argv = ["experiment", "sweep", "--per-class", "1", "--targets", "0,1", "--max-iter", "2", "--backend", "engine",
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path), "--json"]
    assert cli.main(argv) == cli.EXIT_OK  # --json: no bar
    out, err = capsys.readouterr()
    pairs = json.loads(out)["planned"]
    assert pairs > 0 and "sweep" not in err
    assert cli.main(argv[:-1] + ["--store", str(tmp_path / "t.sqlite")]) == cli.EXIT_OK
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("sweep: 100%") and f"{pairs}/{pairs}" in last, last
