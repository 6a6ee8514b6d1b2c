"""A Caffe network as attack libraries expect a model: [0, 1] RGB images in, logits out.

Foolbox 3 (``PyTorchModel(module, bounds=(0, 1))``), torchattacks and plain
torch code assume a ``torch.nn.Module`` that takes N x 3 x H x W images in
[0, 1] and returns N x K logits. A Caffe network takes its own blob (BGR,
0..255, mean subtracted, ...), so :class:`ImageModule` puts the data
transform in front of it: exactly :func:`caffe_relabel.images.preprocess.image_to_blob`,
differentiable, on the network's device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import InputSpec


class ImageModule(nn.Module):
    """``module(x)``: the N x K logits for N x C x H x W images in [0, 1] at the input size.

    C is 3 (RGB, whatever the network's channel order) or 1 for a grey network.
    The blob is ``(pixel * raw_scale - mean) * input_scale`` in the network's
    channel order, as :func:`~caffe_relabel.images.preprocess.image_to_blob`
    builds it: computed in float64 and rounded once to float32, so the network
    sees the very blob the Relabeller would give it.
    """

    def __init__(self, net: nn.Module, spec: InputSpec) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self._flip = spec.channel_order == "BGR"
        self._raw_scale = float(spec.raw_scale)
        self._input_scale = float(spec.input_scale)
        device = getattr(net, "device", "cpu")  # the engine's CaffeNet says where it runs
        mean = torch.from_numpy(np.ascontiguousarray(spec.mean_blob(), dtype=np.float64))[None]
        # A buffer: it follows the module to another device with .to().
        self.register_buffer("mean", mean.to(device), persistent=False)
        self.eval()  # Foolbox warns on a module in training mode; nothing here trains

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.spec.shape:
            c, h, w = self.spec.shape
            raise ArgumentError(
                f"expected images of shape N x {c} x {h} x {w} with values in [0, 1], got {list(x.shape)}"
            )
        if not x.is_floating_point():
            raise ArgumentError(f"expected floating-point images in [0, 1], got dtype {x.dtype}")
        if self._flip:
            x = x.flip(1)  # RGB -> BGR
        blob = (x.to(torch.float64) * self._raw_scale - self.mean.to(torch.float64)) * self._input_scale
        return self.net(blob.to(torch.float32)).flatten(1)  # N x K

    def extra_repr(self) -> str:
        return f"input={self.spec!r}"
