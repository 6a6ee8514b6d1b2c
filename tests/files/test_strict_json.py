"""Strict JSON: a NaN or an infinity becomes null; no NaN/Infinity token can be written."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from caffe_relabel.files import strict_json


def strict_loads(text: str):
    """json.loads as JSON.parse reads it: NaN, Infinity and -Infinity are refused."""
    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth():
    value = {"n": 0, "mean": math.nan, "high": math.inf, "rows": [(1, -math.inf), [np.float64("nan"), 0.5]],
             "f32": np.float32("nan"), "ok": np.float32(0.25), "text": "NaN"}
    text = strict_json.dumps(value, sort_keys=True)
    assert strict_loads(text) == {"f32": None, "high": None, "mean": None, "n": 0, "ok": 0.25,
                                  "rows": [[1, None], [None, 0.5]], "text": "NaN"}
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text


def test_a_nan_that_escapes_the_replacement_is_an_error_not_a_token():
    from decimal import Decimal

    # A value json only turns into a float through `default`, after the replacement ran: refused, never written.
    with pytest.raises(ValueError, match="not JSON compliant"):
        strict_json.dumps({"x": Decimal("NaN")}, default=float)
    assert strict_json.dumps({"x": Decimal("0.5")}, default=float) == '{"x": 0.5}'
