"""`python -m caffe_relabel.experiments ...`: the experiment and report commands on their own.

The same subcommands as `caffe-relabel experiment ...` / `caffe-relabel report ...`,
with the main command's parser class and exit codes.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from .. import cli
from ..errors import BackendUnavailableError, CaffeRelabelError
from .cli import register

PROG = "python -m caffe_relabel.experiments"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli._Parser(prog=PROG, description=__doc__.split("\n")[0])
    register(parser.add_subparsers(dest="command", required=True, parser_class=cli._Parser))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BackendUnavailableError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return cli.EXIT_UNAVAILABLE
    except (CaffeRelabelError, ValueError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return cli.EXIT_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return cli.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
