"""The sweep's results on disk: one SQLite file per shard, safe to kill at any moment.

Results are committed in groups (:class:`GroupWriter`: every so many rows
or seconds, WAL journal), so a process killed mid-sweep loses at most the
open group and the relabellings still in flight, which a restart simply
redoes; ``UNIQUE (source, target)`` means nothing is ever stored twice, and
its index answers "which targets of this source are stored?" without
reading the rest of the store. A store remembers the model and the relabelling settings it
was made with, and refuses results (or a merge) made with other ones.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from caffe_relabel.files.atomic_write import make_dir
from caffe_relabel.files.bounded_read import open_regular
from caffe_relabel.errors import ArgumentError, CaffeRelabelError, OutputError
from caffe_relabel.experiments.store_identity import StoreIdentity, StoreMismatchError, check_same
from caffe_relabel.experiments.store_schema import INSERT, RESULTS_DDL, SELECT, UNSOUND, StoredResult

#: Re-exported: a store's callers meet its rows and its identity here.
__all__ = ["GroupWriter", "MergeResult", "SCHEMA_VERSION", "StoreIdentity", "StoreMismatchError", "StoredResult",
           "SweepStore", "check_same", "merge_stores"]

#: SQLite result codes of the medium rather than the file: SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_MEDIA_ERRORS = frozenset({8, 10, 13, 14})

SCHEMA_VERSION = "2"

class SweepStore:
    """A results file. ``identity=None`` opens an existing store as it is (for reading, merging)."""

    def __init__(self, path: "str | os.PathLike[str]", identity: Optional[StoreIdentity] = None) -> None:
        self.path = Path(path)
        self._rows_checked = False
        #: Opened only to read (``identity=None``): nothing is ever written to the file.
        self.read_only = identity is None
        if identity is None and not self.path.exists():
            raise CaffeRelabelError(f"{self.path}: no such sweep store")
        existing = self.path.exists() and _header(self.path) is not None
        if existing and _header(self.path) != b"SQLite format 3\x00":
            # SQLite would take a short foreign file for an empty database and write over it.
            raise CaffeRelabelError(f"{self.path}: not a sweep store (not an SQLite file); it was left as it is")
        if not self.read_only:
            make_dir(self.path.parent, "store folder")
        # Autocommit: each INSERT is its own transaction, durable once it returns.
        with self._sql():  # e.g. a directory at the path
            self._db = self._connect()
        self._db.row_factory = sqlite3.Row
        try:
            with self._sql():
                if existing:
                    # A damaged file must stop the sweep, not be written over or read short. The full
                    # check: quick_check misses pages swapped between tables, which the UNIQUE index exposes.
                    problem = self._db.execute("PRAGMA integrity_check(1)").fetchone()[0]
                    if problem != "ok":
                        raise sqlite3.DatabaseError(problem)
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables and not {"meta", "results"} <= tables:
                    raise sqlite3.DatabaseError(f"tables {sorted(tables, key=repr)}, expected meta and results")  # names may be BLOBs
                if not tables and identity is None:
                    raise CaffeRelabelError(f"{self.path}: not a sweep store (no results table)")
                if self.read_only:
                    self.identity = self._settle_identity(None)
                    return
                if tables:
                    # Every row readable before the first write: a bad store is left exactly as it was.
                    for _ in self.results():
                        pass
                # One transaction: a store killed while being created has all of it or none. The identity
                # is settled before the switch to WAL, which rewrites the file's header: a store refused
                # for another model or settings is left byte for byte as it was.
                with self._transaction():
                    self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    self._db.execute(RESULTS_DDL)
                    self.identity = self._settle_identity(identity)
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL survives a killed process (not a power cut) without an fsync per row.
                self._db.execute("PRAGMA synchronous=NORMAL")
        except CaffeRelabelError:
            self._db.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        # Read only: mode=ro never writes; on read-only media SQLite cannot even make the
        # WAL index (-shm), so the file is opened as immutable there (no other writer can exist).
        writable = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        wal = self.path.with_name(self.path.name + "-wal")
        if not writable and wal.exists() and wal.stat().st_size > 0:
            # immutable=1 would ignore the journal and read the store short.
            raise CaffeRelabelError(
                f"{self.path}: on read-only media with unmerged results in {wal.name}; "
                "copy both files to a writable folder to read it"
            )
        uri = self.path.resolve().as_uri() + ("?mode=ro" if writable else "?immutable=1")
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)

    @contextlib.contextmanager
    def _sql(self) -> Iterator[None]:
        """SQLite's errors (a damaged or foreign file, a lock held too long) as ours, naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if getattr(e, "sqlite_errorcode", 0) & 0xFF in _MEDIA_ERRORS:  # primary code of an extended one
                # The medium, not the file: a full disk, an I/O error or a read-only mount. The
                # stored results are intact up to the last committed group.
                raise OutputError(f"{self.path}: cannot write the sweep store ({e}); the results committed so "
                                  "far are kept: free space or move the store, then run the sweep again") from None
            raise self._damaged(e) from None
        except UnicodeDecodeError as e:  # damaged text
            raise self._damaged(e) from None

    def _damaged(self, e: Exception) -> CaffeRelabelError:
        return CaffeRelabelError(
            f"{self.path}: not a sweep store, or a damaged one ({e}); it was left as it is: "
            "expected a store written by caffe-relabel (restore a copy, or sweep into a new --store)"
        )

    def _settle_identity(self, wanted: Optional[StoreIdentity]) -> StoreIdentity:
        stored = self.meta("identity")
        if stored is None:
            if wanted is None:
                raise CaffeRelabelError(f"{self.path}: not a sweep store (no identity recorded)")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('identity', ?)", (wanted.to_json(),))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            return wanted
        try:
            have = StoreIdentity.from_json(stored)
        except (ValueError, TypeError, KeyError) as e:
            raise sqlite3.DatabaseError(f"unreadable identity {stored!r}: {e}") from None
        if wanted is not None:
            check_same(have, wanted, str(self.path))
        return have

    def meta(self, key: str) -> Optional[str]:
        with self._sql():
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._sql():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def stored_targets(self, source: str) -> set[int]:
        """The targets of ``source`` already stored: one lookup in the (source, target) index."""
        with self._sql():
            return {r[0] for r in self._db.execute("SELECT target FROM results WHERE source = ?", (source,))}

    def is_empty(self) -> bool:
        """No result stored yet (one row read, where COUNT(*) would read them all)."""
        with self._sql():
            return self._db.execute("SELECT 1 FROM results LIMIT 1").fetchone() is None

    def add(self, result: StoredResult) -> None:
        """Store one result, committed when this returns; a pair already present is left alone."""
        with self._sql():
            self._db.execute(INSERT, result.to_row())

    def add_many(self, results: Iterable[StoredResult]) -> int:
        """Store several results in one transaction; returns how many were new."""
        # total_changes, not COUNT(*): counting rows reads the whole table, 10M rows at the paper's scale.
        before = self._db.total_changes
        with self._sql(), self._transaction():
            self._db.executemany(INSERT, (r.to_row() for r in results))
        return self._db.total_changes - before

    def grouped(self, rows: int = 1000, seconds: float = 2.0) -> "GroupWriter":
        """A writer that commits every ``rows`` results or ``seconds`` after a group's first, whichever comes first."""
        return GroupWriter(self, rows, seconds)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # Explicit BEGIN/COMMIT: the connection is in autocommit mode.
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def count(self) -> int:
        with self._sql():
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def tally(self) -> tuple[int, int, int]:
        """(results, successes, successes that also hold in 8-bit), counted in SQL."""
        self._check_rows()
        with self._sql():
            n, ok, ok8 = self._db.execute(
                "SELECT COUNT(*), TOTAL(success), TOTAL(success AND uint8_success) FROM results").fetchone()
        return int(n), int(ok), int(ok8)

    def success_stats(self, column: str) -> tuple[int, float, float, float, float]:
        """(n, mean, population std, min, max) of ``distortion`` or ``iterations`` over the successes, in SQL."""
        if column not in ("distortion", "iterations"):
            raise ArgumentError(f"expected distortion or iterations, got {column!r}")
        self._check_rows()
        with self._sql():
            n, mean, lo, hi = self._db.execute(
                f"SELECT COUNT(*), AVG({column}), MIN({column}), MAX({column}) FROM results WHERE success").fetchone()
            if not n:
                return 0, math.nan, math.nan, math.nan, math.nan
            # Two passes (mean, then squared deviations): as accurate as numpy's std, unlike E[x^2] - E[x]^2.
            var = self._db.execute(f"SELECT AVG(({column} - ?) * ({column} - ?)) FROM results WHERE success",
                                   (mean, mean)).fetchone()[0]
        return int(n), float(mean), math.sqrt(var), float(lo), float(hi)

    def success_values(self, column: str) -> list[float]:
        """Every success's ``distortion`` or ``iterations``, ordered by (source, target): a merged store gives the same list."""
        if column not in ("distortion", "iterations"):
            raise ArgumentError(f"expected distortion or iterations, got {column!r}")
        self._check_rows()
        with self._sql():
            rows = self._db.execute(f"SELECT {column} FROM results WHERE success ORDER BY source, target")
            return [r[0] for r in rows]

    def lowest_target_rates(self, limit: int) -> list[tuple[int, float, int]]:
        """[(target, success rate, results)] for the ``limit`` targets with the lowest rates, lowest first."""
        self._check_rows()
        with self._sql():
            rows = self._db.execute("SELECT target, AVG(success) AS rate, COUNT(*) FROM results GROUP BY target "
                                    "ORDER BY rate, target LIMIT ?", (limit,)).fetchall()
        return [(int(t), float(r), int(c)) for t, r, c in rows]

    def _check_rows(self) -> None:
        """Every row holds what :meth:`StoredResult.from_row` would accept, checked in SQL in one pass.

        The aggregates run in SQL, which would add up a text or an infinity without a word;
        a row that fails is read the usual way, so the error names it and its column as :meth:`results` does.
        """
        if self._rows_checked:
            return
        with self._sql():
            row = self._db.execute(f"{SELECT} WHERE {UNSOUND} LIMIT 1").fetchone()
            if row is not None:
                try:
                    StoredResult.from_row(row)
                except (ValueError, TypeError) as e:
                    raise sqlite3.DatabaseError(f"unreadable result {tuple(row)[:2]}: {e}") from None
                raise sqlite3.DatabaseError(f"unreadable result {tuple(row)[:2]}: a column holds an unexpected value")
        self._rows_checked = True

    def results(self) -> Iterator[StoredResult]:
        """Every stored result, ordered by (source, target)."""
        with self._sql():
            for row in self._db.execute(f"{SELECT} ORDER BY source, target"):
                try:
                    yield StoredResult.from_row(row)
                except (ValueError, TypeError) as e:
                    raise sqlite3.DatabaseError(f"unreadable result {tuple(row)[:2]}: {e}") from None

    def close(self) -> None:
        if not self.read_only:
            try:
                # Fold the WAL into the file: a closed store is one self-contained file to copy.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                # And leave WAL mode: a reader (mode=ro) of a WAL store makes -wal and -shm files
                # it cannot remove. Another connection still open keeps WAL; its own close retries.
                self._db.execute("PRAGMA busy_timeout = 100")
                self._db.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.DatabaseError:
                pass  # a damaged store was reported by the call that found it
        self._db.close()

    def __enter__(self) -> "SweepStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GroupWriter:
    """Results committed a group at a time: one transaction per group, not per row.

    A killed process loses the open group (at most ``rows`` results, or
    ``seconds`` of them) and nothing committed. Leaving the ``with`` block,
    even by an exception such as Ctrl-C, commits the open group.
    """

    def __init__(self, store: SweepStore, rows: int, seconds: float) -> None:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise ArgumentError(f"expected a commit group of at least 1 row, got {rows!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ArgumentError(f"expected a commit interval > 0 seconds, got {seconds!r}")
        self.store = store
        self.rows = rows
        self.seconds = float(seconds)
        self._open: list[StoredResult] = []
        self._since = 0.0
        #: Results committed through this writer that were new to the store.
        self.added = 0

    def is_empty(self) -> bool:
        """No result stored yet (one row read, where COUNT(*) would read them all)."""
        with self._sql():
            return self._db.execute("SELECT 1 FROM results LIMIT 1").fetchone() is None

    def add(self, result: StoredResult) -> None:
        if not self._open:
            self._since = time.monotonic()
        self._open.append(result)
        if len(self._open) >= self.rows or time.monotonic() - self._since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        """Commit the open group now."""
        # Taken before writing: a group the store refused is not offered again on the way out.
        group, self._open = self._open, []
        if group:
            self.added += self.store.add_many(group)

    def __enter__(self) -> "GroupWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


def _header(path: Path) -> Optional[bytes]:
    """The first 16 bytes of a store file, None for an empty one; anything but a regular file is refused."""
    with open_regular(path, "sweep store", "store") as f:
        head = f.read(16)
    return head or None


@dataclass(frozen=True)
class MergeResult:
    """What a merge did."""

    path: Path
    inputs: int
    added: int
    total: int


def merge_stores(out: "str | os.PathLike[str]", inputs: list["str | os.PathLike[str]"]) -> MergeResult:
    """Combine stores made with one model and one set of settings into ``out``."""
    if not inputs:
        raise ArgumentError("expected at least one store to merge, got none")
    opened = [SweepStore(p) for p in inputs]
    try:
        identity = opened[0].identity
        for s in opened[1:]:
            check_same(s.identity, identity, str(s.path))
        with SweepStore(out, identity) as target:
            added = sum(target.add_many(s.results()) for s in opened)
            return MergeResult(Path(out), len(opened), added, target.count())
    finally:
        for s in opened:
            s.close()
