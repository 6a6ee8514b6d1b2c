"""The Dask client of `experiment sweep --dask`: connect with a timeout, and end at once on Ctrl-C.

Dask is made for long-lived services, not for a command a user interrupts:
an unreachable scheduler is waited for (30 s by default), a shard running on
a worker cannot be cancelled, closing a local cluster waits for its busy
workers (and again, 10 s, at exit), and the calls it abandons log tracebacks
from its event loop thread. Here the connection has a short timeout, and on
Ctrl-C logging stops at once (the command reports the interrupt, once), the
local cluster's worker processes, which this command started, are killed
after a short close, and nothing waits for them at exit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from typing import Any, Iterator

from caffe_relabel.errors import BackendUnavailableError, CaffeRelabelError

#: Seconds to reach a --dask scheduler.
CONNECT_TIMEOUT = 5
#: Seconds given to closing the client and the local cluster after Ctrl-C, before the workers are killed.
INTERRUPTED_CLOSE = 0.5


@contextlib.contextmanager
def dask_client(address: str, workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address``, or of a new local cluster of ``workers`` processes."""
    try:
        import distributed
    except ImportError as e:
        raise BackendUnavailableError(f"--dask needs the dask extra (pip install 'caffe-relabel[dask]'): {e}") from None
    interrupted = False
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupted
        # Before the KeyboardInterrupt unwinds into Dask, whose loop thread logs the cancelled call at once.
        interrupted = True
        logging.disable(logging.CRITICAL)
        raise KeyboardInterrupt

    cluster = client = None
    try:
        if callable(previous):  # not where SIGINT is ignored (a background job)
            signal.signal(signal.SIGINT, on_interrupt)
        if address == "local":
            # Workers log warnings of their own (a task cancelled at Ctrl-C); this command reports for them.
            # More worker processes than cores would only share them (and each loads the model).
            cluster = distributed.LocalCluster(n_workers=min(workers, os.cpu_count() or 1), processes=True, threads_per_worker=1,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        else:
            client = _connect(distributed, address)
        yield client
    finally:
        if callable(previous):
            signal.signal(signal.SIGINT, previous)
        for part in (client, cluster):
            if part is None:
                continue
            if not interrupted:
                part.close()
                continue
            with contextlib.suppress(Exception):  # no error of this cleanup may hide the interrupt
                part.close(timeout=INTERRUPTED_CLOSE)
        if interrupted and cluster is not None:
            # The nannies are closing, so none restarts the workers killed here.
            for process in multiprocessing.active_children():
                process.kill()
            cluster.shutdown_on_close = False  # what is left ends with this process


def _connect(distributed: Any, address: str) -> Any:
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    # MemoryError: a server that is not Dask's (an HTTP proxy) answers with bytes Dask reads as a huge length.
    except (OSError, TimeoutError, ValueError, TypeError, MemoryError) as e:
        raise CaffeRelabelError(f"--dask {address}: cannot reach a Dask scheduler there ({type(e).__name__}: {e})") from None
