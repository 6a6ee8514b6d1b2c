"""The `classify` and `relabel` commands (their model options: :mod:`caffe_relabel.cli.model_args`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from caffe_relabel.errors import ArgumentError
from caffe_relabel.cli.exits import EXIT_FAILED, EXIT_OK
from caffe_relabel.cli.model_args import add_model_args, model_options
from caffe_relabel.cli.options import DEFAULTS, add_relabel_options, finite_float, positive_int, settings_from
from caffe_relabel.files import strict_json

if TYPE_CHECKING:
    from caffe_relabel.models.model import Model


def _load(args: argparse.Namespace) -> "Model":
    from caffe_relabel.models.model import load_model

    return load_model(model_options(args))


def _fmt(model, index: int, prob: float) -> str:
    return f"{model.class_name(index)} ({index}) p={prob:.4f}"


def cmd_classify(args: argparse.Namespace) -> int:
    from caffe_relabel.images.files import image_files

    paths = image_files(args.images)  # the user's files first: cheap, and the likeliest mistake
    model = _load(args)
    blocks = []
    for path in paths:
        top = model.predict(path).top(args.top)
        if args.json:
            blocks.append({"image": str(path), "top": [{"class": i, "name": model.class_name(i), "prob": p}
                                                       for i, p in top]})
        else:
            print("\n".join([f"{path}:", *(f"  {_fmt(model, i, p)}" for i, p in top)]))
    if args.json:
        print(strict_json.dumps(blocks))
    return EXIT_OK


def cmd_relabel(args: argparse.Namespace) -> int:
    from caffe_relabel.cli.progress import finish, progress_bar
    from caffe_relabel.images.preprocess import check_output_path, load_image, save_image
    from caffe_relabel.relabel.goals import LeastLikely
    from caffe_relabel.relabel.relabeller import Relabeller
    from caffe_relabel.relabel.saved import check_saved, is_lossy

    image = load_image(args.image)
    if args.output is not None:  # -o '' is refused, not skipped
        check_output_path(args.output)  # now, not after the relabelling it would lose
        _check_lossy_request(args)
    model = _load(args)
    target = "untargeted" if args.untargeted else "least_likely" if args.least_likely else args.target
    relabeller = Relabeller(model, settings_from(args, batch_size=1))
    with progress_bar(args.quiet or args.json, total=args.max_iter, desc="relabelling", unit="it") as bar:
        result = relabeller.run_batch([image], [target], on_iteration=lambda n: bar.update(1))[0]
        finish(bar, result.iterations)
    readback = None
    if args.output:
        save_image(result.image, args.output)
        if is_lossy(args.output):
            readback = check_saved(model, args.output, result.goal, result.aim)
    if args.json:
        named = {"source": str(args.image), "output": args.output}
        print(strict_json.dumps({**result.summary(), **named, **({"saved": readback.summary()} if readback else {})}))
    else:
        print(f"original:   {_fmt(model, result.original_label, result.original_prob)}")
        aim = (f"away from {model.class_name(result.aim)} ({result.aim})" if result.goal.away
               else f"target {model.class_name(result.aim)} ({result.aim})"
               + (", the least likely" if isinstance(result.goal, LeastLikely) else ""))
        print(f"relabelled: {_fmt(model, result.final_label, result.final_prob)}  ({aim})")
        print(f"distortion: {result.distortion:.5f}  iterations: {result.iterations}  stop: {result.stop}")
        saved = ("a new label" if result.goal.away else "target") if result.uint8_success else f"{model.class_name(result.uint8_label)} ({result.uint8_label})"
        print(f"8-bit image: {saved}, distortion {result.uint8_distortion:.5f}" + (f", saved to {args.output}" if args.output else ""))
    ok = result.success and (result.uint8_success or not args.ensure_uint8)
    if readback is not None:
        ok = _report_lossy(model, readback, args) and ok
    return EXIT_OK if ok else EXIT_FAILED


def _check_lossy_request(args: argparse.Namespace) -> None:
    """--ensure-uint8 promises the 8-bit pixels a PNG keeps; a lossy file cannot keep that promise."""
    from caffe_relabel.relabel.saved import is_lossy

    if args.ensure_uint8 and is_lossy(args.output) and not args.allow_lossy:
        raise ArgumentError(
            f"--ensure-uint8: {args.output} is a lossy format that re-compresses the pixels --ensure-uint8 "
            f"makes carry the target; save as .png, or add --allow-lossy to save it anyway (the file is then "
            f"read back and its class reported)")


def _report_lossy(model, saved, args: argparse.Namespace) -> bool:
    """Say what the lossy file is classified as; False when it lost the target and lossy output was not allowed."""
    aim = "original" if saved.goal.away else "target"
    what = f"{_fmt(model, saved.label, saved.prob)}, {aim} p={saved.aim_prob:.4f}"
    if saved.carries_target:
        if not args.json:
            print(f"saved file: {what} (lossy format, read back: {'a new label' if saved.goal.away else 'still the target'})")
        return True
    if not args.json:
        print(f"saved file: {what} (lossy format, read back: {'the original label again' if saved.goal.away else 'NOT the target'})")
    if args.allow_lossy:
        return True
    print(f"caffe-relabel: warning: {saved.path} lost the target in lossy compression; save as .png to keep "
          f"it exact, or pass --allow-lossy to accept a lossy file", file=sys.stderr)
    return False


def register(sub: "argparse._SubParsersAction") -> None:
    """Add `classify` and `relabel` to the main command's subparsers."""
    p = sub.add_parser("classify", help="top classes of images")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, or folders (their image files, sorted by name); one block each")
    p.add_argument("--top", type=positive_int, default=5, help="how many classes to print (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON: a list, one {image, top} object per image")
    add_model_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("relabel", help="relabel an image to a target class")
    p.add_argument("image", help="the image file to relabel")
    aim = p.add_mutually_exclusive_group(required=True)
    aim.add_argument("--target", "-t", help="class index, WordNet id or class name (no default: give --target, "
                                            "--untargeted or --least-likely)")
    aim.add_argument("--untargeted", action="store_true",
                     help="any label but the original: step away from it until the label changes (to one with at least "
                     "--confidence probability)")
    aim.add_argument("--least-likely", action="store_true", help="target the original image's least likely class")
    p.add_argument("--output", "-o", help="save the relabelled image (PNG keeps it exact; a lossy .jpg/.webp is read "
                                          "back and classified: exit 1 if it lost the target; default: not saved)")
    p.add_argument("--allow-lossy", action="store_true",
                   help="accept a lossy -o file that lost the target (exit 0), and --ensure-uint8 with it")
    add_relabel_options(p, DEFAULTS.max_distortion)
    p.add_argument("--ensure-uint8", action="store_true", help="keep going until the 8-bit image carries the target label")
    p.add_argument("--confidence", type=finite_float, default=DEFAULTS.confidence,
                   help="also require the new top-1's probability to reach this: the target's, or untargeted the new "
                   f"label's (default {DEFAULTS.confidence:g})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar (there is none when stderr is not a terminal)")
    add_model_args(p)
    p.set_defaults(func=cmd_relabel)
