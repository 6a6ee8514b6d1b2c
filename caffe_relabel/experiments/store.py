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
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from caffe_relabel.files.atomic_write import make_dir
from caffe_relabel.files.bounded_read import open_regular
from caffe_relabel.errors import ArgumentError, CaffeRelabelError, OutputError
from caffe_relabel.relabel.relabeller import RelabelResult, StopReason
from caffe_relabel.relabel.settings import RelabelSettings
from caffe_relabel.experiments.common import top_k

#: SQLite result codes of the medium rather than the file: SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_MEDIA_ERRORS = frozenset({8, 10, 13, 14})

SCHEMA_VERSION = "2"

_COLUMNS_SQL = """
    source TEXT NOT NULL,
    target INTEGER NOT NULL,
    source_label INTEGER NOT NULL,
    success INTEGER NOT NULL,
    stop TEXT NOT NULL,
    iterations INTEGER NOT NULL,
    distortion REAL NOT NULL,
    original_label INTEGER NOT NULL,
    original_prob REAL NOT NULL,
    final_label INTEGER NOT NULL,
    final_prob REAL NOT NULL,
    target_prob REAL NOT NULL,
    top5 TEXT NOT NULL,
    uint8_label INTEGER NOT NULL,
    uint8_success INTEGER NOT NULL,
    uint8_distortion REAL NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    UNIQUE (source, target)
"""


class StoreMismatchError(CaffeRelabelError, ValueError):
    """A store made with another model or other relabelling settings."""


