"""Source sets in every ImageNet layout, made here in small: class subfolders, flat <wnid>_ files, val.txt lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from caffe_relabel.errors import CaffeRelabelError, ModelNotFoundError
from caffe_relabel.experiments.sources import VAL_LIST, load_sources
from caffe_relabel.models.zoo import resolve_class, wordnet_ids

REPO = Path(__file__).resolve().parents[2]
# Labels are all a layout needs of a model: ImageNet's 1000 WordNet ids, without loading a network.
IMAGENET = SimpleNamespace(resolve=lambda label: resolve_class(label, "imagenet"), label_set="imagenet", name="stand-in")
TENCH, SHARK, KIT = "n01440764", "n01484850", "n02966687"  # classes 0, 2 and carpenter's kit


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not read: a layout is resolved from names alone")
    return path


def _labels(sources) -> list[tuple[int, str]]:
    return [(s.label, Path(s.id).name) for s in sources]


def test_the_ids_are_the_imagenet_order():
    assert wordnet_ids("imagenet").index(KIT) == resolve_class(KIT, "imagenet") == 477
    assert resolve_class(TENCH, "imagenet") == 0 and resolve_class(SHARK, "imagenet") == 2


def test_class_subfolders_named_by_wordnet_id_as_the_ilsvrc_training_set(tmp_path):
    _touch(tmp_path / SHARK / f"{SHARK}_10.JPEG")
    _touch(tmp_path / TENCH / f"{TENCH}_10026.JPEG")
    _touch(tmp_path / TENCH / "notes.txt")  # not an image: left out
    _touch(tmp_path / KIT / "a carpenter's kit.jpg")
    got = _labels(load_sources(IMAGENET, tmp_path))
    assert got == [(0, f"{TENCH}_10026.JPEG"), (2, f"{SHARK}_10.JPEG"), (477, "a carpenter's kit.jpg")]


def test_a_flat_folder_of_wordnet_named_files_as_imagenet_samples_name_them(tmp_path):
    for name in (f"{SHARK}_great_white_shark.JPEG", f"{TENCH}_tench.JPEG", f"{KIT}_carpenter's_kit.JPEG",
                 f"{TENCH}_a tench with spaces.jpeg"):
        _touch(tmp_path / name)
    _touch(tmp_path / "README.md")
    got = _labels(load_sources(IMAGENET, tmp_path))
    assert got == [(0, f"{TENCH}_a tench with spaces.jpeg"), (0, f"{TENCH}_tench.JPEG"),
                   (2, f"{SHARK}_great_white_shark.JPEG"), (477, f"{KIT}_carpenter's_kit.JPEG")]
    assert [s.label for s in load_sources(IMAGENET, tmp_path, per_class=1)] == [0, 2, 477]


def test_flat_files_named_by_class_index_and_class_folders_mix(tmp_path):
    _touch(tmp_path / "7_seven.png")
    _touch(tmp_path / "3" / "x.png")
    _touch(tmp_path / f"{TENCH}_t.png")
    assert _labels(load_sources(IMAGENET, tmp_path)) == [(0, f"{TENCH}_t.png"), (3, "x.png"), (7, "7_seven.png")]


def test_a_validation_folder_with_its_val_txt(tmp_path):
    val = tmp_path / "val"
    for i in (1, 2, 3):
        _touch(val / f"ILSVRC2012_val_{i:08d}.JPEG")
    (val / VAL_LIST).write_text("ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000002.JPEG 970\n"
                                "ILSVRC2012_val_00000003.JPEG 230\n")
    got = _labels(load_sources(IMAGENET, val))
    assert got == [(65, "ILSVRC2012_val_00000001.JPEG"), (230, "ILSVRC2012_val_00000003.JPEG"),
                   (970, "ILSVRC2012_val_00000002.JPEG")]
    assert load_sources(IMAGENET, val / VAL_LIST) == load_sources(IMAGENET, val)  # the list itself: the same set


def test_a_list_takes_spaces_apostrophes_wordnet_ids_and_symlinks(tmp_path):
    _touch(tmp_path / "my photos" / "o'brien's tench.jpg")
    _touch(tmp_path / "real" / "shark.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real" / "shark.png")
    (tmp_path / "list.txt").write_text(f"  my photos/o'brien's tench.jpg   {TENCH}\n\n# a comment\n"
                                       f"link.png 2\n{tmp_path}/real/../real/shark.png {SHARK}\n")
    got = load_sources(IMAGENET, tmp_path / "list.txt")
    # Ids are real paths, as a sweep stored them before: a symlink is its target.
    assert [(s.label, s.id) for s in got] == [(0, str(tmp_path / "my photos" / "o'brien's tench.jpg")),
                                              (2, str(tmp_path / "real" / "shark.png")),
                                              (2, str(tmp_path / "real" / "shark.png"))]


@pytest.mark.parametrize("name, message", [
    ("n99999999_unknown.JPEG", "n99999999_unknown.JPEG: file name: WordNet id 'n99999999' is well-formed but not"),
    ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000001.JPEG: expected a file name '<WordNet id or class "
                                     "index>_...'.*or a val.txt"),
    ("1000_out_of_range.png", "1000_out_of_range.png: file name: class index 1000 is out of range 0..999"),
    ("n0144_short.png", "n0144_short.png: file name: malformed WordNet id"),
])
def test_a_flat_file_that_names_no_class_is_one_line_naming_it(tmp_path, name, message):
    _touch(tmp_path / f"{TENCH}_fine.JPEG")
    _touch(tmp_path / name)
    with pytest.raises(CaffeRelabelError, match=message):
        load_sources(IMAGENET, tmp_path)


def test_an_unknown_class_folder_is_named(tmp_path):
    _touch(tmp_path / "n99999999" / "a.JPEG")
    with pytest.raises(ModelNotFoundError, match=r"n99999999: class folder: WordNet id 'n99999999'"):
        load_sources(IMAGENET, tmp_path)


@pytest.mark.parametrize("lines, message", [
    (["a.png 3", "a.png 1000"], r"list.txt:2: label: class index 1000 is out of range 0..999"),
    (["a.png 3", "a.png n99999999"], r"list.txt:2: label: WordNet id 'n99999999'"),
    (["a.png 3", "gone.png 3", "gone2.png 3"], r"list.txt:2: .*gone.png: cannot use the image \(No such file"),
    (["a.png 3", "sub 3"], r"list.txt:2: .*sub: not a regular file"),
    (["a.png 3", "a\0.png 3"], r"list.txt:2: the line holds a NUL byte"),
])
def test_a_bad_list_line_is_one_line_naming_the_list_and_the_line(tmp_path, lines, message):
    _touch(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(CaffeRelabelError, match=message):
        load_sources(IMAGENET, tmp_path / "list.txt")


def test_a_long_list_of_missing_files_stops_at_the_first(tmp_path, monkeypatch):
    import os

    # Each line is checked as it is read: the error is line 1's, not a stat of every line first.
    (tmp_path / "list.txt").write_text("".join(f"gone{i}.png 0\n" for i in range(200_000)))
    calls = []
    real = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    with pytest.raises(CaffeRelabelError, match=r"list.txt:1: .*gone0.png: cannot use the image"):
        load_sources(IMAGENET, tmp_path / "list.txt")
    assert [Path(p).name for p in calls if Path(p).name.startswith("gone")] == ["gone0.png"]


def test_a_long_list_resolves_each_folder_once(tmp_path, monkeypatch):
    import os

    for d in range(3):
        _touch(tmp_path / f"d{d}" / "a.png")
    (tmp_path / "list.txt").write_text("".join(f"d{i % 3}/a.png {i % 1000}\n" for i in range(3000)))
    resolved = []
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p, *a, **k: resolved.append(p) or real(p, *a, **k))
    got = load_sources(IMAGENET, tmp_path / "list.txt")
    assert len(got) == 3000 and len(resolved) == 1 + 3  # the list's folder, then each image folder


# -- the command line: the same layouts, exit 3 for a bad source, one line -----------------------------------


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory, digits_data):
    from caffe_relabel.images.preprocess import save_image

    d = tmp_path_factory.mktemp("digits")
    for i in range(2):
        label = int(digits_data["labels"][i])
        save_image(digits_data["images"][i][:, :, None] / 255.0, d / f"{label}_digit {i}'s.png")
    return d


def test_cli_sweeps_a_flat_folder_named_by_class(digit_pngs, tmp_path, digits_data):
    from tests.files.test_strict_json import strict_loads

    done = subprocess.run([sys.executable, "-c", "import sys; from caffe_relabel.cli.main import main; "
                           "sys.exit(main(sys.argv[1:]))", "experiment", "sweep", "-m", "digits", "--sources",
                           str(digit_pngs), "--targets", "0,1", "--max-iter", "2", "--store",
                           str(tmp_path / "s.sqlite"), "--json", "-q"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    labels = {int(digits_data["labels"][i]) for i in range(2)}
    pairs = sum(len({0, 1} - {label}) for label in labels)
    data = strict_loads(done.stdout)  # --json is strict JSON: no NaN where nothing succeeded
    assert data["planned"] == data["summary"]["pairs"] == pairs


@pytest.mark.parametrize("content, message", [
    (b"a.png 3\nb\x00c.png 3\n", "list.txt:2: the line holds a NUL byte"),
    (b"a.png 3\nmissing.png 3\n", "list.txt:2: "),
    (b"a.png 12\n", "list.txt:1: label: class index 12 is out of range 0..9"),
])
def test_cli_refuses_a_bad_list_in_one_line_exit_3(digit_pngs, tmp_path, content, message):
    import shutil

    shutil.copy(next(digit_pngs.glob("*.png")), tmp_path / "a.png")
    (tmp_path / "list.txt").write_bytes(content)
    done = subprocess.run([sys.executable, "-c", "import sys; from caffe_relabel.cli.main import main; "
                           "sys.exit(main(sys.argv[1:]))", "experiment", "sweep", "-m", "digits", "--sources",
                           str(tmp_path / "list.txt"), "--targets", "0,1", "--max-iter", "2", "--out",
                           str(tmp_path / "out"), "-q"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_per_class_states_its_default_in_help():
    from caffe_relabel.cli.main import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["experiment"]
    text = sub._subparsers._group_actions[0].choices["sweep"].format_help()
    assert "--per-class" in text and "default: every image" in " ".join(text.split())
