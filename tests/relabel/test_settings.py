"""RelabelSettings: one checked record of how to relabel; wrong types and ranges are ArgumentErrors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caffe_relabel import ArgumentError, RelabelSettings
from caffe_relabel.errors import CaffeRelabelError


@pytest.mark.parametrize("changes, message", [
    (dict(alpha=0), "0 < alpha"),
    (dict(alpha=-3.0), "0 < alpha"),
    (dict(alpha=math.inf), "finite alpha"),
    (dict(alpha=math.nan), "finite alpha"),
    (dict(alpha=1e308), "alpha <= 65025"),
    (dict(alpha="50"), "alpha to be a number, got str"),
    (dict(alpha=True), "alpha to be a number, got bool"),
    (dict(max_distortion=-1), "max_distortion > 0, or None"),
    (dict(max_distortion=0.0), "max_distortion > 0, or None"),
    (dict(max_distortion=math.inf), "finite max_distortion"),
    (dict(max_iter=None), "max_iter to be an integer, got NoneType"),
    (dict(max_iter=2.5), "max_iter to be an integer, got float"),
    (dict(max_iter=-1), "0 <= max_iter"),
    (dict(max_iter=2**63), "max_iter <= 2147483647"),
    (dict(batch_size=0), "1 <= batch_size"),
    (dict(confidence=1.0), "0 <= confidence < 1"),
    (dict(ensure_uint8="yes"), "ensure_uint8 to be True or False"),
    (dict(clip=None), "clip to be True or False"),
])
def test_refused(changes, message) -> None:
    with pytest.raises(ArgumentError, match=message) as info:
        RelabelSettings(**changes)
    # A usage error of the library's own, and still a ValueError for code that catches those.
    assert isinstance(info.value, CaffeRelabelError) and isinstance(info.value, ValueError)


def test_numpy_values_become_plain_python() -> None:
    s = RelabelSettings(alpha=np.float32(25), max_iter=np.int64(7), batch_size=np.int32(2), clip=np.bool_(False))
    assert s == RelabelSettings(alpha=25.0, max_iter=7, batch_size=2, clip=False)
    assert type(s.alpha) is float and type(s.max_iter) is int and type(s.clip) is bool


def test_frozen_and_replace_checks_again() -> None:
    s = RelabelSettings()
    with pytest.raises(AttributeError):
        s.alpha = 3.0  # type: ignore[misc]
    assert s.replace(max_distortion=None).max_distortion is None and s.max_distortion == 0.01
    with pytest.raises(ArgumentError, match="0 < alpha"):
        s.replace(alpha=0)
    with pytest.raises(ArgumentError, match="unknown relabelling setting 'cap'"):
        s.replace(cap=0.1)


def test_dict_round_trip_names_every_setting() -> None:
    s = RelabelSettings(alpha=30, max_distortion=None, confidence=0.5, ensure_uint8=True)
    assert RelabelSettings.from_dict(s.as_dict()) == s
    assert set(s.as_dict()) == {"alpha", "max_distortion", "max_iter", "batch_size", "ensure_uint8", "confidence", "clip"}
    with pytest.raises(ArgumentError, match="'confidence' is missing or unknown"):
        RelabelSettings.from_dict({k: v for k, v in s.as_dict().items() if k != "confidence"})
