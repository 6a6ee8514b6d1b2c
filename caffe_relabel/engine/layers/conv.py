"""Convolution and Deconvolution (2-D, with group and dilation), as base_conv_layer.cpp / conv_layer.cpp /
deconv_layer.cpp.

The geometry (kernel, stride, pad, dilation, group) and the blob shapes come
from the layer's rule (caffe_relabel/layers/conv.py).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ...layers.conv import ConvGeometry
from ..spec import Build, CaffeLayer


class Conv2d(CaffeLayer):
    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: tuple[int, int],
                 pad: tuple[int, int], dilation: tuple[int, int], group: int) -> None:
        super().__init__()
        self.add_blob("weight", weight)
        self.add_blob("bias", bias)
        self.stride, self.pad, self.dilation, self.group = stride, pad, dilation, group

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation, self.group),)


def build_convolution(b: Build) -> Conv2d:
    g: ConvGeometry = b.geometry
    return Conv2d(b.blobs[0], b.blobs[1] if len(b.blobs) == 2 else None, g.stride, g.pad, g.dilation, g.group)


class ConvTranspose2d(Conv2d):
    """Caffe's Deconvolution is the convolution's backward-data pass: conv_transpose2d, weights
    in x (out / group) x kh x kw in both."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.pad, 0, self.group, self.dilation),)


def build_deconvolution(b: Build) -> ConvTranspose2d:
    g: ConvGeometry = b.geometry
    return ConvTranspose2d(b.blobs[0], b.blobs[1] if len(b.blobs) == 2 else None, g.stride, g.pad, g.dilation,
                           g.group)
