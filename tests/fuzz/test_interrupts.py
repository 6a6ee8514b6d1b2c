"""Ctrl-C: every long command ends soon with exit 130, one line on stderr and no partial output.

Each command runs in a child process; the child announces (tests.fuzz.interrupt_child)
when it enters the call the interrupt must land in (the relabelling loop, a
scikit-learn fit, a Dask gather), and the test sends SIGINT then, never after a
fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from caffe_relabel.cli import EXIT_INTERRUPTED
from caffe_relabel.files.folder_lock import LOCK_NAME
from tests.fuzz.conftest import COUNTS
from tests.fuzz.interrupt_child import STARTED_MARK
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
LOOP = "caffe_relabel.relabel.loop:Loop._iterate"
# Generous against a loaded machine; the closing note reports the measured times (about a second).
EXIT_WITHIN = 30.0
# Inside scikit-learn's training loop, which catches KeyboardInterrupt: called once per mini-batch.
MLP_EPOCH = "sklearn.neural_network:MLPClassifier._backprop"
# Saving a figure: matplotlib's savefig, writing into the figure's temporary file.
FIGURE = "matplotlib.figure:Figure.savefig"

CASES = {
    "relabel": (LOOP, ["relabel", "{digit}", "-m", "digits", "-t", "3", "--max-iter", "100000", "--max-distortion", "none",
                       "-o", "{out}.png", "-q"]),
    "examples": (LOOP, ["experiment", "examples", "--n", "200", "--max-iter", "5000", "--out", "{out}", "-q"]),
    "sweep": (LOOP, ["experiment", "sweep", "--per-class", "5", "--out", "{out}", "-q"]),
    "synthesis": (LOOP, ["experiment", "synthesis", "--out", "{out}", "-q", "--max-iter", "100000"]),
    "svm": ("sklearn.svm:SVC.fit", ["experiment", "svm", "--sets", "500", "--n-train", "5", "--n-test", "5",
                                    "--out", "{out}", "-q"]),
    "limitations transfer": (MLP_EPOCH,
                             ["experiment", "limitations", "--n", "4", "--transfer-to", "digits-mlp", "--out", "{out}",
                              "-q"]),
    "report quick": (LOOP, ["report", "--quick", "-m", "digits", "--out", "{out}", "-q"]),
    "report quick mlp": (MLP_EPOCH,
                         ["report", "--quick", "-m", "digits", "--out", "{out}", "-q"]),
    # Inside the report's sweep (its stores open) and while it saves a figure (issue 24).
    "report quick sweep": ("caffe_relabel.experiments.sweep:store_results",
                           ["report", "--quick", "-m", "digits", "--out", "{out}", "-q"]),
    "report quick figure": (FIGURE, ["report", "--quick", "-m", "digits", "--out", "{out}", "-q"]),
    "examples figure": (FIGURE, ["experiment", "examples", "--n", "4", "--out", "{out}", "-q"]),
    "sweep dask local": ("distributed:Client.gather",
                         ["experiment", "sweep", "--dask", "local", "--shards", "2", "--per-class", "5", "--out",
                          "{out}", "-q"]),
}


def interrupted_run(marker: str, argv: list[str], env: dict) -> tuple[int, float, str]:
    """Start the child, SIGINT it once it has entered ``marker``; (exit code, seconds to exit, stderr)."""
    child = subprocess.Popen([sys.executable, "-m", "tests.fuzz.interrupt_child", marker, *argv], cwd=ROOT,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: STARTED_MARK + "\n" in lines or child.poll() is not None, 300, f"the child to enter {marker}")
        assert child.poll() is None, f"the child ended before entering {marker}: {''.join(lines)[-2000:]}"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=EXIT_WITHIN + 30)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reader.join(10)
    return child.returncode, took, "".join(lines)


def _partial_files(out: Path, journals: bool = True) -> list[str]:
    """Files that are not whole: temporaries left behind, PNGs without their end chunk, a folder's lock file
    and, with ``journals``, a store's open journal (-wal, -shm)."""
    bad = []
    ends = (".tmp", "-wal", "-shm") if journals else (".tmp",)
    for f in out.rglob("*") if out.exists() else []:
        if f.is_file() and (".part" in f.name or f.name.startswith(".") or f.name.endswith(ends)
                            or f.name == LOCK_NAME):
            bad.append(f.name)
        elif f.suffix == ".png" and not f.read_bytes().endswith(b"IEND\xaeB`\x82"):
            bad.append(f.name)
    return bad


@pytest.mark.parametrize("name", list(CASES))
def test_ctrl_c_exits_130_at_once_leaving_nothing_partial(tmp_path, name, digits_data):
    import skimage.io

    if "dask" in name:
        pytest.importorskip("distributed")
    marker, argv = CASES[name]
    digit = tmp_path / "digit.png"
    skimage.io.imsave(digit, digits_data["images"][0], check_contrast=False)
    out = tmp_path / "out"
    argv = [a.format(out=out, digit=digit) for a in argv]
    env = dict(os.environ, CAFFE_RELABEL_HOME=str(tmp_path / "home"))
    rc, took, err = interrupted_run(marker, argv, env)
    COUNTS["interrupts: SIGINT"] += 1
    print(f"{name}: exit {rc} {took:.2f} s after SIGINT")
    assert rc == EXIT_INTERRUPTED, f"{name}: exit {rc}, expected {EXIT_INTERRUPTED}:\n{err[-3000:]}"
    assert took < EXIT_WITHIN, f"{name}: {took:.1f} s from SIGINT to exit"
    assert "Traceback" not in err, err[-3000:]
    assert "Warning" not in err, err[-3000:]  # one line, not a library's warning first (scikit-learn's MLP)
    assert err.rstrip().endswith("interrupted"), err[-2000:]
    # Dask's workers are stopped by their cluster, not by Ctrl-C: a shard's WAL then holds committed
    # results the next open folds in, and must stay.
    journals = "dask" not in name
    assert not _partial_files(tmp_path, journals), _partial_files(tmp_path, journals)
