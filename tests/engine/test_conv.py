"""The faithful CPU convolution: Caffe's im2col + GEMM in the forward and in any backward
(depthwise ones: oneDNN on channels-last tensors, engine/layers/conv.py).

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

from caffe_relabel.engine.layers.conv import IM2COL, ONEDNN_CHANNELS_LAST, Conv2d, ConvTranspose2d, \
    _ChannelsLastPointwise, _PinnedConvolution  # noqa: E402

# (module class, weight shape, stride, pad, dilation, group): Caffe's awkward settings.
GEOMETRIES = {
    "grouped": (Conv2d, (6, 2, 3, 3), (2, 1), (1, 0), (1, 1), 2),
    "dilated": (Conv2d, (4, 4, 3, 2), (1, 2), (2, 1), (2, 1), 1),
    "depthwise": (Conv2d, (4, 1, 3, 3), (1, 1), (1, 1), (1, 1), 4),
    "deconvolution": (ConvTranspose2d, (4, 3, 4, 4), (2, 2), (1, 1), (1, 1), 1),
    "deconvolution_grouped": (ConvTranspose2d, (4, 1, 3, 3), (2, 1), (0, 1), (1, 1), 2),
    "pointwise": (Conv2d, (6, 4, 1, 1), (1, 1), (0, 0), (1, 1), 1),
}


def layer(geometry: str, dtype: torch.dtype, im2col: bool = True) -> Conv2d:
    cls, shape, stride, pad, dilation, group = GEOMETRIES[geometry]
    g = torch.Generator().manual_seed(1)
    out_channels = shape[1] * group if cls is ConvTranspose2d else shape[0]
    return cls(torch.randn(shape, generator=g, dtype=dtype), torch.randn(out_channels, generator=g, dtype=dtype),
               stride, pad, dilation, group, im2col)


def forward_backward(module: Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The output and the input gradient of a fixed random output gradient."""
    xx = x.clone().requires_grad_(True)
    y = module(xx)[0]
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    return y.detach(), torch.autograd.grad(y, xx, grad_out)[0]


def test_only_depthwise_geometries_take_onednn() -> None:
    assert [g for g in GEOMETRIES if layer(g, torch.float32).depthwise] == ["depthwise"]


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if g != "depthwise"])
def test_any_backward_runs_im2col(geometry: str) -> None:
    conv = layer(geometry, torch.float32)
    x = torch.randn(3, 4, 13, 11, generator=torch.Generator().manual_seed(2))

    def run(module: Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
        return forward_backward(module, x)

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
    assert torch.autograd.gradcheck(lambda x, w, b: _PinnedConvolution.apply(x, w, b, conv, IM2COL), inputs)


@pytest.mark.parametrize("caller_mkldnn", [True, False])
def test_depthwise_runs_channels_last_onednn_in_any_backward(caller_mkldnn: bool) -> None:
    conv = layer("depthwise", torch.float32)
    x = torch.randn(3, 4, 13, 11, generator=torch.Generator().manual_seed(2))
    torch.backends.mkldnn.set_flags(caller_mkldnn, None, None, None)
    try:
        y, gx = forward_backward(conv, x)
        assert torch.backends.mkldnn.enabled == caller_mkldnn  # the caller's setting is left as it was
    finally:
        torch.backends.mkldnn.set_flags(True, None, None, None)
    # Channels-last out, as the block's next layers take it (the net gives the others NCHW copies).
    cl = torch.channels_last
    assert y.is_contiguous(memory_format=cl) and not y.is_contiguous() and gx.is_contiguous(memory_format=cl)
    # The reference: the plain op on channels-last tensors, oneDNN on.
    plain = layer("depthwise", torch.float32, im2col=False)
    plain.weight.data = plain.weight.data.contiguous(memory_format=torch.channels_last)
    want = forward_backward(plain, x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(y, want[0]) and torch.equal(gx, want[1])
    # And Caffe's im2col gives the same up to float32 rounding of a 9-term sum.
    im2col = forward_backward(im2col_depthwise(), x)
    assert torch.allclose(y, im2col[0], rtol=0, atol=1e-5) and torch.allclose(gx, im2col[1], rtol=0, atol=1e-5)


def im2col_depthwise() -> Conv2d:
    conv = layer("depthwise", torch.float32)
    conv.depthwise = False  # the im2col path, as the other geometries take it
    return conv


def test_depthwise_backward_is_the_derivative() -> None:
    conv = layer("depthwise", torch.float64)
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in (x, conv.weight, conv.bias))
    assert torch.autograd.gradcheck(lambda x, w, b: _PinnedConvolution.apply(x, w, b, conv, ONEDNN_CHANNELS_LAST), inputs)


def test_only_unit_stride_unpadded_single_group_1x1_is_pointwise() -> None:
    assert [g for g in GEOMETRIES if layer(g, torch.float32).pointwise] == ["pointwise"]
    cls, shape, _, _, dilation, group = GEOMETRIES["pointwise"]
    for stride, pad in (((2, 2), (0, 0)), ((1, 1), (1, 0))):
        assert not cls(torch.ones(shape), None, stride, pad, dilation, group, True).pointwise


def test_pointwise_on_channels_last_is_the_im2col_convolution_and_stays_channels_last() -> None:
    conv = layer("pointwise", torch.float32)
    x = torch.randn(3, 4, 13, 11, generator=torch.Generator().manual_seed(2))
    y, gx = forward_backward(conv, x.contiguous(memory_format=torch.channels_last))
    cl = torch.channels_last
    assert not y.is_contiguous() and y.is_contiguous(memory_format=cl) and gx.is_contiguous(memory_format=cl)
    want = forward_backward(conv, x)  # NCHW in: im2col, as every other geometry
    assert want[0].is_contiguous()
    # The same sums over 4 input channels (6 for the gradient), maybe in another order: float32 rounding apart.
    assert torch.allclose(y, want[0], rtol=0, atol=1e-5) and torch.allclose(gx, want[1], rtol=0, atol=1e-5)
    assert not torch.allclose(y, want[0] + 1e-3, rtol=0, atol=1e-5)


def test_pointwise_backward_is_the_derivative() -> None:
    conv = layer("pointwise", torch.float64)
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: _ChannelsLastPointwise.apply(x, conv.weight, conv.bias), (x,))
