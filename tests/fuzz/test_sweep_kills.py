"""Fault injection: a sweep SIGKILLed again and again loses and repeats nothing.

Each kill lands after the store has grown by a random number of rows since
the child started (polled, never a fixed sleep, so the kills hit stored work
on a fast machine and a slow one alike), while the sweep still has at least
MARGIN pairs to do, so every kill interrupts a sweep with more to do. The
child commits in groups: the store only ever holds whole groups, and the
resume recomputes exactly what the kills lost.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.backends import pycaffe_available
from tests.experiments.conftest import assert_same_results
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(not pycaffe_available(), reason="pycaffe is not built")

# 150 sources x 4 targets less their own class: 540 pairs, long enough to be hit many times.
SWEEP = dict(model="digits", per_class=15, targets=[0, 3, 5, 8], settings=RelabelSettings(max_distortion=0.1, batch_size=8),
             seed=0)
KILLS = int(os.environ.get("SWEEP_KILLS", "20"))
# The child commits every GROUP results (no time trigger), so a kill loses exactly the open group.
GROUP = 4
# Rows a kill always leaves to do: 3 batches and a group, far more than the child can store between
# the poll that sees its target and the kill (one COUNT query), on any machine.
MARGIN = 3 * SWEEP["settings"].batch_size + GROUP
# Generous: a child imports Caffe (about a second) and then stores at most ~40 rows.
TIMEOUT = 300


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
    total = len(want)

    store = tmp_path / "killed.sqlite"
    code = f"from caffe_relabel import RelabelSettings; from caffe_relabel.experiments.sweep import run_sweep; run_sweep({str(store)!r}, commit_rows={GROUP}, commit_seconds=float('inf'), **{SWEEP!r})"
    rng = random.Random(0)
    kills = 0
    before = 0
    while kills < KILLS and total - MARGIN - before >= 1:
        target = before + rng.randint(1, min(40, total - MARGIN - before))
        child = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, GLOG_minloglevel="2"))
        try:
            wait_for(lambda: _count(store) >= target or child.poll() is not None, TIMEOUT, f"{target} stored rows")
            finished = child.poll() is not None
            child.send_signal(signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        after = _count(store)
        if finished:
            # The child ended before its kill: only a complete sweep may do that.
            assert child.returncode == 0 and after == total, f"the sweep exited {child.returncode} at {after} rows"
            before = after
            break
        assert child.returncode == -signal.SIGKILL, "the kill did not interrupt the sweep"
        assert target <= after < total, f"kill {kills}: {after} rows of {total}, wanted {target}.. (more to do)"
        assert after >= before, "a kill lost stored results"
        assert after % GROUP == 0, f"kill {kills}: {after} rows, a commit group stored in part"
        kills += 1
        before = after
    # The number of kills follows from the seeded targets alone, not from the machine's speed.
    assert kills == KILLS or total - MARGIN - before < 1
    resumed = run_sweep(store, **SWEEP)  # finish
    assert resumed.already_stored == before and resumed.ran == total - before
    assert_same_results(_rows(store), want)
