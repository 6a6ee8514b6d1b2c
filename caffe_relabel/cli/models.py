"""The `models` command: list, fetch, verify or convert the zoo's models."""

from __future__ import annotations

import argparse
from typing import Optional

from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.cli.exits import EXIT_INPUT, EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from caffe_relabel.models import zoo

    if args.action == "list":
        for name, path in zoo.present_models().items():
            spec = zoo.get(name)
            state = str(path) if path else ("not made" if spec.converter else "not downloaded")
            print(f"{name:26s} {spec.input.shape[1]}x{spec.input.shape[2]}  {spec.description}\n{'':26s} weights: {state}")
        return EXIT_OK
    names = args.names or [n for n, p in zoo.present_models().items() if p is not None or args.action == "fetch"]
    if args.action == "fetch":
        from caffe_relabel.cli.progress import progress_bar

        for name in names:
            bars: list = []  # the bar starts with the first bytes: an offline error is not preceded by one

            def progress(done: int, total: Optional[int], name: str = name) -> None:
                if not bars:
                    bars.append(progress_bar(args.quiet, desc=name, unit="B", unit_scale=True))
                bars[0].total = total
                bars[0].n = done
                bars[0].refresh()

            try:
                path = zoo.fetch(name, progress=progress, url=args.url, allow_file_urls=args.allow_file_url)
            finally:
                for bar in bars:
                    bar.close()
            print(f"{name}: {path}")
        return EXIT_OK
    if args.action == "verify":
        bad = 0
        for name in names:
            path, ok = zoo.verify(name)
            print(f"{name}: {path} {'ok' if ok else 'SHA1 MISMATCH'}")
            bad += not ok
        return EXIT_OK if not bad else EXIT_INPUT
    if args.action == "convert":
        from caffe_relabel.models.convert import CONVERTERS
        from caffe_relabel.files.paths import cache_dir

        for name in args.names or list(CONVERTERS):
            if name not in CONVERTERS:
                raise CaffeRelabelError(f"no converter for {name!r}; known: {', '.join(CONVERTERS)}")
            prototxt, weights = CONVERTERS[name][0](cache_dir("models"))
            print(f"{name}: {prototxt} {weights}")
        return EXIT_OK
    raise AssertionError(args.action)


def register(sub: "argparse._SubParsersAction") -> None:
    """Add `models` to the main command's subparsers."""
    p = sub.add_parser("models", help="list, fetch, verify or convert models")
    p.add_argument("action", choices=["list", "fetch", "verify", "convert"], help="what to do")
    p.add_argument("names", nargs="*", help="the models (default: every model the action applies to)")
    p.add_argument("--url", help="download from this address instead (fetch; one model; default: the zoo's address)")
    p.add_argument("--allow-file-url", action="store_true", help="accept a file:// address for --url (fetch)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_models)
