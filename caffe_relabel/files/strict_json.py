"""JSON that every parser reads: no NaN or Infinity tokens, ever.

Python's ``json.dumps`` writes ``NaN`` for a float NaN, which ``JSON.parse``
refuses and jq reads as null. Here a non-finite number is written as
``null`` (every result that can hold one carries its count ``n`` beside it),
and ``allow_nan=False`` makes any other path to such a token an error
instead of output.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf, numpy's too) replaced by None, in dicts, lists and tuples."""
    if isinstance(value, float):  # numpy.float64 is a float
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "dtype") and getattr(value, "shape", None) == () and value.dtype.kind == "f":
        return finite(float(value))  # a numpy float32 scalar
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``, refusing any NaN or Infinity token."""
    return json.dumps(finite(value), allow_nan=False, **options)
