"""The `caffe-relabel` command: its parser and entry point (exit codes: :mod:`.exits`)."""

from __future__ import annotations

import shlex
import sys
from typing import Optional, Sequence

from caffe_relabel.version import __version__
from caffe_relabel.cli import experiments, models, relabel
from caffe_relabel.cli.exits import Parser, run

PROG = "caffe-relabel"


def build_parser(prog: str = PROG) -> Parser:
    parser = Parser(prog=prog, description="Relabel images on Caffe classifiers (Robinson & Graham, 2015).")
    parser.add_argument("--version", action="version", version=f"caffe-relabel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    relabel.register(sub)
    models.register(sub)
    experiments.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> int:
    """Run the command ``argv``; ``prog`` is the name usage lines, errors and the report's command give it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args.command_line = shlex.join([prog, *argv])  # what the report records as its command
    return run(prog, args.func, args)

