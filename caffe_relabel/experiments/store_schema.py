"""The sweep store's row, written once: :class:`StoredResult`'s fields are the columns.

Each field's type names a :class:`Kind`, which says how the value is kept in
SQLite, how it is checked in Python and in SQL, and how it is read back. The
table's DDL, the INSERT, the SELECT and the row record are all derived from
:data:`COLUMNS`, so a column is added or changed in one place.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, fields
from typing import Any, Callable

from caffe_relabel.experiments.common import top_k
from caffe_relabel.files import strict_json
from caffe_relabel.relabel.relabeller import RelabelResult, StopReason


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
        return tuple(c.kind.encode(getattr(self, c.name)) for c in COLUMNS)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "StoredResult":
        # SQLite keeps whatever type was written (a REAL column holds text happily): check each.
        kw: dict[str, Any] = {}
        for c in COLUMNS:
            v = row[c.name]
            if not c.kind.accepts(v):
                raise ValueError(f"column {c.name} holds {_shown(v)}, expected {c.kind.expected}")
            kw[c.name] = c.kind.decode(v)
        return cls(**kw)


def _shown(v: object) -> str:
    """A stored value for an error line: a damaged column can hold megabytes."""
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_top5(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, list) and all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and not isinstance(p[0], bool)
        and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) and math.isfinite(p[1]) for p in data)


@dataclass(frozen=True)
class Kind:
    """How one Python type is kept in a column."""

    sql: str  # the column's declared type
    check: str  # an SQL condition a sound value meets, with {c} for the column
    accepts: Callable[[object], bool]  # the same condition on the value as Python reads it
    expected: str  # what a sound value is, for an error line
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _same(v: Any) -> Any:
    return v


_STOPS = tuple(s.value for s in StopReason)

KINDS: dict[str, Kind] = {
    "str": Kind("TEXT", "typeof({c}) = 'text'", lambda v: isinstance(v, str), "str", _same, _same),
    "int": Kind("INTEGER", "typeof({c}) = 'integer'", lambda v: isinstance(v, int), "int", _same, _same),
    "bool": Kind("INTEGER", "typeof({c}) = 'integer' AND {c} IN (0, 1)", lambda v: isinstance(v, int) and v in (0, 1),
                 "bool", int, bool),
    # abs() <= the largest double: SQLite stores an infinity as a REAL.
    "float": Kind("REAL", "typeof({c}) IN ('integer', 'real') AND abs({c}) <= 1.7976931348623157e308",
                  lambda v: isinstance(v, (int, float)) and math.isfinite(v), "a finite number", _same, _same),
    "StopReason": Kind("TEXT", "typeof({c}) = 'text' AND {c} IN (" + ", ".join(f"'{s}'" for s in _STOPS) + ")",
                       lambda v: v in _STOPS, f"one of {', '.join(_STOPS)}",
                       lambda v: v.value if isinstance(v, StopReason) else v, StopReason),
    # CASE, not AND: SQLite may evaluate json_type() first, which raises on text that is not JSON.
    "list": Kind("TEXT", "CASE WHEN typeof({c}) = 'text' AND json_valid({c}) THEN json_type({c}) = 'array' ELSE 0 END",
                 _is_top5,
                 "JSON [[class, probability], ...]", strict_json.dumps, json.loads),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


#: The results table's columns, in the record's field order.
COLUMNS: tuple[Column, ...] = tuple(Column(f.name, KINDS[f.type]) for f in fields(StoredResult))
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

RESULTS_DDL = ("CREATE TABLE IF NOT EXISTS results ("
               + ", ".join(f"{c.name} {c.kind.sql} NOT NULL" for c in COLUMNS) + ", UNIQUE (source, target))")
INSERT = f"INSERT OR IGNORE INTO results ({', '.join(NAMES)}) VALUES ({', '.join('?' * len(NAMES))})"
SELECT = f"SELECT {', '.join(NAMES)} FROM results"
#: Rows with any column that :meth:`StoredResult.from_row` would refuse, found in SQL (NULL counts as unsound).
UNSOUND = " OR ".join(f"NOT coalesce({c.kind.check.format(c=c.name)}, 0)" for c in COLUMNS)
