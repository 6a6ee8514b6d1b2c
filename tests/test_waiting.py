"""The polling helper tests use instead of fixed sleeps."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import wait_for


def test_returns_the_first_true_value():
    calls = itertools.count()
    assert wait_for(lambda: next(calls) >= 3 and "ready", timeout=10, interval=0) == "ready"
    assert next(calls) == 4  # polled until true, not once more


def test_times_out_naming_what_it_waited_for():
    with pytest.raises(AssertionError, match="0.05 s waiting for the store"):
        wait_for(lambda: False, timeout=0.05, what="the store")
