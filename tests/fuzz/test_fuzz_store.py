"""Fuzzing the sweep store: a truncated or corrupted SQLite file.

Opening it either gives every stored result back, or raises our error naming
the file and leaves the file exactly as it was (nothing written over or
dropped); it never hands back fewer results without a word.
"""

from __future__ import annotations

import random
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffe_relabel import RelabelSettings, cli
from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.experiments.store import StoredResult, StoreIdentity, SweepStore
from tests.fuzz.conftest import COUNTS, EXAMPLES
from tests.fuzz.mutate import mutate_bytes

FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
IDENTITY = StoreIdentity("digits", "engine", RelabelSettings(max_iter=100))
ROWS = 300


def _row(i: int) -> StoredResult:
    return StoredResult(f"digits/{i // 9:04d}", i % 9, 3, i % 3 == 0, "target", i, 0.001 * i, 3, 0.9, i % 9, 0.5,
                        0.5, [[i % 9, 0.5], [3, 0.4]], i % 9, True, 0.001 * i, "digits", "0.1.0")


class _Bytes(bytes):
    def __repr__(self) -> str:  # hypothesis prints its arguments on failure
        return f"<{len(self)} bytes of a store>"


@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("store") / "sweep.sqlite"
    with SweepStore(path, IDENTITY) as db:
        db.add_many(_row(i) for i in range(ROWS))
    assert not path.with_name("sweep.sqlite-wal").exists() or path.with_name("sweep.sqlite-wal").stat().st_size == 0
    return _Bytes(path.read_bytes())


def _damaged(rng: random.Random, data: bytes) -> bytes:
    page = 4096
    kind = rng.choice(["bytes", "truncate_pages", "zero_page", "swap_pages"])
    if kind == "bytes":
        return mutate_bytes(rng, data)
    pages = [data[i:i + page] for i in range(0, len(data), page)]
    i = rng.randrange(len(pages))
    if kind == "truncate_pages":
        return b"".join(pages[:i])
    if kind == "zero_page":
        pages[i] = b"\x00" * len(pages[i])
    else:
        j = rng.randrange(len(pages))
        pages[i], pages[j] = pages[j], pages[i]
    return b"".join(pages)


@FUZZ
@given(rng=st.randoms(use_true_random=False), resume=st.booleans())
def test_damaged_store_is_reported_never_read_short(tmp_path, store_bytes, rng, resume):
    COUNTS["store: damaged files"] += 1
    path = tmp_path / "sweep.sqlite"
    for leftover in tmp_path.glob("sweep.sqlite*"):
        leftover.unlink()
    damaged = _damaged(rng, store_bytes)
    path.write_bytes(damaged)
    try:
        with SweepStore(path, IDENTITY if resume else None) as db:
            count, rows = db.count(), list(db.results())
    except CaffeRelabelError as e:
        COUNTS["store: damaged files, refused"] += 1
        assert str(path) in str(e)
        if damaged:  # an empty file is a new store; anything else is left alone
            assert path.read_bytes() == damaged, "a refused store was changed"
        return
    # Opened: a zero-length file is a fresh store, anything else must still hold every result.
    assert count == len(rows) == (0 if not damaged else ROWS), "results were dropped silently"


def test_cli_reports_a_truncated_store(tmp_path, store_bytes, capsys):
    path = tmp_path / "sweep.sqlite"
    path.write_bytes(store_bytes[: len(store_bytes) // 2])
    assert cli.main(["experiment", "summary", str(path)]) == cli.EXIT_INPUT
    err = capsys.readouterr().err
    assert str(path) in err and "damaged" in err and "Traceback" not in err
    assert path.read_bytes() == store_bytes[: len(store_bytes) // 2]


def test_a_closed_store_is_one_file(tmp_path, store_bytes):
    # The WAL is folded in at close: copying the .sqlite file alone copies every result.
    path = tmp_path / "sweep.sqlite"
    path.write_bytes(store_bytes)
    with SweepStore(path, IDENTITY) as db:
        db.add(_row(ROWS))
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)
    with SweepStore(copy) as db:
        assert db.count() == ROWS + 1
