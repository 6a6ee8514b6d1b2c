"""Fuzz budget and bookkeeping: FUZZ_EXAMPLES inputs per target (default 60; `make fuzz` runs more).

Each target adds what it tried to COUNTS; the totals are printed at the end of the run.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Iterator

import pytest

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
COUNTS: Counter = Counter()


@pytest.fixture(scope="package", autouse=True)
def net_byte_limit() -> Iterator[None]:
    """Mutated digits nets (0.35 MB per sample) may declare any size: keep each one, and every
    child process (which inherits it), far below the machine's memory -- for these tests only,
    not for the full-size nets of a run that collects them too."""
    saved = os.environ.get("CAFFE_RELABEL_MAX_NET_BYTES")
    os.environ["CAFFE_RELABEL_MAX_NET_BYTES"] = str(2**30)
    yield
    if saved is None:
        del os.environ["CAFFE_RELABEL_MAX_NET_BYTES"]
    else:
        os.environ["CAFFE_RELABEL_MAX_NET_BYTES"] = saved


def pytest_terminal_summary(terminalreporter) -> None:
    if COUNTS:
        terminalreporter.write_sep("-", "fuzz inputs tried")
        for name, n in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name}: {n}")
        # The reliability suite's closing line (issue 14): Ctrl-C runs count as inputs too.
        inputs = sum(n for k, n in COUNTS.items() if k.startswith("reliability") and k.endswith(": inputs"))
        inputs += COUNTS["interrupts: SIGINT"]
        if inputs:
            bad = {kind: sum(n for k, n in COUNTS.items() if k.startswith("reliability") and k.endswith(f": {kind}"))
                   for kind in ("abort", "hang", "oom", "traceback")}
            terminalreporter.write_line(f"reliability: {inputs} inputs: {bad['abort']} aborts, {bad['hang']} hangs, "
                                        f"{bad['oom']} OOM, {bad['traceback']} tracebacks")
