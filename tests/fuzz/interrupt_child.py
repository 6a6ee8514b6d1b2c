"""Run ``caffe-relabel ARGV`` after wrapping one callable so that it announces on stderr when work has started.

    python -m tests.fuzz.interrupt_child MODULE:QUALNAME ARGV...

The first call of MODULE.QUALNAME (a function or a method) prints
``STARTED_MARK`` to stderr before it runs: the parent sends SIGINT once it
sees the line, so the interrupt lands inside that call (a scikit-learn fit, a
Dask gather, the relabelling loop) on a fast machine and a slow one alike.
"""

from __future__ import annotations

import functools
import importlib
import sys

STARTED_MARK = "<<interrupt-child: started>>"


def _wrap(target: str) -> None:
    module_name, qualname = target.split(":")
    owner = importlib.import_module(module_name)
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, attr)

    @functools.wraps(original)
    def announced(*args, **kwargs):
        print(STARTED_MARK, file=sys.stderr, flush=True)
        return original(*args, **kwargs)

    setattr(owner, attr, announced)


if __name__ == "__main__":
    _wrap(sys.argv[1])
    from caffe_relabel.cli import main

    sys.exit(main(sys.argv[2:]))
