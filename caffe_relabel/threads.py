"""How idle worker threads of the CPU math libraries wait: set before they load.

torch's CPU build runs its intra-op threads on GNU OpenMP (libgomp), and
pycaffe does its matrix products in OpenBLAS's thread pool. Both let a thread
with no work spin for a while (libgomp about 300,000 spins, OpenBLAS 2^28
cycles) so the next parallel region starts a few microseconds sooner. When
another process keeps one of the cores busy, a spinning thread burns the
time slice its descheduled partner needs, and every barrier waits for a whole
scheduler tick: the engine ran about 40 times slower on a 2-core machine with
one core busy. Sleeping at once costs a futex wake per parallel region
(microseconds, against milliseconds per layer), so waiting passively is the
better default for a tool that runs on shared servers and laptops.

Both libraries read these settings once, when they are loaded (libgomp at
``import torch``, OpenBLAS at ``import caffe``); later changes have no effect.
So the package's ``__init__`` applies them, before any of its modules imports
torch or caffe. Values the user set are kept, and nothing changes in a
process that loaded torch before caffe_relabel.
"""

from __future__ import annotations

import os
from typing import MutableMapping

#: libgomp: idle threads sleep at once (GOMP_SPINCOUNT, when set, overrides it).
OMP_WAIT_POLICY = "PASSIVE"
#: OpenBLAS (pthreads build): idle threads spin 2^4 cycles, its minimum, before sleeping.
OPENBLAS_THREAD_TIMEOUT = "4"


def set_wait_policy(environ: "MutableMapping[str, str] | None" = None) -> dict[str, str]:
    """Set the passive wait policies the user has not chosen; returns what was set."""
    env = os.environ if environ is None else environ
    chosen: dict[str, str] = {}
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        chosen["OMP_WAIT_POLICY"] = OMP_WAIT_POLICY
    if "OPENBLAS_THREAD_TIMEOUT" not in env:
        chosen["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_THREAD_TIMEOUT
    env.update(chosen)
    return chosen
