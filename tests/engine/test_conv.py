"""The faithful CPU convolution: Caffe's im2col + GEMM in the forward and in any backward.

Against real Caffe, convolutions are covered by test_layers.py; here, that the
algorithm holds however the backward is reached (torch picks its kernels again
when a backward runs, so a caller's own autograd call, outside the engine,
must still get im2col), and that the custom backward is the convolution's
derivative (gradcheck in float64, weights and bias included).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from caffe_relabel.engine.layers.conv import Conv2d, ConvTranspose2d, _Im2colConvolution  # noqa: E402

# (module class, weight shape, stride, pad, dilation, group): Caffe's awkward settings.
GEOMETRIES = {
    "grouped": (Conv2d, (6, 2, 3, 3), (2, 1), (1, 0), (1, 1), 2),
    "dilated": (Conv2d, (4, 4, 3, 2), (1, 2), (2, 1), (2, 1), 1),
    "depthwise": (Conv2d, (4, 1, 3, 3), (1, 1), (1, 1), (1, 1), 4),
    "deconvolution": (ConvTranspose2d, (4, 3, 4, 4), (2, 2), (1, 1), (1, 1), 1),
    "deconvolution_grouped": (ConvTranspose2d, (4, 1, 3, 3), (2, 1), (0, 1), (1, 1), 2),
}


def layer(geometry: str, dtype: torch.dtype, im2col: bool = True) -> Conv2d:
    cls, shape, stride, pad, dilation, group = GEOMETRIES[geometry]
    g = torch.Generator().manual_seed(1)
    out_channels = shape[1] * group if cls is ConvTranspose2d else shape[0]
    return cls(torch.randn(shape, generator=g, dtype=dtype), torch.randn(out_channels, generator=g, dtype=dtype),
               stride, pad, dilation, group, im2col)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_any_backward_runs_im2col(geometry: str) -> None:
    conv = layer(geometry, torch.float32)
    x = torch.randn(3, 4, 13, 11, generator=torch.Generator().manual_seed(2))
    grad_out = None

    def run(module: Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal grad_out
        xx = x.clone().requires_grad_(True)
        y = module(xx)[0]
        if grad_out is None:
            grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
        return y.detach(), torch.autograd.grad(y, xx, grad_out)[0]

    assert torch.backends.mkldnn.enabled  # oneDNN on, as in a caller's program
    got = run(conv)
    assert torch.backends.mkldnn.enabled and torch._C._get_nnpack_enabled()  # and left on
    # The reference: the plain op with oneDNN and NNPACK off for the forward and the backward.
    plain = layer(geometry, torch.float32, im2col=False)
    torch.backends.mkldnn.set_flags(False, None, None, None)
    torch.backends.nnpack.set_flags(False)
    try:
        want = run(plain)
    finally:
        torch.backends.mkldnn.set_flags(True, None, None, None)
        torch.backends.nnpack.set_flags(True)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_im2col_backward_is_the_derivative(geometry: str) -> None:
    conv = layer(geometry, torch.float64)
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in (x, conv.weight, conv.bias))
    assert torch.autograd.gradcheck(lambda x, w, b: _Im2colConvolution.apply(x, w, b, conv), inputs)
