"""Progress bars on stderr: only on a terminal, never with --quiet, and full when the work is done."""

from __future__ import annotations

import sys
from typing import Any, Optional

from tqdm import tqdm


def progress_bar(quiet: bool, **options: Any) -> tqdm:
    """A tqdm bar on stderr; off when ``quiet`` or when stderr is not a terminal (a log file gets no frames)."""
    return tqdm(file=sys.stderr, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True, **options)


def finish(bar: tqdm, done: Optional[int] = None) -> None:
    """End the bar at the work actually done (``done``, else the bar's count): a relabelling that
    succeeded early is 100%, not 19%."""
    bar.n = bar.n if done is None else done
    bar.total = bar.n
    bar.refresh()
