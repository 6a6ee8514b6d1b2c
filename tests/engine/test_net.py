"""CaffeNet runs in its numerics' memory layout whatever the caller's strides."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffe_relabel.engine import build_net  # noqa: E402
from caffe_relabel.netdef.proto.io import parse_net  # noqa: E402

NET = '''
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 9 dim: 9 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 5 } }
'''


@pytest.mark.parametrize("numerics,layout", [("faithful", torch.contiguous_format), ("fast", torch.channels_last)])
def test_input_strides_do_not_change_the_layout(numerics: str, layout: torch.memory_format) -> None:
    rng = np.random.default_rng(0)
    shapes = {"conv": [(4, 3, 3, 3), (4,)], "fc": [(5, 4 * 7 * 7), (5,)]}
    weights = {name: [rng.normal(0, 0.5, size=s).astype(np.float32) for s in blobs] for name, blobs in shapes.items()}
    net = build_net(parse_net(NET), weights, numerics=numerics, source="net.prototxt")
    # An N x H x W x C numpy batch seen as N x C x H x W: channels-last strides, as peers and users pass it.
    nhwc = torch.from_numpy(rng.normal(size=(2, 9, 9, 3)).astype(np.float32)).permute(0, 3, 1, 2)
    blobs = net.blobs(nhwc, ["data", "conv"])
    assert all(b.is_contiguous(memory_format=layout) for b in blobs.values())
    x = nhwc.contiguous().requires_grad_(True)
    y = nhwc.clone(memory_format=torch.preserve_format).requires_grad_(True)
    got, want = net(y), net(x)
    assert torch.equal(got, want)
    assert torch.equal(torch.autograd.grad(got.sum(), y)[0], torch.autograd.grad(want.sum(), x)[0])


DEPTHWISE_NET = '''
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } } }
layer { name: "dw" type: "Convolution" bottom: "data" top: "dw"
        convolution_param { num_output: 4 kernel_size: 3 group: 4 } }
layer { name: "relu" type: "ReLU" bottom: "dw" top: "dw" }
layer { name: "pw" type: "Convolution" bottom: "dw" top: "pw" convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "pw" bottom: "pw" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool" pooling_param { pool: AVE kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
'''


def test_faithful_depthwise_blocks_pass_channels_last_and_the_rest_get_nchw() -> None:
    rng = np.random.default_rng(0)
    shapes = {"dw": [(4, 1, 3, 3), (4,)], "pw": [(6, 4, 1, 1), (6,)], "fc": [(5, 6 * 5 * 5), (5,)]}
    weights = {name: [rng.normal(0, 0.5, size=s).astype(np.float32) for s in blobs] for name, blobs in shapes.items()}
    net = build_net(parse_net(DEPTHWISE_NET), weights, source="net.prototxt")
    seen: dict[str, bool] = {}
    for step, module in zip(net.steps, net.layers):
        module.register_forward_pre_hook(
            lambda m, args, name=step.name: seen.__setitem__(name, all(a.is_contiguous() for a in args)))
    x = torch.from_numpy(rng.normal(size=(2, 4, 9, 9)).astype(np.float32)).requires_grad_(True)
    blobs = net.blobs(x, ["dw", "pw", "sum", "fc"])
    cl = torch.channels_last
    # The depthwise output, its ReLU, the 1 x 1 convolution and the sum stay channels-last ...
    assert all(blobs[b].is_contiguous(memory_format=cl) and not blobs[b].is_contiguous() for b in ("dw", "pw", "sum"))
    # ... and the pooling (a sum over its window) and the inner product are handed NCHW.
    assert seen["relu"] is False and seen["pool"] is True and seen["fc"] is True
    (grad,) = torch.autograd.grad(blobs["fc"].sum(), x)
    # The same net all NCHW (the 1 x 1 convolution by im2col): float32 rounding apart.
    for module in net.layers:
        module._forward_pre_hooks.clear()
    nchw = net.layers[[s.name for s in net.steps].index("dw")]
    nchw.forward = lambda t, conv=nchw, plain=type(nchw).forward: tuple(o.contiguous() for o in plain(conv, t))
    y = torch.from_numpy(x.detach().numpy().copy()).requires_grad_(True)
    want = net(y)
    assert net.blobs(y, ["pw"])["pw"].is_contiguous()
    torch.testing.assert_close(blobs["fc"], want, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(grad, torch.autograd.grad(want.sum(), y)[0], rtol=1e-6, atol=1e-5)
