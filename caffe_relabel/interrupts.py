"""Ctrl-C that a third-party call catches and swallows is raised again when the call returns.

scikit-learn's MLP training catches KeyboardInterrupt, warns, and returns
the half-trained model as if all were well: a command interrupted there would
carry on and exit 0. Inside :func:`keep_interrupts` a SIGINT is also noted by
our own handler, so it is raised again once the call is back, whatever the
call did with it. The warnings the body gives are held back until it returns:
after a Ctrl-C they are dropped ("Training interrupted by user" is noise beside
our one line), otherwise shown as they would have been.
"""

from __future__ import annotations

import signal
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def keep_interrupts() -> Iterator[None]:
    """Run the body; if SIGINT arrived meanwhile and the body returned normally, raise KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):  # ignored (a background job), or set outside Python: leave it
        yield
        return
    seen: list[int] = []

    def noted(signum: int, frame) -> None:
        seen.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL would end the process; end it the way Python's default handler does
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, noted)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if not seen:
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if seen:
        raise KeyboardInterrupt
