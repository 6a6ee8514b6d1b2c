"""`python -m caffe_relabel.experiments ...`: the experiment and report commands on their own.

The same subcommands as `caffe-relabel experiment ...` / `caffe-relabel report ...`,
with the main command's parser class, error mapping and exit codes.
"""

from __future__ import annotations

import shlex
import sys
from typing import Optional, Sequence

from caffe_relabel.cli.exits import Parser, run
from caffe_relabel.cli.experiments import register

PROG = "python -m caffe_relabel.experiments"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = Parser(prog=PROG, description=__doc__.split("\n")[0])
    register(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join([PROG, *argv])  # what the report records as its command
    return run(PROG, args.func, args)


if __name__ == "__main__":
    sys.exit(main())
