"""Waiting for a condition in tests, never for a fixed time.

A fixed sleep is a guess about the machine's speed: too short on a slow or
busy machine (the test flakes), too long everywhere else. Poll the condition
itself, with a generous timeout that only a real hang reaches.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 120.0, what: str = "the condition",
             interval: float = 0.01) -> T:
    """Poll ``condition()`` until it returns something true, and return that; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
