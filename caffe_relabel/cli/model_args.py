"""The options that name a model, shared by every command that loads one, and their ModelOptions."""

from __future__ import annotations

import argparse
from typing import Optional

from caffe_relabel.backends import BACKEND_CHOICES
from caffe_relabel.cli.options import device, natural_int, positive_float
from caffe_relabel.images.resize import RESAMPLERS
from caffe_relabel.models.options import DEFAULT_MODEL, INTERPOLATIONS, ModelOptions
from caffe_relabel.numerics import NUMERICS

_DEFAULTS = ModelOptions()


def mean_values(text: str) -> tuple[float, ...]:
    """Comma-separated per-channel means, e.g. 104,117,123."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_model_args(p: argparse.ArgumentParser, default_model: Optional[str] = DEFAULT_MODEL,
                   model_help: str = "zoo model name; see `models list`", many: bool = False) -> None:
    """Add the model options to ``p``; :func:`model_options` reads them back.

    ``many``: --model takes several zoo names (``model_help`` then states the default).
    """
    g = p.add_argument_group(
        "model",
        "A zoo model (--model) knows its input. A --prototxt net's input transform is Caffe's: "
        "blob = (pixel * raw_scale - mean) * input_scale, pixel in [0, 1], resized (--resize, --interpolation, "
        "--resample) and centre-cropped to the net's input size; from --train-val's transform_param, or from the "
        "options below (which win over it). Options spelled as Caffe's classify.py spells them work too "
        "(--raw_scale, ...).",
    )
    if many:
        g.add_argument("--model", "-m", nargs="+", default=default_model, help=model_help)
    else:
        g.add_argument("--model", "-m", default=default_model, help=f"{model_help} (default {default_model})")
    g.add_argument("--prototxt", help="a deploy prototxt (instead of --model; default none)")
    g.add_argument("--weights", help="the caffemodel for --prototxt (default none)")
    g.add_argument("--train-val", "--train_val", dest="train_val", metavar="PROTOTXT",
                   help="the train_val prototxt the net was trained with: its TEST-phase transform_param gives "
                   "mean_value or mean_file, scale (as --input-scale) and crop_size (must be the input size); "
                   "mirror is ignored (a training augmentation); default none")
    g.add_argument("--mean", type=mean_values,
                   help="per-channel mean in the net's channel order on the raw scale, e.g. 104,117,123 (default none)")
    g.add_argument("--mean-file", "--mean_file", dest="mean_file", help="a mean binaryproto (default none)")
    g.add_argument("--raw-scale", "--raw_scale", dest="raw_scale", type=positive_float, default=None,
                   help="the pixel range the mean is given in (default 255: 8-bit pixels)")
    g.add_argument("--input-scale", "--input_scale", dest="input_scale", type=positive_float, default=None,
                   help="multiplies the blob after the mean is subtracted: Caffe's transform_param scale, "
                   "e.g. 0.00390625 for LeNet, 0.017 for MobileNet (default 1)")
    g.add_argument("--channel-order", choices=["BGR", "RGB", "GREY"], default=_DEFAULTS.channel_order,
                   help=f"the net's channel order (default {_DEFAULTS.channel_order}; "
                   "classify.py's --channel_swap 2,1,0 is BGR)")
    g.add_argument("--resize", type=natural_int, default=_DEFAULTS.resize,
                   help="shorter side before the centre crop to the input size, 0 = resize straight to the input "
                   f"size (default {_DEFAULTS.resize})")
    g.add_argument("--interpolation", choices=list(INTERPOLATIONS), default=_DEFAULTS.interpolation,
                   help=f"how the image is resized (default {_DEFAULTS.interpolation}, as caffe.io)")
    g.add_argument("--resample", choices=list(RESAMPLERS), default=_DEFAULTS.resample,
                   help="who resizes: skimage (scikit-image, as caffe.io and the paper) or pillow (Pillow's "
                   "anti-aliased resize, a far faster bicubic; nearest, bilinear or bicubic) "
                   f"(default {_DEFAULTS.resample})")
    g.add_argument("--labels", metavar="SYNSET_WORDS",
                   help="class names, one '<id> <name>' line per class as Caffe's synset_words.txt "
                   "(default: the zoo model's, ImageNet's for a 1000-class net, else the class index)")
    g.add_argument("--backend", choices=BACKEND_CHOICES, default=_DEFAULTS.backend,
                   help=f"who runs the net: pycaffe (real Caffe) or the engine (PyTorch); auto takes pycaffe "
                   f"when it imports (default {_DEFAULTS.backend})")
    g.add_argument("--device", type=device, default=_DEFAULTS.device, help=f"cpu, gpu:N (default {_DEFAULTS.device})")
    g.add_argument("--engine-mode", choices=NUMERICS, default=_DEFAULTS.numerics,
                   help="the engine's numerics: faithful (default: Caffe's algorithms, im2col convolutions on CPU), "
                   "fast (channels-last oneDNN on CPU; TF32 and cuDNN autotuning on GPU), fast-bf16 (GPU bfloat16). "
                   "With --backend auto, numerics other than faithful pick the engine; fast-bf16 only on a GPU")


def model_options(args: argparse.Namespace, model: Optional[str] = None) -> ModelOptions:
    """The ModelOptions of parsed model options (``model``: this zoo name instead of --model's)."""
    return ModelOptions(model=args.model if model is None else model, prototxt=args.prototxt, weights=args.weights,
                        train_val=args.train_val,
                        mean=args.mean, mean_file=args.mean_file, raw_scale=args.raw_scale,
                        input_scale=args.input_scale, channel_order=args.channel_order, resize=args.resize,
                        interpolation=args.interpolation, resample=args.resample,
                        labels=args.labels, backend=args.backend, device=args.device, numerics=args.engine_mode)
