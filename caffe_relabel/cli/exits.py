"""Exit codes, and the one mapping from the library's errors to them, for every command-line entry point.

0 success; 1 a relabelling failed (no target label within the cap); 2 usage
error (bad arguments: argparse's, and the library's ArgumentError); 3 input
error (a file, model, class or store that cannot be used: the library's other
errors); 4 a needed runtime is missing (pycaffe, torch, CUDA, Dask); 130
interrupted. No user error prints a Python traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn

from caffe_relabel.errors import ArgumentError, BackendUnavailableError, CaffeRelabelError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130

# Most specific first: ArgumentError and BackendUnavailableError are CaffeRelabelErrors too.
_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ArgumentError, EXIT_USAGE),
    (BackendUnavailableError, EXIT_UNAVAILABLE),
    (CaffeRelabelError, EXIT_INPUT),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
)


def exit_code(error: BaseException) -> int:
    """The exit code for an error the library raised on purpose (or Ctrl-C); anything else is a bug and re-raised."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    raise error


class Parser(argparse.ArgumentParser):
    """argparse with our usage exit code (argparse's own is 2 as well; the wording stays argparse's)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def run(prog: str, command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command handler; the library's errors become one line on stderr and their exit code."""
    try:
        return command(args)
    except (CaffeRelabelError, KeyboardInterrupt) as e:
        message = "interrupted" if isinstance(e, KeyboardInterrupt) else str(e)
        print(f"{prog}: {message}", file=sys.stderr)
        return exit_code(e)
