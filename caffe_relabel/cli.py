"""The `caffe-relabel` command.

Exit codes: 0 success; 1 a relabelling failed (no target label within the
cap); 2 usage error (bad arguments, or values the library refuses with
ValueError, e.g. --alpha 0); 3 input error (a file, model, class or store
that cannot be used: the library's own errors); 4 a needed runtime is
missing (pycaffe, torch, CUDA); 130 interrupted. No user error prints a
Python traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from . import __version__
from .errors import BackendUnavailableError, CaffeRelabelError

if TYPE_CHECKING:
    from .model import Model

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well; keep its wording
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", default="bvlc_googlenet", help="zoo model name (default bvlc_googlenet); see `models list`")
    g.add_argument("--prototxt", help="a deploy prototxt (instead of --model)")
    g.add_argument("--weights", help="the caffemodel for --prototxt")
    g.add_argument("--mean", help="per-channel mean in the net's channel order, e.g. 104,117,123 (with --prototxt)")
    g.add_argument("--mean-file", help="a mean binaryproto (with --prototxt)")
    g.add_argument("--channel-order", choices=["BGR", "RGB", "GREY"], default="BGR", help="with --prototxt (default BGR)")
    g.add_argument("--resize", type=int, default=256, help="shorter side before the centre crop, 0 = resize to the input size (with --prototxt)")
    g.add_argument("--backend", choices=["auto", "pycaffe", "engine"], default="auto")
    g.add_argument("--device", default="cpu", help="cpu, gpu:N (default cpu)")


def _load(args: argparse.Namespace) -> "Model":
    from .model import Model, load_model
    from .preprocess import InputSpec

    if args.prototxt is None:
        if args.weights is not None:
            raise CaffeRelabelError("--weights needs --prototxt")
        return load_model(args.model, backend=args.backend, device=args.device)
    if args.weights is None:
        raise CaffeRelabelError("--prototxt needs --weights")
    from .backends import load_classifier

    clf = load_classifier(args.prototxt, args.weights, backend=args.backend, device=args.device)
    c, h, w = clf.input_shape
    if args.mean_file:
        from .proto import read_mean

        mean = read_mean(args.mean_file)
    elif args.mean:
        try:
            mean = tuple(float(v) for v in args.mean.split(","))
        except ValueError:
            raise CaffeRelabelError(f"--mean: expected comma-separated numbers, got {args.mean!r}") from None
    else:
        raise CaffeRelabelError("--prototxt needs --mean B,G,R or --mean-file (the net's input mean)")
    try:
        spec = InputSpec(size=(h, w), channel_order=args.channel_order, mean=mean, resize=args.resize or None)
    except ValueError as e:
        raise CaffeRelabelError(f"--mean/--channel-order: {e}") from None

    try:
        return Model(clf, spec, Path(args.prototxt).name, *_labels(clf.num_classes))
    except ValueError as e:
        raise CaffeRelabelError(f"{args.prototxt}: {e}") from None


def _labels(num_classes: int) -> tuple:
    from . import zoo

    if num_classes == 1000:
        return zoo.class_names("imagenet"), "imagenet"
    return None, None


def _fmt(model, index: int, prob: float) -> str:
    return f"{model.class_name(index)} ({index}) p={prob:.4f}"


def cmd_classify(args: argparse.Namespace) -> int:
    import numpy as np

    from .preprocess import fit, image_to_blob, load_image

    image = load_image(args.image)  # the user's file first: cheap, and the likeliest mistake
    model = _load(args)
    blob = image_to_blob(fit(image, model.input), model.input)
    probs = model.classifier.forward(blob[None])[0]
    top = np.argsort(-probs)[: args.top]
    if args.json:
        print(json.dumps([{"class": int(i), "name": model.class_name(int(i)), "prob": float(probs[i])} for i in top]))
    else:
        for i in top:
            print(_fmt(model, int(i), float(probs[i])))
    return EXIT_OK


def cmd_relabel(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .preprocess import check_output_path, load_image, save_image
    from .relabel import Relabeller

    image = load_image(args.image)
    if args.output:
        check_output_path(args.output)  # now, not after the relabelling it would lose
    model = _load(args)
    target = model.resolve(args.target)
    relabeller = Relabeller(
        model,
        alpha=args.alpha,
        max_distortion=None if args.max_distortion <= 0 else args.max_distortion,
        max_iter=args.max_iter,
        ensure_uint8=args.ensure_uint8,
        confidence=args.confidence,
        batch_size=1,
    )
    with tqdm(total=args.max_iter, desc="relabelling", unit="it", disable=args.quiet or args.json, file=sys.stderr) as bar:
        result = relabeller.run_batch([image], [target], on_iteration=lambda n: bar.update(1))[0]
    if args.output:
        save_image(result.image, args.output)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        print(f"original:   {_fmt(model, result.original_label, result.original_prob)}")
        print(f"relabelled: {_fmt(model, result.final_label, result.final_prob)}  (target {model.class_name(target)} ({target}))")
        print(f"distortion: {result.distortion:.5f}  iterations: {result.iterations}  stop: {result.stop}")
        saved = "target" if result.uint8_success else f"{model.class_name(result.uint8_label)} ({result.uint8_label})"
        print(f"8-bit image: {saved}, distortion {result.uint8_distortion:.5f}" + (f", saved to {args.output}" if args.output else ""))
    ok = result.success and (result.uint8_success or not args.ensure_uint8)
    return EXIT_OK if ok else EXIT_FAILED


def cmd_models(args: argparse.Namespace) -> int:
    from . import zoo

    if args.action == "list":
        for name, path in zoo.present_models().items():
            spec = zoo.get(name)
            state = str(path) if path else ("not made" if spec.converter else "not downloaded")
            print(f"{name:26s} {spec.input.shape[1]}x{spec.input.shape[2]}  {spec.description}\n{'':26s} weights: {state}")
        return EXIT_OK
    names = args.names or [n for n, p in zoo.present_models().items() if p is not None or args.action == "fetch"]
    if args.action == "fetch":
        from tqdm import tqdm

        for name in names:
            bars: list = []  # the bar starts with the first bytes: an offline error is not preceded by one

            def progress(done: int, total: Optional[int], name: str = name) -> None:
                if not bars:
                    bars.append(tqdm(desc=name, unit="B", unit_scale=True, file=sys.stderr, disable=args.quiet))
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
        from .convert import CONVERTERS
        from .paths import cache_dir

        for name in args.names or list(CONVERTERS):
            if name not in CONVERTERS:
                raise CaffeRelabelError(f"no converter for {name!r}; known: {', '.join(CONVERTERS)}")
            prototxt, weights = CONVERTERS[name][0](cache_dir("models"))
            print(f"{name}: {prototxt} {weights}")
        return EXIT_OK
    raise AssertionError(args.action)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="caffe-relabel", description="Relabel images on Caffe classifiers (Robinson & Graham, 2015).")
    parser.add_argument("--version", action="version", version=f"caffe-relabel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("classify", help="top classes of an image")
    p.add_argument("image")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_model_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("relabel", help="relabel an image to a target class")
    p.add_argument("image")
    p.add_argument("--target", "-t", required=True, help="class index, WordNet id or class name")
    p.add_argument("--output", "-o", help="save the relabelled image (PNG keeps it exact)")
    p.add_argument("--alpha", type=float, default=50.0, help="step size: each step moves a pixel by alpha/255 grey levels (default 50)")
    p.add_argument("--max-distortion", type=float, default=0.01, help="distortion cap, 0 = none (default 0.01)")
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--ensure-uint8", action="store_true", help="keep going until the 8-bit image carries the target label")
    p.add_argument("--confidence", type=float, default=0.0, help="also require the target's probability to reach this (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_model_args(p)
    p.set_defaults(func=cmd_relabel)

    p = sub.add_parser("models", help="list, fetch, verify or convert models")
    p.add_argument("action", choices=["list", "fetch", "verify", "convert"])
    p.add_argument("names", nargs="*")
    p.add_argument("--url", help="download from this address instead (fetch; one model)")
    p.add_argument("--allow-file-url", action="store_true", help="accept a file:// address for --url (fetch)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_models)

    from .experiments.cli import register as register_experiments

    register_experiments(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BackendUnavailableError as e:
        print(f"caffe-relabel: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except CaffeRelabelError as e:
        print(f"caffe-relabel: {e}", file=sys.stderr)
        return EXIT_INPUT
    except ValueError as e:  # an argument value the library refused ("expected alpha > 0, got 0")
        print(f"caffe-relabel: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("caffe-relabel: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