@dataclass(frozen=True)
class StoreIdentity:
    """What makes two stores' results comparable: the model, the backend and the relabelling settings, whole."""

    model: str
    backend: str
    settings: RelabelSettings
    #: (name, sha1) of the model's definition and weights (provenance.model_files); empty in older stores.
    files: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        files = {"files": [list(f) for f in self.files]} if self.files else {}
        return json.dumps({"model": self.model, "backend": self.backend, "settings": self.settings.as_dict(), **files},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "StoreIdentity":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        if "settings" not in data:
            data = _identity_v1(data)
        files = tuple((str(name), str(sha1)) for name, sha1 in data.get("files", ()))
        return cls(str(data["model"]), str(data["backend"]), RelabelSettings.from_dict(data["settings"]), files)


def _identity_v1(data: dict) -> dict:
    """Schema 1 stores kept five settings beside the model; they ran without confidence, in batches of 8."""
    old = {k: data[k] for k in ("alpha", "max_distortion", "max_iter", "ensure_uint8", "clip")}
    return {"model": data["model"], "backend": data["backend"],
            "settings": {**RelabelSettings().as_dict(), **old, "confidence": 0.0}}


@dataclass(frozen=True)
class StoredResult:
    """One row: a relabelling's scalar outcome (top5 as [[class, prob], ...])."""

    source: str
    target: int
    source_label: int
    success: bool
    stop: StopReason
    iterations: int
    distortion: float
    original_label: int
    original_prob: float
    final_label: int
    final_prob: float
    target_prob: float
    top5: list
    uint8_label: int
    uint8_success: bool
    uint8_distortion: float
    model: str
    version: str

    @classmethod
    def from_result(cls, source: str, source_label: int, r: RelabelResult, model: str, version: str) -> "StoredResult":
        return cls(
            source, r.target, source_label, r.success, r.stop, r.iterations, r.distortion, r.original_label,
            r.original_prob, r.final_label, r.final_prob, r.target_prob, [list(t) for t in top_k(r.probs, 5)],
            r.uint8_label, r.uint8_success, r.uint8_distortion, model, version,
        )

    def to_row(self) -> tuple:
        values = []
        for f in fields(self):
            v = getattr(self, f.name)
            values.append(json.dumps(v) if f.name == "top5" else int(v) if isinstance(v, bool)
                          else v.value if isinstance(v, StopReason) else v)
        return tuple(values)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "StoredResult":
        kw: dict[str, Any] = {f.name: row[f.name] for f in fields(cls)}
        # SQLite keeps whatever type was written (a REAL column holds text happily): check each.
        for f in fields(cls):
            v = kw[f.name]
            want = _ROW_TYPES[f.name]
            if want is float:
                ok = isinstance(v, (int, float)) and math.isfinite(v)
            elif want is bool:
                ok = isinstance(v, int) and v in (0, 1)
            elif want is StopReason:
                ok = v in {s.value for s in StopReason}
            else:
                ok = isinstance(v, want)
            if not ok:
                raise ValueError(f"column {f.name} holds {v!r}, expected {'a finite number' if want is float else want.__name__}")
        kw["top5"] = json.loads(kw["top5"])
        kw["success"] = bool(kw["success"])
        kw["uint8_success"] = bool(kw["uint8_success"])
        kw["stop"] = StopReason(kw["stop"])
        return cls(**kw)


_NAMES = [f.name for f in fields(StoredResult)]
# The Python type each column must hold ("top5" is JSON text).
_ROW_TYPES = {f.name: {"str": str, "int": int, "bool": bool, "float": float, "list": str, "StopReason": StopReason}[f.type]
              for f in fields(StoredResult)}
_INSERT = f"INSERT OR IGNORE INTO results ({', '.join(_NAMES)}) VALUES ({', '.join('?' * len(_NAMES))})"


class SweepStore:
    """A results file. ``identity=None`` opens an existing store as it is (for reading, merging)."""

    def __init__(self, path: "str | os.PathLike[str]", identity: Optional[StoreIdentity] = None) -> None:
        self.path = Path(path)
        self._summed_checked = False
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
                    raise sqlite3.DatabaseError(f"tables {sorted(tables)}, expected meta and results")
                if not tables and identity is None:
                    raise CaffeRelabelError(f"{self.path}: not a sweep store (no results table)")
                if self.read_only:
                    self.identity = self._settle_identity(None)
                    return
                if tables:
                    # Every row readable before the first write: a bad store is left exactly as it was.
                    for _ in self.results():
                        pass
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL survives a killed process (not a power cut) without an fsync per row.
                self._db.execute("PRAGMA synchronous=NORMAL")
                # One transaction: a store killed while being created has all of it or none.
                with self._transaction():
                    self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    self._db.execute(f"CREATE TABLE IF NOT EXISTS results ({_COLUMNS_SQL})")
                    self.identity = self._settle_identity(identity)
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

    def add(self, result: StoredResult) -> None:
        """Store one result, committed when this returns; a pair already present is left alone."""
        with self._sql():
            self._db.execute(_INSERT, result.to_row())

    def add_many(self, results: Iterable[StoredResult]) -> int:
        """Store several results in one transaction; returns how many were new."""
        # total_changes, not COUNT(*): counting rows reads the whole table, 10M rows at the paper's scale.
        before = self._db.total_changes
        with self._sql(), self._transaction():
            self._db.executemany(_INSERT, (r.to_row() for r in results))
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
        self._check_summed_columns()
        with self._sql():
            n, ok, ok8 = self._db.execute(
                "SELECT COUNT(*), TOTAL(success), TOTAL(success AND uint8_success) FROM results").fetchone()
        return int(n), int(ok), int(ok8)

    def success_stats(self, column: str) -> tuple[int, float, float, float, float]:
        """(n, mean, population std, min, max) of ``distortion`` or ``iterations`` over the successes, in SQL."""
        if column not in ("distortion", "iterations"):
            raise ArgumentError(f"expected distortion or iterations, got {column!r}")
        self._check_summed_columns()
        with self._sql():
            n, mean, lo, hi = self._db.execute(
                f"SELECT COUNT(*), AVG({column}), MIN({column}), MAX({column}) FROM results WHERE success").fetchone()
            if not n:
                return 0, math.nan, math.nan, math.nan, math.nan
            # Two passes (mean, then squared deviations): as accurate as numpy's std, unlike E[x^2] - E[x]^2.
            var = self._db.execute(f"SELECT AVG(({column} - ?) * ({column} - ?)) FROM results WHERE success",
                                   (mean, mean)).fetchone()[0]
        return int(n), float(mean), math.sqrt(var), float(lo), float(hi)

    def lowest_target_rates(self, limit: int) -> list[tuple[int, float, int]]:
        """[(target, success rate, results)] for the ``limit`` targets with the lowest rates, lowest first."""
        self._check_summed_columns()
        with self._sql():
            rows = self._db.execute("SELECT target, AVG(success) AS rate, COUNT(*) FROM results GROUP BY target "
                                    "ORDER BY rate, target LIMIT ?", (limit,)).fetchall()
        return [(int(t), float(r), int(c)) for t, r, c in rows]

    def _check_summed_columns(self) -> None:
        """The columns a summary adds up hold what :meth:`StoredResult.from_row` would accept.

        The aggregates run in SQL, which would add up a text or an infinity without a word;
        a row that fails is read the usual way, so the error names it as :meth:`results` does.
        """
        if self._summed_checked:
            return
        with self._sql():
            bad = self._db.execute(
                "SELECT source, target FROM results WHERE typeof(target) != 'integer' "
                "OR typeof(iterations) != 'integer' OR typeof(success) != 'integer' OR success NOT IN (0, 1) "
                "OR typeof(uint8_success) != 'integer' OR uint8_success NOT IN (0, 1) "
                "OR typeof(distortion) NOT IN ('integer', 'real') OR abs(distortion) > 1.7976931348623157e308 "
                "LIMIT 1").fetchone()
            if bad is not None:
                row = self._db.execute(f"SELECT {', '.join(_NAMES)} FROM results WHERE source IS ? AND target IS ?",
                                       tuple(bad)).fetchone()
                try:
                    StoredResult.from_row(row)
                except (ValueError, TypeError) as e:
                    raise sqlite3.DatabaseError(f"unreadable result {tuple(row)[:2]}: {e}") from None
                raise sqlite3.DatabaseError(f"unreadable result {tuple(bad)}: a summed column holds an unexpected value")
        self._summed_checked = True

    def results(self) -> Iterator[StoredResult]:
        """Every stored result, ordered by (source, target)."""
        with self._sql():
            for row in self._db.execute(f"SELECT {', '.join(_NAMES)} FROM results ORDER BY source, target"):
                try:
                    yield StoredResult.from_row(row)
                except (ValueError, TypeError) as e:
                    raise sqlite3.DatabaseError(f"unreadable result {tuple(row)[:2]}: {e}") from None

    def close(self) -> None:
        if not self.read_only:
            try:
                # Fold the WAL into the file: a closed store is one self-contained file to copy.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
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


#: Settings that do not change a result: continuous batching gives every sample the same steps at any batch size.
_NOT_COMPARED = ("batch_size",)


def check_same(have: StoreIdentity, wanted: StoreIdentity, where: str) -> None:
    """Raise StoreMismatchError naming the first differing model, backend or relabelling setting."""
    pairs = [("model", have.model, wanted.model), ("backend", have.backend, wanted.backend)]
    a, b = have.settings.as_dict(), wanted.settings.as_dict()
    pairs += [(name, a[name], b[name]) for name in RelabelSettings.names() if name not in _NOT_COMPARED]
    for name, x, y in pairs:
        if x != y:
            raise StoreMismatchError(f"{where}: made with {name}={x!r}, expected {name}={y!r}")
    if have.files and wanted.files and have.files != wanted.files:  # a store from before files were recorded: unknown
        made, expected = (", ".join(f"{n} (sha1 {s[:12]})" for n, s in f) for f in (have.files, wanted.files))
        raise StoreMismatchError(f"{where}: made with model files {made}, expected {expected}; "
                                 "sweep these weights into a new --store")


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
