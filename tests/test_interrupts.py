"""keep_interrupts: a Ctrl-C that the body swallows is raised again when the body returns."""

from __future__ import annotations

import os
import signal
import warnings

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


def _warning_swallowing_call() -> str:
    warnings.warn("before the interrupt")
    result = _swallowing_call()
    warnings.warn("Training interrupted by user.")  # scikit-learn's words
    return result


def test_an_interrupted_bodys_warnings_are_dropped(recwarn):
    with pytest.raises(KeyboardInterrupt):
        with keep_interrupts():
            _warning_swallowing_call()
    assert [str(w.message) for w in recwarn] == []


def test_without_an_interrupt_the_bodys_warnings_are_shown(recwarn):
    with keep_interrupts():
        warnings.warn("converged late", RuntimeWarning)
    assert [(str(w.message), w.category) for w in recwarn] == [("converged late", RuntimeWarning)]
    assert recwarn[0].filename == __file__  # where the body warned, not where it was re-shown


def test_no_interrupt_no_error():
    with keep_interrupts():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
