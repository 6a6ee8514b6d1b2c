"""Pooling (MAX, AVE, global), exactly as pooling_layer.cpp.

Caffe's rules, all of which differ from a naive framework call somewhere:
the output size rounds UP by default (round_mode CEIL); with padding, a last
window that would start in the padding is dropped; AVE divides by the window
clipped to the padded input (not to the image); MAX takes the FIRST maximum
in scan order (the gradient goes there on ties; torch's CPU and CUDA kernels
also keep the first, and padding never wins because Caffe's windows are
clipped to the image, which -inf padding reproduces).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caffe_relabel.netdef.layers.pooling import PoolWindow
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import PoolingParameter
from caffe_relabel.engine.spec import Build, CaffeLayer


def _native_sizes(g: PoolWindow) -> tuple[int, int]:
    # torch's rule (pooling_output_shape) drops the last window whatever the pad.
    sizes = []
    for size, k, s, p in zip(g.size, g.kernel, g.stride, g.pad):
        n = (size + 2 * p - k + (s - 1 if g.ceil else 0)) // s + 1
        if g.ceil and (n - 1) * s >= size + p:
            n -= 1
        sizes.append(n)
    return sizes[0], sizes[1]


def _divisors(g: PoolWindow, device: torch.device) -> torch.Tensor:
    """AVE pool_size per output cell: the window clipped to the padded input."""
    height, width = g.size
    rows = [min(i * g.stride[0] - g.pad[0] + g.kernel[0], height + g.pad[0]) - (i * g.stride[0] - g.pad[0])
            for i in range(g.out[0])]
    cols = [min(j * g.stride[1] - g.pad[1] + g.kernel[1], width + g.pad[1]) - (j * g.stride[1] - g.pad[1])
            for j in range(g.out[1])]
    return torch.outer(torch.tensor(rows, dtype=torch.float32), torch.tensor(cols, dtype=torch.float32)).to(device)


class Pool2d(CaffeLayer):
    """Caffe pooling over the last two axes of an N x C x H x W blob."""

    def __init__(self, g: PoolWindow, device: torch.device) -> None:
        super().__init__()
        self.method, self.g, self.ceil = g.method, g, g.ceil
        # torch's padded pooling matches Caffe whenever it yields the same
        # output size and accepts the padding (torch requires pad <= kernel / 2).
        self.native = _native_sizes(g) == g.out and all(2 * p <= k for p, k in zip(g.pad, g.kernel))
        if not self.native:
            # Explicit padding up to the extent the windows cover, then unpadded pooling.
            right = [(n - 1) * s + k - size - p for n, s, k, size, p in zip(g.out, g.stride, g.kernel, g.size, g.pad)]
            self.padding = (g.pad[1], right[1], g.pad[0], right[0])
            if g.method == PoolingParameter.AVE:
                self.register_buffer("divisor", _divisors(g, device), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        g = self.g
        if self.method == PoolingParameter.MAX:
            if self.native:
                return (F.max_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil),)
            return (F.max_pool2d(F.pad(x, self.padding, value=float("-inf")), g.kernel, g.stride),)
        if self.native:
            return (F.avg_pool2d(x, g.kernel, g.stride, g.pad, ceil_mode=self.ceil, count_include_pad=True),)
        sums = F.avg_pool2d(F.pad(x, self.padding), g.kernel, g.stride, divisor_override=1)
        return (sums / self.divisor,)


def build_pooling(b: Build) -> Pool2d:
    return Pool2d(b.geometry, b.device)
