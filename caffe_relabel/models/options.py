"""Every option that names a model, as one record (loaded by :func:`caffe_relabel.models.model.load_model`).

The command line's model options map field for field onto :class:`ModelOptions`
(``--train-val`` is ``train_val``, ``--engine-mode`` is ``numerics``), so the
CLI, the experiments and a Python user build a model the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence

from caffe_relabel.errors import ArgumentError, CaffeRelabelError
from caffe_relabel.images.preprocess import InputSpec

#: ``random:<zoo name>``: the zoo net with seeded random weights (see caffe_relabel.models.testmodels).
RANDOM_PREFIX = "random:"

DEFAULT_MODEL = "bvlc_googlenet"

#: ``interpolation``'s names -> InputSpec's spline orders.
INTERPOLATIONS = {"nearest": 0, "bilinear": 1, "bicubic": 3}

# The transform options only a prototxt net takes (a zoo model knows its input), with their flags.
_TRANSFORM_OPTIONS = (("train_val", "--train-val"), ("mean", "--mean"), ("mean_file", "--mean-file"),
                      ("raw_scale", "--raw-scale"), ("input_scale", "--input-scale"))


@dataclass(frozen=True)
class ModelOptions:
    """A zoo model by name, or a deploy prototxt + caffemodel with its input transform; where it runs.

    The transform of a prototxt net is Caffe's: blob = (pixel * raw_scale - mean) * input_scale,
    from ``train_val``'s TEST-phase transform_param, overridden by the fields given.
    ``labels``: a synset_words.txt-style file of class names (any model).
    ``numerics``: the engine's (:data:`caffe_relabel.numerics.NUMERICS`).
    """

    model: str = DEFAULT_MODEL  # zoo name or random:<zoo name>; ignored with a prototxt
    prototxt: Optional[str] = None
    weights: Optional[str] = None
    train_val: Optional[str] = None
    mean: Optional[Sequence[float]] = None  # per channel, the net's channel order, on the raw scale
    mean_file: Optional[str] = None
    raw_scale: Optional[float] = None  # None: 255
    input_scale: Optional[float] = None  # None: train_val's scale, else 1
    channel_order: str = "BGR"
    resize: Optional[int] = 256  # None or 0: straight to the input size
    interpolation: str = "bilinear"  # a name of INTERPOLATIONS
    resample: str = "skimage"  # InputSpec.resample
    labels: Optional[str] = None
    backend: str = "auto"
    device: str = "cpu"
    numerics: str = "faithful"

    def check(self) -> None:
        """Refuse combinations that cannot name one model (before anything is loaded)."""
        if self.prototxt is None:
            if self.weights is not None:
                raise CaffeRelabelError("--weights needs --prototxt")
            given = [flag for name, flag in _TRANSFORM_OPTIONS if getattr(self, name) is not None]
            if given:
                raise ArgumentError(
                    f"{', '.join(given)}: only with --prototxt (zoo model {self.model!r} knows its input)")
            return
        if self.weights is None:
            raise CaffeRelabelError("--prototxt needs --weights")
        if self.mean is not None and self.mean_file is not None:
            raise ArgumentError("--mean and --mean-file: expected one of them")
        if self.mean is None and self.mean_file is None and self.train_val is None:
            raise CaffeRelabelError("--prototxt needs --mean B,G,R, --mean-file or --train-val (the net's input mean)")

    def input_spec(self, shape: "tuple[int, int, int]") -> InputSpec:
        """A prototxt net's input transform for its input ``shape`` (C, H, W)."""
        _, h, w = shape
        mean = None if self.mean is None else tuple(float(v) for v in self.mean)
        if self.mean_file is not None:
            from caffe_relabel.netdef.proto import read_mean

            mean = read_mean(self.mean_file)
        raw_scale = 255.0 if self.raw_scale is None else self.raw_scale
        if self.interpolation not in INTERPOLATIONS:
            raise ArgumentError(f"--interpolation: expected {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        resizing = {"resize": self.resize or None, "interpolation": INTERPOLATIONS[self.interpolation],
                    "resample": self.resample}
        try:
            if self.train_val is not None:
                spec = InputSpec.from_transform_param(self.train_val, (h, w), channel_order=self.channel_order,
                                                      raw_scale=raw_scale, **resizing)
                changes = {"mean": mean, "input_scale": self.input_scale}
                return dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
            return InputSpec(size=(h, w), channel_order=self.channel_order, mean=mean, raw_scale=raw_scale,
                             input_scale=1.0 if self.input_scale is None else self.input_scale, **resizing)
        except ArgumentError as e:
            raise ArgumentError(f"--mean/--channel-order/--resample: {e}") from None
