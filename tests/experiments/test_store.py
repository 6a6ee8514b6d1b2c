"""The sweep store's commit groups and its summary counted in SQL."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3

import numpy as np
import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.errors import ArgumentError, CaffeRelabelError
from caffe_relabel.experiments import store as store_mod
from caffe_relabel.experiments.store import StoredResult, StoreIdentity, SweepStore
from caffe_relabel.experiments.sweep import summarize

IDENTITY = StoreIdentity("digits", "engine", RelabelSettings(max_iter=100))


def _row(i: int) -> StoredResult:
    return StoredResult(f"s{i // 7:03d}", i % 7, 3, i % 3 != 0, "target", i % 11, 0.001 * (i % 13) + 1e-4, 3, 0.9, i % 7,
                        0.5, 0.5, [[i % 7, 0.5]], i % 7, i % 2 == 0, 0.001, "digits", "0.1.0")


def _committed(path) -> int:
    # Another connection sees only committed transactions.
    with sqlite3.connect(str(path)) as db:
        return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def test_a_group_is_committed_whole_when_it_fills(tmp_path):
    path = tmp_path / "s.sqlite"
    with SweepStore(path, IDENTITY) as db, db.grouped(rows=4, seconds=float("inf")) as writer:
        seen = []
        for i in range(10):
            writer.add(_row(i))
            seen.append(_committed(path))
        assert seen == [0, 0, 0, 4, 4, 4, 4, 8, 8, 8]
    assert _committed(path) == 10 and writer.added == 10  # the open group, committed on the way out


def test_a_group_is_committed_when_its_time_is_up(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(store_mod.time, "monotonic", lambda: clock[0])
    path = tmp_path / "s.sqlite"
    with SweepStore(path, IDENTITY) as db, db.grouped(rows=1000, seconds=2.0) as writer:
        writer.add(_row(0))
        clock[0] += 1.9
        writer.add(_row(1))
        assert _committed(path) == 0
        clock[0] += 0.2  # 2.1 s after the group's first result
        writer.add(_row(2))
        assert _committed(path) == 3
        clock[0] += 5.0  # the clock runs from a group's first result, not from the last commit
        writer.add(_row(3))
        assert _committed(path) == 3


def test_an_exception_commits_the_open_group(tmp_path):
    path = tmp_path / "s.sqlite"
    with pytest.raises(KeyboardInterrupt):
        with SweepStore(path, IDENTITY) as db, db.grouped(rows=100) as writer:
            writer.add(_row(0))
            writer.add(_row(1))
            raise KeyboardInterrupt
    assert _committed(path) == 2


@pytest.mark.parametrize("rows, seconds", [(0, 1.0), (True, 1.0), (2.5, 1.0), (1, 0), (1, -1.0), (1, float("nan"))])
def test_bad_commit_groups_are_refused(tmp_path, rows, seconds):
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:
        with pytest.raises(ArgumentError, match="commit"):
            db.grouped(rows, seconds)


def test_add_many_counts_only_new_rows(tmp_path):
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:
        assert db.add_many(_row(i) for i in range(5)) == 5
        assert db.add_many(_row(i) for i in range(3, 8)) == 3


def test_the_summary_counted_in_sql_matches_the_rows(tmp_path):
    path = tmp_path / "s.sqlite"
    rows = [_row(i) for i in range(200)]
    with SweepStore(path, IDENTITY) as db:
        db.add_many(rows)
    s = summarize(path)
    ok = [r for r in rows if r.success]
    assert (s.pairs, s.successes) == (200, len(ok))
    assert s.uint8_success_rate == sum(r.success and r.uint8_success for r in rows) / 200
    d = np.array([r.distortion for r in ok])
    # SQLite and numpy add in different orders: a few ulps apart on any CPU.
    assert (s.distortion.n, s.distortion.min, s.distortion.max) == (len(ok), d.min(), d.max())
    assert s.distortion.mean == pytest.approx(d.mean(), rel=1e-12) and s.distortion.std == pytest.approx(d.std(), rel=1e-9)
    assert s.iterations.mean == pytest.approx(np.mean([r.iterations for r in ok]), rel=1e-12)
    rates = {t: np.mean([r.success for r in rows if r.target == t]) for t in range(7)}
    want = sorted(((t, float(rates[t]), sum(r.target == t for r in rows)) for t in rates), key=lambda x: (x[1], x[0]))[:5]
    assert s.hardest_targets == want


def test_an_empty_store_summarizes_to_nan(tmp_path):
    with SweepStore(tmp_path / "s.sqlite", IDENTITY):
        pass
    s = summarize(tmp_path / "s.sqlite")
    assert s.pairs == 0 and np.isnan(s.success_rate) and s.distortion.n == 0 and np.isnan(s.distortion.mean)


@pytest.mark.parametrize("column, value", [("distortion", "'lots'"), ("distortion", "9e999"), ("success", "2"),
                                           ("iterations", "1.5"), ("target", "'x'")])
def test_a_summary_refuses_a_bad_value_it_would_add_up(tmp_path, column, value):
    path = tmp_path / "s.sqlite"
    with SweepStore(path, IDENTITY) as db:
        db.add_many(_row(i) for i in range(20))
    db = sqlite3.connect(path)
    with db:
        db.execute(f"UPDATE results SET {column} = {value} WHERE source = 's001' AND target = 3")
    db.close()
    with pytest.raises(CaffeRelabelError, match=rf"s.sqlite: .*'s001'.*column {column} holds"):
        summarize(path)


def test_identity_model_files_round_trip_and_are_compared_when_both_have_them():
    settings = RelabelSettings(max_iter=10)
    a = StoreIdentity("net", "engine", settings, (("deploy.prototxt", "1" * 40), ("w.caffemodel", "2" * 40)))
    assert StoreIdentity.from_json(a.to_json()) == a
    legacy = StoreIdentity("net", "engine", settings)
    assert "files" not in legacy.to_json()  # a store without files reads as it was written
    store_mod.check_same(legacy, a, "old.sqlite")  # unknown files: not a mismatch
    store_mod.check_same(a, a, "same.sqlite")
    b = StoreIdentity("net", "engine", settings, (("deploy.prototxt", "1" * 40), ("w.caffemodel", "3" * 40)))
    with pytest.raises(store_mod.StoreMismatchError,
                       match=r"^s.sqlite: made with model files deploy.prototxt \(sha1 111111111111\), w.caffemodel "
                             r"\(sha1 222222222222\), expected .*w.caffemodel \(sha1 333333333333\)"):
        store_mod.check_same(a, b, "s.sqlite")


def test_a_resume_with_other_preprocessing_is_refused_naming_the_field(tmp_path):
    from caffe_relabel.experiments.store_identity import input_identity
    from caffe_relabel.images.preprocess import InputSpec

    spec = InputSpec(size=(224, 224), mean=(127.0, 127.0, 127.0), interpolation=3)
    made = dataclasses.replace(IDENTITY, input=input_identity(spec))
    path = tmp_path / "s.sqlite"
    with SweepStore(path, made) as db:
        db.add_many(_row(i) for i in range(3))
    with SweepStore(path, made) as db:  # the same preprocessing resumes, as read back from the JSON
        assert db.identity == made and db.count() == 3
    other = dataclasses.replace(IDENTITY, input=input_identity(dataclasses.replace(spec, resample="pillow")))
    with pytest.raises(store_mod.StoreMismatchError,
                       match=r"s.sqlite: made with input resample='skimage', expected resample='pillow'; "
                             r"sweep this preprocessing into a new --store"):
        SweepStore(path, other)
    image = input_identity(dataclasses.replace(spec, mean=np.full((3, 256, 256), 127.0)))
    assert image["mean"] == "sha1 " + hashlib.sha1(np.full((3, 256, 256), 127.0).tobytes()).hexdigest()
    with pytest.raises(store_mod.StoreMismatchError, match=r"made with input mean=\[127.0, 127.0, 127.0\], "
                                                          r"expected mean='sha1 [0-9a-f]{40}'"):
        store_mod.check_same(made, dataclasses.replace(IDENTITY, input=image), "s.sqlite")


def test_a_store_from_before_the_input_was_recorded_loads_and_resumes(tmp_path):
    from caffe_relabel.experiments.store_identity import input_identity
    from caffe_relabel.images.preprocess import InputSpec

    old = json.loads(IDENTITY.to_json())
    assert "input" not in old  # as stores were written before the field
    assert StoreIdentity.from_json(json.dumps(old)) == IDENTITY
    path = tmp_path / "old.sqlite"
    with SweepStore(path, IDENTITY) as db:
        db.add_many(_row(i) for i in range(3))
    now = dataclasses.replace(IDENTITY, input=input_identity(InputSpec(size=(16, 16), channel_order="GREY",
                                                                        mean=(128.0,), resize=None)))
    with SweepStore(path, now) as db:  # unknown preprocessing: not a mismatch
        assert db.identity == IDENTITY and db.count() == 3


def test_a_table_named_by_a_blob_is_a_damaged_store(tmp_path):
    # Found by the reliability suite: a mutated store whose schema names a table with bytes.
    path = tmp_path / "blob.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.execute("CREATE TABLE u (x)")
    db.commit()
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET name = CAST('t' AS BLOB) WHERE name = 't'")
    db.commit()
    db.close()
    with pytest.raises(CaffeRelabelError, match=r"tables \['u', b't'\], expected meta and results"):
        summarize(path)
