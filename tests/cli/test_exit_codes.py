"""Each exit code, from both entry points, in real processes: `caffe-relabel` and `python -m caffe_relabel.experiments`.

Both map errors through caffe_relabel.cli.exits, so one table of cases runs
through each. A prelude run before the command stands in for a missing
runtime (a module made unimportable) or Ctrl-C (KeyboardInterrupt raised
where the command does its work).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from caffe_relabel import RelabelSettings, cli
from caffe_relabel.experiments.store import StoreIdentity, SweepStore

REPO = Path(__file__).resolve().parents[2]
CONSOLE = "caffe-relabel"
MODULE = "python -m caffe_relabel.experiments"
# What the console script runs: the pyproject entry point, checked below.
STARTERS = {
    CONSOLE: "from caffe_relabel.cli.main import main; sys.exit(main(sys.argv[1:]))",
    MODULE: "import runpy; runpy.run_module('caffe_relabel.experiments', run_name='__main__')",
}
INTERRUPT = ("import caffe_relabel.experiments.sweep as s\n"
             "def stop(*a, **k): raise KeyboardInterrupt\n"
             "s.summarize = stop\n")
NO_DASK = "sys.modules['distributed'] = None\n"


def _run(entry: str, argv: list[str], prelude: str = "") -> subprocess.CompletedProcess:
    code = f"import sys\n{prelude}sys.argv[0] = {entry!r}\n{STARTERS[entry]}"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("store") / "s.sqlite"
    with SweepStore(path, StoreIdentity("digits", "engine", RelabelSettings())):
        pass
    return str(path)


@pytest.mark.parametrize("entry", [CONSOLE, MODULE])
@pytest.mark.parametrize("argv, prelude, code, message", [
    (["summary", "{store}", "--json"], "", cli.EXIT_OK, '"pairs": 0'),
    (["svm", "--sets", "0"], "", cli.EXIT_USAGE, "--sets: expected an integer >= 1, got 0"),
    (["sweep", "--max-distortion", "-1"], "", cli.EXIT_USAGE, "--max-distortion: expected a cap > 0"),
    (["sweep", "--alpha", "inf"], "", cli.EXIT_USAGE, "--alpha: expected a finite number"),
    (["sweep", "--alpha", "1e308", "--out", "{tmp}"], "", cli.EXIT_USAGE, "--alpha: expected 0 < alpha <= 65025"),
    (["sweep", "--batch-size", "-3"], "", cli.EXIT_USAGE, "--batch-size: expected an integer >= 1"),
    (["summary", "{tmp}/missing.sqlite"], "", cli.EXIT_INPUT, "no such sweep store"),
    (["sweep", "--dask", "local", "--out", "{tmp}"], NO_DASK, cli.EXIT_UNAVAILABLE, "needs the dask extra"),
    (["summary", "{store}"], INTERRUPT, cli.EXIT_INTERRUPTED, "interrupted"),
])
def test_exit_codes(entry, argv, prelude, code, message, store, tmp_path) -> None:
    argv = ["experiment"] + [a.replace("{store}", store).replace("{tmp}", str(tmp_path)) for a in argv]
    done = _run(entry, argv, prelude)
    assert done.returncode == code, done.stderr
    assert message in (done.stdout if code == cli.EXIT_OK else done.stderr), done.stderr
    assert "Traceback" not in done.stderr


def test_relabelling_failed_exits_1(tmp_path, digits_data) -> None:
    import skimage.io

    image = tmp_path / "digit.png"
    skimage.io.imsave(image, digits_data["images"][0], check_contrast=False)
    label = int(digits_data["labels"][0])
    # One step cannot relabel a digit: the relabelling fails, cleanly.
    done = _run(CONSOLE, ["relabel", str(image), "-t", str((label + 1) % 10), "-m", "digits", "--max-iter", "1",
                          "--backend", "engine", "-q"])
    assert done.returncode == cli.EXIT_FAILED, done.stderr
    assert "stop: max_iter" in done.stdout and "Traceback" not in done.stderr


def test_console_script_is_the_entry_point_tested() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"caffe-relabel": "caffe_relabel.cli.main:main"}
