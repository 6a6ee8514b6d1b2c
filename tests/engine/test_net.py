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
