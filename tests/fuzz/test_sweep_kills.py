"""Fault injection: a sweep SIGKILLed at 20+ random moments loses and repeats nothing."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.backends import pycaffe_available

pytestmark = pytest.mark.skipif(not pycaffe_available(), reason="pycaffe is not built")

# 150 sources x 4 targets less their own class: 540 pairs, long enough to be hit many times.
SWEEP = dict(model="digits", per_class=15, targets=[0, 3, 5, 8], settings=RelabelSettings(max_distortion=0.1, batch_size=8),
             seed=0)
KILLS = int(os.environ.get("SWEEP_KILLS", "20"))


def _count(path) -> int:
    try:
        with sqlite3.connect(str(path), timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # no store yet, or no table yet
        return 0


def _rows(path) -> dict:
    from caffe_relabel.experiments.store import SweepStore

    with SweepStore(path) as db:
        rows = list(db.results())
    keys = [(r.source, r.target) for r in rows]
    assert len(keys) == len(set(keys)), "a pair was stored twice"
    return {(r.source, r.target): r for r in rows}


def test_sweep_survives_repeated_kills(tmp_path):
    from caffe_relabel.experiments.sweep import run_sweep

    reference = tmp_path / "reference.sqlite"
    run_sweep(reference, **SWEEP)
    want = _rows(reference)

    store = tmp_path / "killed.sqlite"
    code = f"from caffe_relabel import RelabelSettings; from caffe_relabel.experiments.sweep import run_sweep; run_sweep({str(store)!r}, **{SWEEP!r})"
    rng = random.Random(0)
    counts, kills = [], 0
    while kills < KILLS:
        child = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, GLOG_minloglevel="2"))
        # Anywhere from interpreter start-up to mid-batch to between commits.
        time.sleep(rng.uniform(0.2, 1.6))
        if child.poll() is not None:
            break  # finished before this kill: the sweep is complete
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        counts.append(_count(store))
        assert counts == sorted(counts), "a kill lost stored results"
    assert kills >= min(KILLS, 20) or counts[-1] == len(want)
    run_sweep(store, **SWEEP)  # finish
    got = _rows(store)
    assert got.keys() == want.keys()
    for key, a in got.items():
        b = want[key]
        assert (a.iterations, a.success, a.stop, a.final_label, a.uint8_label) == (
            b.iterations, b.success, b.stop, b.final_label, b.uint8_label), key
        assert a.distortion == pytest.approx(b.distortion, abs=1e-9), key
