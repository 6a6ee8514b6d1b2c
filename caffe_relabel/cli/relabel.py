"""The `classify` and `relabel` commands, and the options that name a model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from caffe_relabel.numerics import MODES
from caffe_relabel.errors import ArgumentError, CaffeRelabelError
from caffe_relabel.cli.exits import EXIT_FAILED, EXIT_OK
from caffe_relabel.cli.options import add_relabel_options, device, finite_float, natural_int, positive_float, positive_int, settings_from

if TYPE_CHECKING:
    from caffe_relabel.models.model import Model
    from caffe_relabel.images.preprocess import InputSpec


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "model",
        "A zoo model (--model) knows its input. A --prototxt net's input transform is Caffe's: "
        "blob = (pixel * raw_scale - mean) * input_scale, pixel in [0, 1], resized (--resize) and "
        "centre-cropped to the net's input size; from --train-val's transform_param, or from the options below "
        "(which win over it). Options spelled as Caffe's classify.py spells them work too (--raw_scale, ...).",
    )
    g.add_argument("--model", "-m", default="bvlc_googlenet", help="zoo model name (default bvlc_googlenet); see `models list`")
    g.add_argument("--prototxt", help="a deploy prototxt (instead of --model)")
    g.add_argument("--weights", help="the caffemodel for --prototxt")
    g.add_argument("--train-val", "--train_val", dest="train_val", metavar="PROTOTXT",
                   help="the train_val prototxt the net was trained with: its TEST-phase transform_param gives "
                   "mean_value or mean_file, scale (as --input-scale) and crop_size (must be the input size); "
                   "mirror is ignored (a training augmentation)")
    g.add_argument("--mean", help="per-channel mean in the net's channel order on the raw scale, e.g. 104,117,123")
    g.add_argument("--mean-file", "--mean_file", dest="mean_file", help="a mean binaryproto")
    g.add_argument("--raw-scale", "--raw_scale", dest="raw_scale", type=positive_float, default=None,
                   help="the pixel range the mean is given in (default 255: 8-bit pixels)")
    g.add_argument("--input-scale", "--input_scale", dest="input_scale", type=positive_float, default=None,
                   help="multiplies the blob after the mean is subtracted: Caffe's transform_param scale, "
                   "e.g. 0.00390625 for LeNet, 0.017 for MobileNet (default 1)")
    g.add_argument("--channel-order", choices=["BGR", "RGB", "GREY"], default="BGR",
                   help="the net's channel order (default BGR; classify.py's --channel_swap 2,1,0 is BGR)")
    g.add_argument("--resize", type=natural_int, default=256,
                   help="shorter side before the centre crop to the input size, 0 = resize straight to the input size (default 256)")
    g.add_argument("--backend", choices=["auto", "pycaffe", "engine"], default="auto")
    g.add_argument("--device", type=device, default="cpu", help="cpu, gpu:N (default cpu)")
    g.add_argument("--engine-mode", choices=MODES, default="faithful",
                   help="the engine's numerics: faithful (default: Caffe's algorithms, im2col convolutions on CPU), "
                   "fast (channels-last oneDNN on CPU; TF32 and cuDNN autotuning on GPU), fast-bf16 (GPU bfloat16). "
                   "With --backend auto, a mode other than faithful picks the engine")


# The transform options only a --prototxt net takes (a zoo model knows its input).
_TRANSFORM_OPTIONS = (("train_val", "--train-val"), ("mean", "--mean"), ("mean_file", "--mean-file"),
                      ("raw_scale", "--raw-scale"), ("input_scale", "--input-scale"))


def _load(args: argparse.Namespace) -> "Model":
    from caffe_relabel.models.model import Model, load_model

    if args.prototxt is None:
        if args.weights is not None:
            raise CaffeRelabelError("--weights needs --prototxt")
        given = [flag for name, flag in _TRANSFORM_OPTIONS if getattr(args, name) is not None]
        if given:
            raise ArgumentError(f"{', '.join(given)}: only with --prototxt (zoo model {args.model!r} knows its input)")
        return load_model(args.model, backend=args.backend, device=args.device, mode=args.engine_mode)
    if args.weights is None:
        raise CaffeRelabelError("--prototxt needs --weights")
    from caffe_relabel.backends import load_classifier

    clf = load_classifier(args.prototxt, args.weights, backend=args.backend, device=args.device,
                          mode=args.engine_mode)
    spec = _input_spec(args, clf.input_shape)
    try:
        return Model(clf, spec, Path(args.prototxt).name, *_labels(clf.num_classes))
    except ValueError as e:
        raise CaffeRelabelError(f"{args.prototxt}: {e}") from None


def _input_spec(args: argparse.Namespace, shape: "tuple[int, int, int]") -> "InputSpec":
    """The --prototxt net's input transform: --train-val's transform_param, overridden by the options given."""
    import dataclasses

    from caffe_relabel.images.preprocess import InputSpec

    _, h, w = shape
    if args.mean and args.mean_file:
        raise ArgumentError("--mean and --mean-file: expected one of them")
    mean = None
    if args.mean_file:
        from caffe_relabel.netdef.proto import read_mean

        mean = read_mean(args.mean_file)
    elif args.mean:
        try:
            mean = tuple(float(v) for v in args.mean.split(","))
        except ValueError:
            raise ArgumentError(f"--mean: expected comma-separated numbers, got {args.mean!r}") from None
    elif args.train_val is None:
        raise CaffeRelabelError("--prototxt needs --mean B,G,R, --mean-file or --train-val (the net's input mean)")
    raw_scale = 255.0 if args.raw_scale is None else args.raw_scale
    try:
        if args.train_val is not None:
            spec = InputSpec.from_transform_param(args.train_val, (h, w), channel_order=args.channel_order,
                                                  resize=args.resize or None, raw_scale=raw_scale)
            changes = {"mean": mean, "input_scale": args.input_scale}
            spec = dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
        else:
            spec = InputSpec(size=(h, w), channel_order=args.channel_order, mean=mean, resize=args.resize or None,
                             raw_scale=raw_scale, input_scale=1.0 if args.input_scale is None else args.input_scale)
    except ArgumentError as e:
        raise ArgumentError(f"--mean/--channel-order: {e}") from None
    return spec


def _labels(num_classes: int) -> tuple:
    from caffe_relabel.models import zoo

    if num_classes == 1000:
        return zoo.class_names("imagenet"), "imagenet"
    return None, None


def _fmt(model, index: int, prob: float) -> str:
    return f"{model.class_name(index)} ({index}) p={prob:.4f}"


def cmd_classify(args: argparse.Namespace) -> int:
    import numpy as np

    from caffe_relabel.images.preprocess import fit, image_to_blob, load_image

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

    from caffe_relabel.images.preprocess import check_output_path, load_image, save_image
    from caffe_relabel.relabel.relabeller import Relabeller
    from caffe_relabel.relabel.saved import check_saved, is_lossy

    image = load_image(args.image)
    if args.output is not None:  # -o '' is refused, not skipped
        check_output_path(args.output)  # now, not after the relabelling it would lose
        _check_lossy_request(args)
    model = _load(args)
    target = "untargeted" if args.untargeted else "least_likely" if args.least_likely else model.resolve(args.target)
    relabeller = Relabeller(model, settings_from(args, batch_size=1))
    with tqdm(total=args.max_iter, desc="relabelling", unit="it", disable=args.quiet or args.json, file=sys.stderr) as bar:
        result = relabeller.run_batch([image], [target], on_iteration=lambda n: bar.update(1))[0]
    readback = None
    if args.output:
        save_image(result.image, args.output)
        if is_lossy(args.output):
            readback = check_saved(model, args.output, result.target, result.confidence, away=args.untargeted)
    if args.json:
        print(json.dumps({**result.summary(), **({"saved": readback.summary()} if readback else {})}))
    else:
        print(f"original:   {_fmt(model, result.original_label, result.original_prob)}")
        aim = (f"away from {model.class_name(result.target)} ({result.target})" if args.untargeted
               else f"target {model.class_name(result.target)} ({result.target})"
               + (", the least likely" if args.least_likely else ""))
        print(f"relabelled: {_fmt(model, result.final_label, result.final_prob)}  ({aim})")
        print(f"distortion: {result.distortion:.5f}  iterations: {result.iterations}  stop: {result.stop}")
        saved = ("a new label" if args.untargeted else "target") if result.uint8_success else f"{model.class_name(result.uint8_label)} ({result.uint8_label})"
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
    aim = "original" if saved.away else "target"
    what = f"{_fmt(model, saved.label, saved.prob)}, {aim} p={saved.target_prob:.4f}"
    if saved.carries_target:
        if not args.json:
            print(f"saved file: {what} (lossy format, read back: {'a new label' if saved.away else 'still the target'})")
        return True
    if not args.json:
        print(f"saved file: {what} (lossy format, read back: {'the original label again' if saved.away else 'NOT the target'})")
    if args.allow_lossy:
        return True
    print(f"caffe-relabel: warning: {saved.path} lost the target in lossy compression; save as .png to keep "
          f"it exact, or pass --allow-lossy to accept a lossy file", file=sys.stderr)
    return False


def register(sub: "argparse._SubParsersAction") -> None:
    """Add `classify` and `relabel` to the main command's subparsers."""
    p = sub.add_parser("classify", help="top classes of an image")
    p.add_argument("image")
    p.add_argument("--top", type=positive_int, default=5, help="how many classes to print (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_model_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("relabel", help="relabel an image to a target class")
    p.add_argument("image")
    aim = p.add_mutually_exclusive_group(required=True)
    aim.add_argument("--target", "-t", help="class index, WordNet id or class name")
    aim.add_argument("--untargeted", action="store_true",
                     help="any label but the original: step away from it until the label changes")
    aim.add_argument("--least-likely", action="store_true", help="target the original image's least likely class")
    p.add_argument("--output", "-o", help="save the relabelled image (PNG keeps it exact; a lossy .jpg/.webp is read "
                                          "back and classified: exit 1 if it lost the target)")
    p.add_argument("--allow-lossy", action="store_true",
                   help="accept a lossy -o file that lost the target (exit 0), and --ensure-uint8 with it")
    add_relabel_options(p, 0.01)
    p.add_argument("--ensure-uint8", action="store_true", help="keep going until the 8-bit image carries the target label")
    p.add_argument("--confidence", type=finite_float, default=0.0, help="also require the target's probability to reach this (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_model_args(p)
    p.set_defaults(func=cmd_relabel)
