"""The all-pairs sweep and its store: kill-safe, sharded, mergeable."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import tracemalloc
from dataclasses import replace

import numpy as np

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.backends.base import Classifier, LossGradient
from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.experiments.sources import Source
from caffe_relabel.experiments.store import StoreIdentity, StoredResult, StoreMismatchError, SweepStore, merge_stores
from caffe_relabel.experiments.sweep import (count_planned, iter_pairs, pairs_to_do, parse_shard, plan_sources,
                                             run_sweep, shard_of, summarize)
from caffe_relabel.models.model import Model
from caffe_relabel.images.preprocess import InputSpec
from tests.experiments.conftest import SWEEP, assert_same_results
from tests.waiting import wait_for

IDENTITY = StoreIdentity("digits", "pycaffe", RelabelSettings(max_distortion=0.1))


def _rows(path) -> dict:
    with SweepStore(path) as db:
        rows = list(db.results())
    keys = [(r.source, r.target) for r in rows]
    assert len(keys) == len(set(keys))
    return {(r.source, r.target): r for r in rows}


def _stored(path) -> int:
    try:
        with sqlite3.connect(str(path), timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_killed_sweep_resumes_losing_and_repeating_nothing(tmp_path, reference_sweep):
    store = tmp_path / "sweep.sqlite"
    # Groups of 2 rows, no time trigger: every commit the parent can see is whole groups.
    code = (f"from caffe_relabel import RelabelSettings; from caffe_relabel.experiments.sweep import run_sweep; "
            f"run_sweep({str(store)!r}, commit_rows=2, commit_seconds=float('inf'), **{SWEEP!r})")
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
    assert killed_at % 2 == 0, "a commit group was stored in part"
    ticks = []
    result = run_sweep(store, progress=lambda done, total: ticks.append((done, total)), **SWEEP)
    assert result.already_stored == killed_at and result.ran == len(reference_sweep) - killed_at
    assert ticks[0] == (killed_at, len(reference_sweep)) and ticks[-1] == (len(reference_sweep),) * 2
    assert_same_results(_rows(store), reference_sweep)
    assert run_sweep(store, **SWEEP).ran == 0  # a finished sweep repeats nothing


def test_shards_partition_the_pairs():
    sources = [Source(f"img{i}", "unused", i % 10) for i in range(40)]
    pairs = {(s.id, t) for s, t in iter_pairs(plan_sources(sources, 10))}
    assert len(pairs) == 40 * 9
    for n in (1, 2, 3, 7):
        parts = [{p for p in pairs if shard_of(*p, n) == i} for i in range(n)]
        assert set().union(*parts) == pairs and sum(map(len, parts)) == len(pairs)
    # Stable: the shard of a pair does not depend on which other pairs are planned.
    assert shard_of("img3", 5, 7) == shard_of("img3", 5, 7) == int.from_bytes(
        __import__("hashlib").sha1(b"img3\t5").digest()[:8], "big") % 7


def test_target_sampling_is_seeded_and_excludes_the_source_class():
    sources = [Source(f"img{i}", "unused", i % 10) for i in range(10)]
    a = list(iter_pairs(plan_sources(sources, 10, targets_per_source=3, seed=1)))
    assert a == list(iter_pairs(plan_sources(sources, 10, targets_per_source=3, seed=1)))
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
    assert_same_results(_rows(tmp_path / "merged.sqlite"), reference_sweep)
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
    from caffe_relabel.relabel.relabeller import StopReason
    from caffe_relabel.relabel.settings import RelabelSettings

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


# -- at the paper's scale: a lazy plan, resumed per source in SQL ----------------------------------

class _Instant(Classifier):
    """Answers at once, the target winning on the first look; ``stop_after`` calls, then Ctrl-C."""

    backend_name = "stub"

    def __init__(self, classes: int, stop_after: "int | None" = None) -> None:
        self._input_shape, self._num_classes, self.stop_after, self.calls = (1, 2, 2), classes, stop_after, 0

    blob_names = property(lambda self: [])

    def _probs(self, n, winners):
        probs = np.full((n, self.num_classes), 0.1 / self.num_classes, dtype=np.float32)
        probs[np.arange(n), winners] = 0.9
        return probs

    def forward(self, x):
        return self._probs(len(x), np.zeros(len(x), dtype=np.int64))

    def loss_and_gradient(self, x, targets):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        probs = self._probs(len(x), np.asarray(targets))
        return LossGradient(probs, np.zeros(len(x)), np.ones_like(x))

    def blob(self, x, name):
        raise CaffeRelabelError(f"no blob {name!r}")


_SPEC = InputSpec(size=(2, 2), channel_order="GREY", mean=(0.0,), resize=None)


def _instant_model(classes: int, stop_after=None) -> Model:
    return Model(_Instant(classes, stop_after), _SPEC, "stub")


def _sources(n: int, classes: int) -> list:
    image = np.full((2, 2, 1), 0.5)
    return [Source(f"s{i:05d}", image, i % classes) for i in range(n)]


def test_the_plan_is_lazy_at_the_papers_scale():
    sources = _sources(10_000, 1000)  # 9,990,000 pairs planned
    tracemalloc.start()
    try:
        first = list(itertools.islice(iter_pairs(plan_sources(sources, 1000)), 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(s.id, t) for s, t in first[:3]] == [("s00000", 1), ("s00000", 2), ("s00000", 3)] and len(first) == 1000
    # A plan held whole would take about 1 GB; the lazy one holds one source's targets (kilobytes).
    assert peak < 1_000_000, f"planning 1000 pairs of 10M traced {peak} bytes"


def test_a_sources_targets_do_not_depend_on_the_other_sources():
    sources = _sources(30, 10)
    alone = dict((s.id, ts) for s, ts in plan_sources(sources[7:8], 10, targets_per_source=3, seed=4))
    among = dict((s.id, ts) for s, ts in plan_sources(sources, 10, targets_per_source=3, seed=4))
    assert alone["s00007"] == among["s00007"]
    assert among != dict((s.id, ts) for s, ts in plan_sources(sources, 10, targets_per_source=3, seed=5))
    # Sharding after sampling: a shard's pairs are exactly the sampled pairs whose hash lands there.
    sampled = {(s.id, t) for s, t in iter_pairs(plan_sources(sources, 10, targets_per_source=3, seed=4))}
    for i in range(3):
        part = {(s.id, t) for s, t in iter_pairs(plan_sources(sources, 10, targets_per_source=3, seed=4, shard=(i, 3)))}
        assert part == {p for p in sampled if shard_of(*p, 3) == i}


def test_resume_asks_the_store_once_per_source_through_its_index(tmp_path):
    sources = _sources(6, 4)
    stored = [("s00001", 0), ("s00001", 2), ("s00004", 3), ("elsewhere", 1)]
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:
        db.add_many(_row(src, t) for src, t in stored)
        statements = []
        db._db.set_trace_callback(statements.append)
        assert count_planned(db, plan_sources(sources, 4)) == (18, 3)
        todo = {(s.id, t) for s, t in pairs_to_do(db, plan_sources(sources, 4))}
        db._db.set_trace_callback(None)
        plan = [row[3] for row in db._db.execute("EXPLAIN QUERY PLAN SELECT target FROM results WHERE source = ?", ("x",))]
    assert todo == {(s.id, t) for s, t in iter_pairs(plan_sources(sources, 4))} - set(stored)
    lookups = [q for q in statements if q.startswith("SELECT target FROM results WHERE source")]
    emptiness = [q for q in statements if q == "SELECT 1 FROM results LIMIT 1"]
    assert len(lookups) == 2 * len(sources) and len(emptiness) == 1 and len(statements) == len(lookups) + 1
    assert any("USING COVERING INDEX" in p for p in plan), plan


def test_a_batch_the_backend_would_refuse_is_refused_before_the_store_is_made(tmp_path, monkeypatch):
    from caffe_relabel.errors import NetTooLargeError

    # The digits net takes about 75 kB a sample (data and gradients): a batch of 100 is over 2 MB, of 9 under.
    monkeypatch.setenv("CAFFE_RELABEL_MAX_NET_BYTES", "2000000")
    store = tmp_path / "s.sqlite"
    with pytest.raises(NetTooLargeError, match="at a batch of 100"):
        run_sweep(store, "digits", targets=[0, 1], settings=RelabelSettings(batch_size=100, max_iter=1))
    assert not store.exists()
    # Only as large a batch as the plan fills is checked: 9 pairs never make a batch of 100.
    result = run_sweep(store, "digits", per_class=1, targets=[0], settings=RelabelSettings(batch_size=100, max_iter=1))
    assert result.ran == 9


def test_a_new_store_is_counted_without_a_lookup_per_source(tmp_path):
    # A million-line source list must start work within seconds: an empty store needs no lookups.
    sources = _sources(6, 4)
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:
        statements = []
        db._db.set_trace_callback(statements.append)
        assert count_planned(db, plan_sources(sources, 4)) == (18, 0)
        db._db.set_trace_callback(None)
    assert statements == ["SELECT 1 FROM results LIMIT 1"]


def test_a_resumed_sweep_runs_only_what_is_missing(tmp_path):
    store, sources = tmp_path / "s.sqlite", _sources(12, 5)
    first = run_sweep(store, _instant_model(5), sources, settings=RelabelSettings(batch_size=3), commit_rows=7)
    assert (first.planned, first.already_stored, first.ran) == (48, 0, 48) and first.summary.successes == 48
    db = sqlite3.connect(store)
    with db:
        db.execute("DELETE FROM results WHERE source IN ('s00002', 's00009') OR target = 4")
    db.close()
    missing = 48 - _stored(store)
    again = run_sweep(store, _instant_model(5), sources, settings=RelabelSettings(batch_size=3), commit_rows=7)
    assert (again.already_stored, again.ran) == (48 - missing, missing) and _stored(store) == 48


def test_an_interrupted_sweep_keeps_the_results_it_finished(tmp_path):
    # Ctrl-C mid-batch: the open group is committed on the way out, not lost.
    store = tmp_path / "s.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(store, _instant_model(5, stop_after=4), _sources(12, 5), settings=RelabelSettings(batch_size=3),
                  commit_rows=1000, commit_seconds=float("inf"))
    # Each call finishes its whole batch of 3 (the target wins at once); 4 calls ran.
    assert _stored(store) == 12


def test_a_full_disk_is_an_output_error_not_a_damaged_store(tmp_path):
    # A file-size limit stands in for a full disk: SQLite's write fails (EFBIG, as ENOSPC would)
    # and the store must say it cannot write, not that the file is damaged.
    from tests.limited import run_limited

    path = tmp_path / "s.sqlite"
    done = run_limited(f"""
        import resource, signal
        from caffe_relabel.errors import OutputError
        from caffe_relabel.experiments.store import StoredResult, SweepStore
        from caffe_relabel.relabel.relabeller import StopReason
        from tests.experiments.test_sweep import _small_store
        identity = _small_store({str(path)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            with SweepStore({str(path)!r}, identity) as db:
                for i in range(100_000):
                    db.add(StoredResult(f"t{{i}}", 1, 3, True, StopReason.TARGET, 5, 0.001, 3, 0.9, 1, 0.6, 0.6,
                                        [[1, 0.6]] * 5, 1, True, 0.001, "digits", "0.1.0"))
        except OutputError as e:
            print("OUTPUT", e)
    """, memory_bytes=2 * 2**30, timeout=120)
    assert "OUTPUT" in done.stdout and "cannot write the sweep store" in done.stdout, done.stdout + done.stderr
    assert "damaged" not in done.stdout
