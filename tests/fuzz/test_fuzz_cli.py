"""Fuzzing the command line: argv lists drawn from the real subcommands, options, values and bad files.

Whatever the arguments, `caffe-relabel` exits 0..4 (argparse's own exit
included) and never prints a Python traceback. Settings that would make a run
long (iterations, exemplars) are always drawn small.
"""

from __future__ import annotations

import contextlib
import io
import shutil

import pytest
import skimage.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffe_relabel import cli

from caffe_relabel.models import testmodels
from tests.fuzz.conftest import COUNTS, EXAMPLES

FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NUMBERS = ["0", "1", "2", "-1", "x", "1e9", "nan", "", "0.5"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits_data):
    d = tmp_path_factory.mktemp("cli_fuzz")
    skimage.io.imsave(d / "digit.png", digits_data["images"][0], check_contrast=False)
    (d / "truncated.png").write_bytes((d / "digit.png").read_bytes()[:40])
    (d / "empty.png").write_bytes(b"")
    (d / "text.prototxt").write_text("layer { name: \"x\" type: ")
    (d / "junk.caffemodel").write_bytes(b"\x08\x96\x01junk")
    (d / "junk.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    (d / "list.txt").write_text(f"{d / 'digit.png'} 3\n{d / 'missing.png'} 4\n")
    (d / "dir").mkdir()
    shutil.copy(testmodels.DIGITS_PROTOTXT, d / "digits.prototxt")
    return d


def _pick(values: list):
    """The first (valid) value half the time, any other otherwise: deep paths and early errors both."""
    return st.one_of(st.just(values[0]), st.sampled_from(values))


def _argv(draw, d) -> list:
    path = lambda *names: str(d / draw(_pick(list(names))))  # noqa: E731
    image = path("digit.png", "truncated.png", "empty.png", "missing.png", "dir", "text.prototxt")
    model = ["-m", draw(_pick(["digits", "digitz", "bvlc_googlenet", "random:digits", ""]))]
    custom = ["--prototxt", draw(_pick([str(testmodels.DIGITS_PROTOTXT), str(d / "text.prototxt"),
                                                  str(d / "missing.prototxt"), str(d / "dir")])),
              "--weights", draw(_pick([str(testmodels.DIGITS_WEIGHTS), str(d / "junk.caffemodel"),
                                                 str(d / "missing.caffemodel")])),
              "--mean", draw(_pick(["128", "1,2,3", "x", "nan"])), "--channel-order",
              draw(_pick(["GREY", "BGR"])), "--resize", draw(_pick(["0", "-1", "16"]))]
    backend = ["--backend", draw(_pick(["auto", "engine", "pycaffe", "tpu"]))]
    small = ["--max-iter", draw(_pick(["0", "1", "2", "-1", "x"]))]
    store = path("new.sqlite", "junk.sqlite", "missing.sqlite", "dir", "text.prototxt", "digit.png")
    sources = ["--sources", path("dir", "missing", "list.txt", "digit.png")]
    out = ["--out", str(d / "out")]
    command = draw(st.sampled_from(["classify", "relabel", "models", "sweep", "summary", "merge", "examples",
                                    "synthesis", "report", "garbage"]))
    if command == "classify":
        argv = ["classify", image] + draw(_pick([model, custom])) + ["--top", draw(_pick(["1"] + NUMBERS))]
    elif command == "relabel":
        argv = ["relabel", image, "-t", draw(_pick(["3", "-1", "10", "ten", "0", ""])), "-q"] + small
        argv += draw(_pick([model, custom])) + ["--alpha", draw(_pick(["1"] + NUMBERS))]
        argv += draw(_pick([[], ["-o", str(d / "out.png")], ["-o", str(d / "dir")], ["--json"]]))
    elif command == "models":
        action = draw(_pick(["list", "verify", "fetch", "convert", "delete"]))
        argv = ["models", action] + (["nonexistent_model"] if action == "convert" else [])
        if action == "fetch":  # never the real web: a closed local port, or an unknown name
            argv += draw(_pick([["digits_mlp", "--url", "http://127.0.0.1:9/x"], ["nonexistent_model"]]))
    elif command == "sweep":
        argv = ["experiment", "sweep", "--per-class", "1", "--targets", "0,1", "-q", "--store", store] + small + out
        argv += draw(_pick([[], sources])) + draw(_pick([[], backend]))
        argv += ["--shard", draw(_pick(["0/1", "1/1", "2/8", "x", "-1/2", "0/0", "1/2"]))]
    elif command == "summary":
        argv = ["experiment", "summary", store] + draw(_pick([[], ["--json"]]))
    elif command == "merge":
        argv = ["experiment", "merge", str(d / "merged.sqlite")] + [store] * draw(st.integers(0, 2))
    elif command == "examples":
        argv = ["experiment", "examples", "--n", draw(_pick(["1", "0", "-1", "x"])), "-q",
                "--classes", draw(_pick(["3,8", "3", "3,99", "a,b"]))] + small + out
        argv += draw(_pick([[], sources])) + draw(_pick([[], model]))
    elif command == "synthesis":
        argv = ["experiment", "synthesis", "--targets", draw(_pick(["0", "99", "-1", "x"])), "-q",
                "--sigma", draw(_pick(["1"] + NUMBERS))] + small + out
    elif command == "report":  # only ways that fail before any experiment runs
        argv = ["report", "-q", "--model", draw(_pick(["digitz", "", "bvlc_googlenet"]))] + out
    else:
        argv = draw(st.lists(st.sampled_from(["--json", "-q", "x", "--model", "--", "-", "--version"]), max_size=4))
    return argv


@FUZZ
@given(data=st.data())
def test_cli_exit_codes_and_no_tracebacks(files, tmp_path, monkeypatch, data):
    monkeypatch.setenv("CAFFE_RELABEL_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    argv = _argv(data.draw, files)
    COUNTS["cli: argv lists"] += 1
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse exits by itself (usage 2, --version 0)
            rc = e.code
    COUNTS[f"cli: exit {rc}"] += 1
    assert rc in (0, 1, 2, 3, 4), (argv, rc, err.getvalue()[-2000:])
    assert "Traceback" not in err.getvalue(), (argv, err.getvalue()[-2000:])
