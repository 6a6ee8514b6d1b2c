"""The `experiment NAME` and `report` commands of `caffe-relabel` and `python -m caffe_relabel.experiments`.

``register(subparsers)`` adds them to the main parser; each handler returns
an exit code and raises the library's errors, which the main command turns
into one-line messages and exit codes. Results go to stdout (text, or JSON
with --json), progress bars to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from caffe_relabel.errors import ArgumentError
from caffe_relabel.files import strict_json
from caffe_relabel.experiments.common import Stats
from caffe_relabel.cli.exits import EXIT_OK
from caffe_relabel.cli.model_args import add_model_args, model_options
from caffe_relabel.cli.options import (DEFAULTS, add_relabel_options, finite_float, natural_int, positive_float,
                                       positive_int, settings_from)

EXPERIMENTS = ("examples", "sweep", "merge", "summary", "synthesis", "svm", "limitations")


def _int_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return items


def _index_list(text: str) -> list[int]:
    """Class indices, e.g. 0,3,5."""
    indices = []
    for item in _int_list(text):
        try:
            indices.append(natural_int(item))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected class indices >= 0 separated by commas, got {text!r}") from None
    return indices


def _shard(text: str) -> tuple[int, int]:
    from caffe_relabel.experiments.sweep import parse_shard

    try:
        return parse_shard(text)
    except ArgumentError as e:  # argparse then reports our message as a usage error
        raise argparse.ArgumentTypeError(str(e)) from None


#: Each shard is a store file and a task: 4096 shards of the full ImageNet sweep (10 million pairs) hold about 2,500 each.
MAX_SHARDS = 4096


def _shards(text: str) -> int:
    value = positive_int(text)
    if value > MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SHARDS} shards, got {value}")
    return value


#: The experiments' model: small and bundled, so every experiment runs offline in seconds.
EXPERIMENT_MODEL = "digits"
_MODEL_HELP = "zoo model name or random:<zoo name> (seeded random weights)"


def _relabel_args(p: argparse.ArgumentParser, cap: Optional[float]) -> None:
    g = p.add_argument_group("relabelling")
    g.add_argument("--out", default="results", help="folder for figures and stores (default results)")
    g.add_argument("--seed", type=natural_int, default=0, help="seed of every sampled choice (default 0)")
    add_relabel_options(g, cap)
    g.add_argument("--batch-size", type=positive_int, default=DEFAULTS.batch_size,
                   help=f"images relabelled together (default {DEFAULTS.batch_size})")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_model_args(p, EXPERIMENT_MODEL, _MODEL_HELP)


def _sources_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sources", help="folder of class subfolders or of <wnid>_*.JPEG files, a folder with its val.txt, "
                                     "or a list file of 'path label' lines "
                                     "(default: the test digits, or for ImageNet models the photos bundled with scikit-image, "
                                     "scikit-learn and matplotlib, six crops each)")


def register(subparsers: Any) -> None:
    """Add `experiment` and `report` to the main command's subparsers."""
    exp = subparsers.add_parser("experiment", help="run one of the paper's experiments")
    names = exp.add_subparsers(dest="experiment", required=True, parser_class=type(exp))

    p = names.add_parser("examples", help="Section 3, Figures 1-2: swap two labels; distortion over N relabellings")
    _relabel_args(p, None)
    _sources_arg(p)
    p.add_argument("--classes", type=_int_list, help="the two classes to swap, e.g. 3,8 (default: two at random)")
    p.add_argument("--n", type=positive_int, default=30, help="relabellings for the statistics (default 30)")
    p.add_argument("--confidence", type=finite_float, default=DEFAULTS.confidence,
                   help=f"success also needs the target's probability to reach this (default {DEFAULTS.confidence:g}: "
                   "top-1 is enough)")
    p.set_defaults(func=cmd_examples)

    p = names.add_parser("sweep", help="Section 3.1: every source to every other class, success under the cap")
    _relabel_args(p, DEFAULTS.max_distortion)  # the paper's cap
    _sources_arg(p)
    p.add_argument("--store", help="SQLite results file (default OUT/sweep.sqlite, or one per shard with --dask)")
    p.add_argument("--per-class", type=positive_int,
                   help="a seeded sample of this many images per class (the paper: 10; default: every image)")
    p.add_argument("--targets", type=_index_list, help="only these target classes, e.g. 0,3,5 (default: every class)")
    p.add_argument("--targets-per-source", type=positive_int,
                   help="a seeded sample of this many targets per source (default: every other class)")
    p.add_argument("--shard", default="0/1", type=_shard, help="run shard i of n (0 <= i < n), e.g. 2/8 (default 0/1)")
    p.add_argument("--dask", metavar="SCHEDULER",
                   help="run --shards shards on a Dask cluster: a scheduler address, or 'local' (needs the dask extra; "
                        "default: run here)")
    p.add_argument("--shards", type=_shards, default=2, help=f"shards for --dask, at most {MAX_SHARDS} (default 2)")
    p.set_defaults(func=cmd_sweep)

    p = names.add_parser("merge", help="combine sweep stores made with one model and one set of settings")
    p.add_argument("output", help="the merged store (created or extended)")
    p.add_argument("stores", nargs="+", help="the stores to merge into it")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_merge)

    p = names.add_parser("summary", help="success rate and distortion of a sweep store")
    p.add_argument("store", help="a sweep store (SQLite file)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_summary)

    p = names.add_parser("synthesis", help="Section 3.2, Figure 4: relabel Gaussian noise")
    _relabel_args(p, None)
    p.add_argument("--targets", type=_int_list, help="target classes (default every class)")
    p.add_argument("--n-targets", type=positive_int, help="a seeded sample of this many targets (default: all of them)")
    p.add_argument("--sigma", type=positive_float, default=0.2, help="noise std around mid-grey (default 0.2)")
    p.set_defaults(func=cmd_synthesis)

    p = names.add_parser("svm", help="Section 4: an RBF SVM tells relabelled from true images")
    _relabel_args(p, None)
    _sources_arg(p)
    p.add_argument("--sets", type=positive_int, default=10, help="random train/test sets (default 10)")
    p.add_argument("--n-train", type=positive_int, default=20, help="per kind (default 20)")
    p.add_argument("--n-test", type=positive_int, default=30, help="per kind (default 30)")
    p.add_argument("--layer", help="feature blob (default: the bottom of the last InnerProduct)")
    p.set_defaults(func=cmd_svm)

    p = names.add_parser("limitations", help="Section 3.1 limits: crop/shift/mirror, transfer, first-gradient ablation")
    _relabel_args(p, None)
    _sources_arg(p)
    p.add_argument("--n", type=positive_int, default=20, help="relabellings (default 20)")
    p.add_argument("--shift", type=positive_int, help="translation in pixels (default 4 per 224)")
    p.add_argument("--transfer-to", help="second model (zoo name, random:<name>, or digits-mlp; default: digits-mlp "
                                         "for the digits model, else none)")
    p.set_defaults(func=cmd_limitations)

    p = subparsers.add_parser("report", help="run every experiment and write report.md/.html with figures")
    p.add_argument("--out", default="results", help="folder (default results)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small settings: minutes on a CPU")
    size.add_argument("--full", action="store_true",
                      help="over 1,000 relabellings on EfficientNet-Lite0, under an hour on a 2-core CPU "
                           "(default: the paper's settings)")
    _sources_arg(p)
    p.add_argument("--seed", type=natural_int, default=0, help="seed of every sampled choice (default 0)")
    p.add_argument("--batch-size", type=positive_int, help="images relabelled together (default 32 for digits, 4 else)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_model_args(p, None, "one or more zoo models, reported in turn (default: every offline model present: "
                            "digits, efficientnet_lite0)", many=True)
    p.set_defaults(func=cmd_report)


def _common(args: argparse.Namespace) -> dict:
    return dict(model=model_options(args), seed=args.seed, settings=settings_from(args))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):  # a stored result's stop reason: its readable value
        return value.value
    return str(value) if isinstance(value, Path) else value


def _text(value: Any, indent: str = "") -> list[str]:
    """A result as readable lines: one per field, Stats as mean/std/range."""
    lines = []
    for f in dataclasses.fields(value):
        v = getattr(value, f.name)
        if isinstance(v, Stats):
            lines.append(f"{indent}{f.name}: " + (f"mean {v.mean:.6g}, std {v.std:.3g}, min {v.min:.6g}, max {v.max:.6g}, n {v.n}"
                                                  if v.n else "n 0"))
        elif dataclasses.is_dataclass(v):
            lines += [f"{indent}{f.name}:"] + _text(v, indent + "  ")
        elif isinstance(v, dict) and v and all(dataclasses.is_dataclass(x) for x in v.values()):
            for k, x in v.items():
                lines += [f"{indent}{f.name} {k}:"] + _text(x, indent + "  ")
        elif isinstance(v, list) and len(v) > 5:
            lines.append(f"{indent}{f.name}: {len(v)} items")
        else:
            lines.append(f"{indent}{f.name}: {_plain(v)}")
    return lines


def _print(result: Any, as_json: bool) -> None:
    print(strict_json.dumps(_plain(result)) if as_json else "\n".join(_text(result)))


class _Bar:
    """A tqdm bar on stderr fed by progress(done, total) callbacks: rate and ETA for the work left."""

    def __init__(self, desc: str, quiet: bool) -> None:
        self.desc, self.quiet, self.bar = desc, quiet, None

    def __call__(self, done: int, total: int) -> None:
        from caffe_relabel.cli.progress import progress_bar

        if self.bar is None:
            # initial=done: pairs already stored do not inflate the rate.
            self.bar = progress_bar(self.quiet, total=total, initial=done, desc=self.desc, unit="pair")
        else:
            self.bar.update(done - self.bar.n)

    def close(self, done: bool = False) -> None:
        """Close the bar; ``done``: the work is finished, so the bar ends full."""
        from caffe_relabel.cli.progress import finish

        if self.bar is not None:
            if done:
                finish(self.bar)
            self.bar.close()


def cmd_examples(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.relabel_examples import run_examples

    _print(run_examples(out_dir=args.out, sources=args.sources, classes=args.classes, n=args.n, **_common(args)),
           args.json)
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.sweep import run_sweep

    options = dict(sources=args.sources, per_class=args.per_class,
                   targets=args.targets,
                   targets_per_source=args.targets_per_source, **_common(args))
    if args.dask:
        _print(_sweep_dask(args, options), args.json)
        return EXIT_OK
    bar = _Bar("sweep", args.quiet or args.json)
    try:
        result = run_sweep(args.store or Path(args.out) / "sweep.sqlite", shard=args.shard,
                           progress=bar, **options)
    except BaseException:
        bar.close()
        raise
    bar.close(done=True)
    _print(result, args.json)
    return EXIT_OK


def _sweep_dask(args: argparse.Namespace, options: dict) -> Any:
    from caffe_relabel.experiments.dask_sweep import run_sweep_dask
    from caffe_relabel.cli.dask_client import dask_client

    with dask_client(args.dask, args.shards) as client:
        return run_sweep_dask(client, args.out, args.shards, merged=args.store, **options)


def cmd_merge(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.store import merge_stores

    _print(merge_stores(args.output, args.stores), args.json)
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.sweep import summarize

    _print(summarize(args.store), args.json)
    return EXIT_OK


def cmd_synthesis(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.synthesis import run_synthesis

    _print(run_synthesis(out_dir=args.out, targets=args.targets, n_targets=args.n_targets, sigma=args.sigma,
                         **_common(args)), args.json)
    return EXIT_OK


def cmd_svm(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.svm import run_svm

    _print(run_svm(out_dir=args.out, sources=args.sources, sets=args.sets, n_train=args.n_train, n_test=args.n_test,
                   layer=args.layer, **_common(args)), args.json)
    return EXIT_OK


def cmd_limitations(args: argparse.Namespace) -> int:
    from caffe_relabel.experiments.limitations import run_limitations

    _print(run_limitations(out_dir=args.out, sources=args.sources, n=args.n, shift=args.shift,
                           transfer_to=args.transfer_to, **_common(args)), args.json)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from caffe_relabel.cli.progress import finish, progress_bar
    from caffe_relabel.experiments.report import build_report

    from caffe_relabel.models import zoo

    if args.prototxt is not None:
        if args.model:
            raise ArgumentError("--model and --prototxt: expected one of them")
        models = [model_options(args, "custom")]
    else:
        names = args.model or [m for m in ("digits", "efficientnet_lite0") if zoo.find_weights(zoo.get(m)) is not None]
        models = [model_options(args, m) for m in names]
    started: list[str] = []
    with progress_bar(args.quiet, total=5 * len(models), desc="report", unit="experiment") as bar:
        def note(name: str) -> None:
            if started:
                bar.update(1)
            started.append(name)
            bar.set_postfix_str(name)

        size = "quick" if args.quick else "full" if args.full else "paper"
        result = build_report(args.out, models, size=size, sources=args.sources, batch_size=args.batch_size,
                              note=note, seed=args.seed,
                              command_line=getattr(args, "command_line", None))
        bar.update(len(started) - bar.n)
        finish(bar)
    for name, why in result.skipped.items():
        print(f"caffe-relabel: report: {name} not run: {why}", file=sys.stderr)
    print(result.markdown)
    print(result.html)
    # An experiment the model's data cannot support is reported as not run, not as a failure.
    return EXIT_OK
