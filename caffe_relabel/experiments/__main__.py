"""`python -m caffe_relabel.experiments ...`: the experiment and report commands without the console script.

A thin entry point: it hands the arguments to the one public CLI entry,
:func:`caffe_relabel.cli.main.main`, so the parser, error mapping and exit
codes are the main command's; nothing else under experiments/ imports the CLI.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

PROG = "python -m caffe_relabel.experiments"


def main(argv: Optional[Sequence[str]] = None) -> int:
    # Imported here: the library's experiments never load the CLI, only this entry point does.
    from caffe_relabel.cli.main import main as cli_main

    return cli_main(argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
