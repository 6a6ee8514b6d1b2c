"""One row schema (store_schema.COLUMNS): the table, the INSERT, the SELECT and the record all follow it."""

from __future__ import annotations

import sqlite3
from dataclasses import fields

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.experiments import store_schema
from caffe_relabel.experiments.store import StoredResult, StoreIdentity, SweepStore
from caffe_relabel.experiments.sweep import summarize

IDENTITY = StoreIdentity("digits", "engine", RelabelSettings(max_iter=100))

# The table as schema 2 stores were made before the schema was derived: they must keep working.
SCHEMA_2_DDL = """CREATE TABLE results (
    source TEXT NOT NULL, target INTEGER NOT NULL, source_label INTEGER NOT NULL, success INTEGER NOT NULL,
    stop TEXT NOT NULL, iterations INTEGER NOT NULL, distortion REAL NOT NULL, original_label INTEGER NOT NULL,
    original_prob REAL NOT NULL, final_label INTEGER NOT NULL, final_prob REAL NOT NULL, target_prob REAL NOT NULL,
    top5 TEXT NOT NULL, uint8_label INTEGER NOT NULL, uint8_success INTEGER NOT NULL, uint8_distortion REAL NOT NULL,
    model TEXT NOT NULL, version TEXT NOT NULL, UNIQUE (source, target))"""


def _row(i: int) -> StoredResult:
    return StoredResult(f"s{i}", i, 3, i % 2 == 0, "target", 5 + i, 0.001 * (i + 1), 3, 0.9, i, 0.6, 0.6,
                        [[i, 0.6], [3, 0.25]], i, True, 0.002, "digits", "0.1.0")


def _table(path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as db:
        return [(name, kind, notnull) for _, name, kind, notnull, _, _ in db.execute("PRAGMA table_info(results)")]


def test_the_table_is_the_record(tmp_path):
    with SweepStore(tmp_path / "new.sqlite", IDENTITY):
        pass
    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.execute(SCHEMA_2_DDL)
    db.close()
    assert [name for name, _, _ in _table(tmp_path / "new.sqlite")] == [f.name for f in fields(StoredResult)]
    assert _table(tmp_path / "new.sqlite") == _table(tmp_path / "old.sqlite")


def test_rows_go_in_and_come_back_the_same(tmp_path):
    rows = [_row(i) for i in range(4)]
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:
        assert db.add_many(rows) == 4
    with SweepStore(tmp_path / "s.sqlite") as db:
        back = list(db.results())
    assert [r.to_row() for r in back] == [r.to_row() for r in rows]
    assert back[0].stop.value == "target" and back[0].success is True and back[1].success is False


def test_a_store_made_with_the_schema_2_table_is_read_and_extended(tmp_path):
    path = tmp_path / "s.sqlite"
    with SweepStore(path, IDENTITY) as db:
        db.add(_row(0))
    db = sqlite3.connect(path)
    legacy = [r for r in db.execute("SELECT * FROM results")]
    db.execute("DROP TABLE results")
    db.execute(SCHEMA_2_DDL)
    db.executemany(f"INSERT INTO results VALUES ({', '.join('?' * len(legacy[0]))})", legacy)
    db.commit()
    db.close()
    with SweepStore(path, IDENTITY) as db:
        db.add(_row(1))
        assert [r.source for r in db.results()] == ["s0", "s1"]


@pytest.mark.parametrize("column, value, expected", [
    ("stop", b"target", "expected one of target"),
    ("top5", "[[1, 0.6]", "expected JSON"),
    ("top5", '{"1": 0.6}', "expected JSON"),
    ("model", b"digits", "expected str"),
    ("final_prob", "lots", "expected a finite number"),
    ("uint8_label", 1.5, "expected int"),
])
def test_a_summary_refuses_any_unsound_column_naming_the_store_row_and_column(tmp_path, column, value, expected):
    path = tmp_path / "s.sqlite"
    with SweepStore(path, IDENTITY) as db:
        db.add_many([_row(0), _row(1)])
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE results SET {column} = ? WHERE source = 's1'", (value,))
    with pytest.raises(CaffeRelabelError, match=rf"s\.sqlite: .*unreadable result \('s1', 1\): column {column} holds "
                                                rf".*{expected}"):
        summarize(path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM results WHERE source = 's1'")
    assert summarize(path).pairs == 1


def test_the_sql_check_and_the_python_check_agree_on_sound_rows():
    # Every kind's SQL condition is written beside its Python one: a sound row passes both.
    db = sqlite3.connect(":memory:")
    db.execute(store_schema.RESULTS_DDL)
    db.execute(store_schema.INSERT, _row(2).to_row())
    assert db.execute(f"SELECT COUNT(*) FROM results WHERE {store_schema.UNSOUND}").fetchone()[0] == 0
    db.execute("UPDATE results SET success = 2")
    assert db.execute(f"SELECT COUNT(*) FROM results WHERE {store_schema.UNSOUND}").fetchone()[0] == 1


def test_a_closed_store_read_again_leaves_no_journal_files(tmp_path):
    # A report reads its sweep stores after writing them: a WAL store read with mode=ro left -wal and -shm.
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:
        db.add(_row(0))
    with SweepStore(tmp_path / "s.sqlite") as db:
        assert db.count() == 1 and db.read_only
    summarize(tmp_path / "s.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]
    with SweepStore(tmp_path / "s.sqlite", IDENTITY) as db:  # written again: WAL while open
        assert db._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.add(_row(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]
