"""The all-pairs sweep and its store: kill-safe, sharded, mergeable."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.experiments.sources import Source
from caffe_relabel.experiments.store import StoreIdentity, StoredResult, StoreMismatchError, SweepStore, merge_stores
from caffe_relabel.experiments.sweep import parse_shard, plan_pairs, run_sweep, shard_of, summarize
from tests.experiments.conftest import SWEEP
from tests.waiting import wait_for

IDENTITY = StoreIdentity("digits", "pycaffe", RelabelSettings(max_distortion=0.1))


def _rows(path) -> dict:
    with SweepStore(path) as db:
        rows = list(db.results())
    keys = [(r.source, r.target) for r in rows]
    assert len(keys) == len(set(keys))
    return {(r.source, r.target): r for r in rows}


def _assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, a in got.items():
        b = want[key]
        assert (a.iterations, a.success, a.stop, a.final_label, a.uint8_label) == (
            b.iterations, b.success, b.stop, b.final_label, b.uint8_label), key
        assert a.distortion == pytest.approx(b.distortion, abs=1e-9)


def _stored(path) -> int:
    try:
        with sqlite3.connect(str(path), timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_killed_sweep_resumes_losing_and_repeating_nothing(tmp_path, reference_sweep):
    store = tmp_path / "sweep.sqlite"
    code = f"from caffe_relabel import RelabelSettings; from caffe_relabel.experiments.sweep import run_sweep; run_sweep({str(store)!r}, **{SWEEP!r})"
    child = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, GLOG_minloglevel="2"))
    try:
        wait_for(lambda: _stored(store) >= 6 or child.poll() is not None, what="6 stored rows")
        assert child.poll() is None, "the sweep finished before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    killed_at = _stored(store)
    assert 6 <= killed_at < len(reference_sweep)
    ticks = []
    result = run_sweep(store, progress=lambda done, total: ticks.append((done, total)), **SWEEP)
    assert result.already_stored == killed_at and result.ran == len(reference_sweep) - killed_at
    assert ticks[0] == (killed_at, len(reference_sweep)) and ticks[-1] == (len(reference_sweep),) * 2
    _assert_same(_rows(store), reference_sweep)
    assert run_sweep(store, **SWEEP).ran == 0  # a finished sweep repeats nothing


def test_shards_partition_the_pairs():
    sources = [Source(f"img{i}", "unused", i % 10) for i in range(40)]
    pairs = {(s.id, t) for s, t in plan_pairs(sources, 10)}
    assert len(pairs) == 40 * 9
    for n in (1, 2, 3, 7):
        parts = [{p for p in pairs if shard_of(*p, n) == i} for i in range(n)]
        assert set().union(*parts) == pairs and sum(map(len, parts)) == len(pairs)
    # Stable: the shard of a pair does not depend on which other pairs are planned.
    assert shard_of("img3", 5, 7) == shard_of("img3", 5, 7) == int.from_bytes(
        __import__("hashlib").sha1(b"img3\t5").digest()[:8], "big") % 7


def test_target_sampling_is_seeded_and_excludes_the_source_class():
    sources = [Source(f"img{i}", "unused", i % 10) for i in range(10)]
    a = plan_pairs(sources, 10, targets_per_source=3, seed=1)
    assert a == plan_pairs(sources, 10, targets_per_source=3, seed=1)
    assert len(a) == 30 and all(t != s.label for s, t in a)


@pytest.mark.parametrize("text", ["1", "2/2", "-1/3", "a/b", "0/0"])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def test_merged_shards_equal_a_single_run(tmp_path, reference_sweep):
    parts = [tmp_path / f"s{i}.sqlite" for i in range(3)]
    results = [run_sweep(p, shard=(i, 3), **SWEEP) for i, p in enumerate(parts)]
    assert sum(r.planned for r in results) == len(reference_sweep)
    merged = merge_stores(tmp_path / "merged.sqlite", parts)
    assert merged.total == merged.added == len(reference_sweep)
    _assert_same(_rows(tmp_path / "merged.sqlite"), reference_sweep)
    summary = summarize(tmp_path / "merged.sqlite")
    assert summary.pairs == len(reference_sweep)
    assert summary.successes == sum(r.success for r in reference_sweep.values())


def _row(source="a", target=1) -> StoredResult:
    return StoredResult(source, target, 0, True, "target", 3, 0.01, 0, 0.9, target, 0.6, 0.6,
                        [[target, 0.6]], target, True, 0.011, "digits", "0.1.0")


def test_merge_refuses_mismatched_settings(tmp_path):
    with SweepStore(tmp_path / "a.sqlite", IDENTITY) as db:
        db.add(_row())
    with SweepStore(tmp_path / "b.sqlite", replace(IDENTITY, settings=IDENTITY.settings.replace(max_distortion=0.01))) as db:
        db.add(_row("b"))
    with pytest.raises(StoreMismatchError, match="max_distortion=0.01, expected max_distortion=0.1"):
        merge_stores(tmp_path / "m.sqlite", [tmp_path / "a.sqlite", tmp_path / "b.sqlite"])
    with SweepStore(tmp_path / "c.sqlite", replace(IDENTITY, model="bvlc_googlenet")):
        pass
    with pytest.raises(StoreMismatchError, match="model="):
        merge_stores(tmp_path / "c.sqlite", [tmp_path / "a.sqlite"])


def test_a_store_refuses_a_run_with_other_settings(tmp_path, digits_model):
    store = tmp_path / "s.sqlite"
    with SweepStore(store, replace(IDENTITY, settings=IDENTITY.settings.replace(alpha=10.0))):
        pass
    with pytest.raises(StoreMismatchError, match="alpha"):
        run_sweep(store, digits_model, per_class=1, targets=[0])


def test_a_result_is_stored_once(tmp_path):
    with SweepStore(tmp_path / "a.sqlite", IDENTITY) as db:
        db.add(_row())
        db.add(replace(_row(), iterations=99))
        assert db.count() == 1 and next(db.results()).iterations == 3


def test_missing_store_is_an_error(tmp_path):
    from caffe_relabel.errors import CaffeRelabelError

    with pytest.raises(CaffeRelabelError, match="no such sweep store"):
        summarize(tmp_path / "none.sqlite")


def _small_store(path):
    from caffe_relabel.experiments.store import StoredResult, StoreIdentity, SweepStore
    from caffe_relabel.relabel import StopReason
    from caffe_relabel.settings import RelabelSettings

    identity = StoreIdentity("digits", "engine", RelabelSettings(max_iter=100))
    with SweepStore(path, identity) as db:
        for i in range(3):
            db.add(StoredResult(f"s{i}", i, 3, True, StopReason.TARGET, 5, 0.001, 3, 0.9, i, 0.6, 0.6, [[i, 0.6]], i, True,
                                0.001, "digits", "0.1.0"))
    return identity


def test_a_store_on_read_only_media_can_be_read(tmp_path, monkeypatch):
    import os

    from caffe_relabel.experiments import store as store_mod

    path = tmp_path / "s.sqlite"
    _small_store(path)
    before = path.read_bytes()
    # Root ignores permissions; a read-only mount is what os.access reports as not writable.
    monkeypatch.setattr(store_mod.os, "access", lambda p, mode: mode != os.W_OK)
    with store_mod.SweepStore(path) as db:
        assert db.read_only and db.count() == 3
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.sqlite"]  # no -wal or -shm made


def test_a_bad_row_names_the_file_and_a_resume_leaves_it_unchanged(tmp_path):
    from caffe_relabel.errors import CaffeRelabelError
    from caffe_relabel.experiments.store import SweepStore

    path = tmp_path / "s.sqlite"
    identity = _small_store(path)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE results SET distortion = 'lots' WHERE source = 's1'")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(CaffeRelabelError, match=r"s.sqlite: .*column distortion holds 'lots', expected a finite number"):
        with SweepStore(path) as s:
            list(s.results())
    with pytest.raises(CaffeRelabelError, match=r"s.sqlite: .*left as it is"):
        SweepStore(path, identity)
    assert path.read_bytes() == before
