"""Run a snippet of Python in a child process with a memory limit and a timeout.

Hostile inputs that could hang or exhaust memory are tried this way: a
regression fails the test instead of stalling or killing the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_limited(code: str, memory_bytes: int, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``code`` under RLIMIT_AS = ``memory_bytes``; the child's stdout and stderr come back as text."""
    prelude = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({memory_bytes}, {memory_bytes}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
