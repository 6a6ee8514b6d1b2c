"""Exit codes of the command for user errors: usage 2, input 3, missing runtime 4; never a traceback."""

from __future__ import annotations

import sys

import pytest
import skimage.io

from caffe_relabel import cli


@pytest.fixture(scope="module")
def digit(tmp_path_factory, digits_data):
    p = tmp_path_factory.mktemp("img") / "digit.png"
    skimage.io.imsave(p, digits_data["images"][0], check_contrast=False)
    return str(p)


def _run(argv, capsys):
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse exits by itself on usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


@pytest.mark.parametrize("argv,code,message", [
    (["experiment", "sweep", "--shard", "x", "-q"], cli.EXIT_USAGE, "--shard: expected i/n"),
    (["experiment", "sweep", "--shard", "2/2", "-q"], cli.EXIT_USAGE, "--shard: expected 0 <= i < n"),
    (["experiment", "sweep", "--sources", "{tmp}/no/such/folder", "--per-class", "1", "-q", "--out", "{tmp}"],
     cli.EXIT_INPUT, "no/such/folder"),
    (["experiment", "summary", "{tmp}/missing.sqlite"], cli.EXIT_INPUT, "no such sweep store"),
    (["experiment", "merge", "{tmp}/out.sqlite", "{tmp}/missing.sqlite"], cli.EXIT_INPUT, "no such sweep store"),
    (["experiment", "summary", "{digit}"], cli.EXIT_INPUT, "not a sweep store"),
    (["report", "--model", "digitz", "-q", "--out", "{tmp}"], cli.EXIT_INPUT, "did you mean digits"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "--alpha", "0"], cli.EXIT_USAGE, "--alpha: expected 0 < alpha"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "--alpha", "nan"], cli.EXIT_USAGE, "--alpha: expected a finite"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "--max-distortion", "-1"], cli.EXIT_USAGE,
     "--max-distortion: expected a cap > 0, or 0/none for no cap"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "--confidence", "2"], cli.EXIT_USAGE,
     "--confidence: expected 0 <= confidence < 1"),
    (["classify", "{digit}", "-m", "digits", "--top", "0"], cli.EXIT_USAGE, "--top: expected an integer >= 1"),
    (["classify", "{digit}", "-m", "digits", "--top", "-1"], cli.EXIT_USAGE, "--top: expected an integer >= 1"),
    (["experiment", "limitations", "--shift", "-4"], cli.EXIT_USAGE, "--shift: expected an integer >= 1"),
    (["experiment", "synthesis", "--sigma", "inf"], cli.EXIT_USAGE, "--sigma: expected a finite number"),
    (["experiment", "examples", "--seed", "-1"], cli.EXIT_USAGE, "--seed: expected an integer >= 0"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "--max-iter", "x"], cli.EXIT_USAGE, "--max-iter"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "-o", "{tmp}"], cli.EXIT_INPUT, "expected an image file name"),
    (["relabel", "{digit}", "-t", "3", "-m", "digits", "-o", "{tmp}/no/dir/x.png"], cli.EXIT_INPUT, "existing folder"),
    (["classify", "{digit}", "--prototxt", "{digit}", "--weights", "{digit}", "--mean", "1"], cli.EXIT_INPUT,
     "not UTF-8 text"),
    (["classify", "{digit}", "-m", "digits", "--device", "tpu:0"], cli.EXIT_USAGE, "expected device"),
    (["classify", "{digit}", "-m", "digits", "--backend", "pycaffe", "--engine-mode", "fast"], cli.EXIT_USAGE,
     "numerics 'fast' are the engine's; backend 'pycaffe' runs only 'faithful' (for them: backend 'engine', --backend engine)"),
    (["classify", "{digit}", "-m", "digits", "--engine-mode", "turbo"], cli.EXIT_USAGE, "--engine-mode: invalid choice"),
    (["classify", "{digit}", "-m", "digits", "--engine-mode", "fast-bf16"], cli.EXIT_USAGE,
     "numerics 'fast-bf16' exist only on CUDA (bfloat16 autocast); on device 'cpu' use 'fast' (--engine-mode fast)"),
    (["experiment", "sweep", "--engine-mode", "fast-bf16", "--device", "cpu", "-q", "--out", "{tmp}"], cli.EXIT_USAGE,
     "numerics 'fast-bf16' exist only on CUDA"),
    (["experiment", "svm", "--prototxt", "x.prototxt", "-q", "--out", "{tmp}"], cli.EXIT_INPUT,
     "--prototxt needs --weights"),
])
def test_user_errors(argv, code, message, digit, tmp_path, capsys):
    argv = [a.replace("{digit}", digit).replace("{tmp}", str(tmp_path)) for a in argv]
    rc, err = _run(argv, capsys)
    assert rc == code and message in err, err


def test_gpu_on_cpu_only_pycaffe_suggests_the_engine(digit, capsys):
    from caffe_relabel.backends import pycaffe_available

    if not pycaffe_available():
        pytest.skip("pycaffe is not built")
    from caffe_relabel.backends.pycaffe import gpu_usable

    if gpu_usable(0):
        pytest.skip("this pycaffe has a GPU")
    rc, err = _run(["classify", digit, "-m", "digits", "--backend", "pycaffe", "--device", "gpu:0"], capsys)
    assert rc == cli.EXIT_UNAVAILABLE and "CPU-only build" in err and "--backend engine" in err
    assert err.count("\n") == 1


def test_missing_runtime_exits_4(digit, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "caffe", None)  # `import caffe` now fails
    rc, err = _run(["classify", digit, "-m", "digits", "--backend", "pycaffe"], capsys)
    assert rc == cli.EXIT_UNAVAILABLE and "pycaffe is not importable" in err
