"""keep_interrupts: a Ctrl-C that the body swallows is raised again when the body returns."""

from __future__ import annotations

import os
import signal

import pytest

from caffe_relabel.interrupts import keep_interrupts


def _swallowing_call() -> str:
    # What scikit-learn's MLP training does with Ctrl-C.
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**6):  # the handler runs between bytecodes
            pass
    except KeyboardInterrupt:
        return "swallowed"
    return "not interrupted"


def test_a_swallowed_interrupt_is_raised_again():
    assert _swallowing_call() == "swallowed"  # what happens without it
    with pytest.raises(KeyboardInterrupt):
        with keep_interrupts():
            _swallowing_call()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_interrupt_no_error():
    with keep_interrupts():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
