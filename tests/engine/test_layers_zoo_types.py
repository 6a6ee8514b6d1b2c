"""The layer types Model Zoo classifiers add (BNLL, Clip, Swish, Threshold, Deconvolution, Tile,
Reduction, MVN, Silence, Parameter, ArgMax, the squeeze-and-excitation Scale) against real Caffe.

Tolerance as tests/engine/test_layers.py: 1e-5 relative (float32 on both
sides, differing only by summation order). Where both sides do the same
float32 operations in the same order (the ReLU6 pattern), equality is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.conftest import requires_pycaffe
from tests.engine.harness import relative_error, run_both
from tests.engine.test_layers import TOL, conv

pytestmark = requires_pycaffe


def one(type_: str, params: str = "", bottom: str = "data") -> str:
    return f'layer {{ name: "out" type: "{type_}" bottom: "{bottom}" top: "out" {params} }}'


SE_BLOCK = (conv("feat", "data", "num_output: 6 kernel_size: 3 pad: 1")
            + 'layer { name: "pool" type: "Pooling" bottom: "feat" top: "pool" pooling_param { pool: AVE global_pooling: true } } '
            + conv("squeeze", "pool", "num_output: 2 kernel_size: 1")
            + 'layer { name: "relu" type: "ReLU" bottom: "squeeze" top: "squeeze" } '
            'layer { name: "excite" type: "InnerProduct" bottom: "squeeze" top: "excite" inner_product_param { num_output: 6 } } '
            'layer { name: "gate" type: "Sigmoid" bottom: "excite" top: "excite" } '
            'layer { name: "out" type: "Scale" bottom: "feat" bottom: "excite" top: "out" scale_param { axis: 0 } }')

# (id, layers after the "data" Input layer, input shape, output blob)
CASES = [
    ("bnll", one("BNLL"), (2, 3, 4, 4), "out"),
    ("swish", one("Swish"), (2, 3, 4, 4), "out"),
    ("swish_beta", one("Swish", "swish_param { beta: 0.7 }"), (2, 3, 4, 4), "out"),
    ("swish_in_place", conv("c", "data", "num_output: 3 kernel_size: 1") + 'layer { name: "s" type: "Swish" bottom: "c" top: "c" swish_param { beta: 1.5 } } '
     'layer { name: "out" type: "Scale" bottom: "c" top: "out" }', (2, 3, 4, 4), "out"),
    ("clip", one("Clip", "clip_param { min: -1 max: 0.5 }"), (2, 3, 4, 4), "out"),
    ("clip_min_above_max", one("Clip", "clip_param { min: 1 max: -1 }"), (2, 3, 4, 4), "out"),
    ("deconv_group_dilation", one("Deconvolution", "convolution_param { num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1 dilation: 2 }"),
     (2, 4, 5, 6), "out"),
    ("deconv_hw_gaps_nobias", one("Deconvolution", "convolution_param { num_output: 3 kernel_h: 2 kernel_w: 3 stride_h: 3 stride_w: 2 "
                                                   "pad_h: 0 pad_w: 2 bias_term: false }"), (1, 2, 4, 5), "out"),
    ("deconv_depthwise_upsample", one("Deconvolution", "convolution_param { num_output: 3 group: 3 kernel_size: 4 stride: 2 pad: 1 }"),
     (2, 3, 5, 5), "out"),
    ("tile_channels", one("Tile", "tile_param { axis: 1 tiles: 3 }"), (2, 2, 3, 4), "out"),
    ("tile_last_axis", one("Tile", "tile_param { axis: -1 tiles: 2 }"), (2, 3, 2, 3), "out"),
    ("reduction_sum", one("Reduction", "reduction_param { operation: SUM axis: 1 }"), (2, 3, 4, 4), "out"),
    ("reduction_asum_coeff", one("Reduction", "reduction_param { operation: ASUM axis: 2 coeff: -0.5 }"), (2, 3, 4, 4), "out"),
    ("reduction_sumsq", one("Reduction", "reduction_param { operation: SUMSQ axis: -1 }"), (2, 3, 4, 5), "out"),
    ("reduction_mean_coeff", one("Reduction", "reduction_param { operation: MEAN axis: 1 coeff: 3 }"), (2, 3, 4, 7), "out"),
    ("mvn", one("MVN"), (2, 3, 4, 5), "out"),
    ("mvn_across_channels", one("MVN", "mvn_param { across_channels: true }"), (2, 3, 4, 5), "out"),
    ("mvn_mean_only", one("MVN", "mvn_param { normalize_variance: false }"), (2, 3, 4, 5), "out"),
    # eps 0.5 is where Caffe's backward (no eps in the variance term) departs from the exact derivative.
    ("mvn_big_eps", one("MVN", "mvn_param { eps: 0.5 across_channels: true }"), (2, 3, 2, 2), "out"),
    ("mvn_two_axes", 'layer { name: "f" type: "InnerProduct" bottom: "data" top: "f" inner_product_param { num_output: 5 } } '
     + one("MVN", "mvn_param { across_channels: true }", bottom="f"), (3, 2, 2, 2), "out"),
    ("silence", conv("b", "data", "num_output: 2 kernel_size: 1") + 'layer { name: "quiet" type: "Silence" bottom: "b" } '
     + conv("out", "data", "num_output: 2 kernel_size: 3"), (2, 3, 5, 5), "out"),
    ("parameter_scales", 'layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 3 dim: 4 } } } '
     'layer { name: "out" type: "Scale" bottom: "data" bottom: "p" top: "out" scale_param { axis: 1 } }', (2, 3, 4, 2), "out"),
    ("se_block", SE_BLOCK, (2, 3, 5, 5), "out"),
]


@pytest.mark.parametrize("body,shape,output", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layer_matches_caffe(body: str, shape: tuple, output: str) -> None:
    r = run_both(body, shape, output)
    assert r.engine_out.shape == r.caffe_out.shape
    assert relative_error(r.engine_out, r.caffe_out) <= TOL
    assert relative_error(r.engine_grad, r.caffe_grad) <= TOL
    if "min: 1 max: -1" not in body:  # that Clip is a constant
        assert np.abs(r.caffe_grad).max() > 0  # the gradient reached the input: the comparison means something


def _grid(shape: tuple, values: list) -> np.ndarray:
    """An input holding each of ``values`` (the kinks) and random values around them."""
    x = np.random.default_rng(1).normal(0.0, 3.0, size=shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[:len(values)] = values
    return x


@pytest.mark.parametrize("body,values", [
    (one("Clip", "clip_param { min: -1 max: 0.5 }"), [-1.0, 0.5, -1.0000001, 0.50000006, 0.0]),
    (one("Reduction", "reduction_param { operation: ASUM axis: 1 }"), [0.0, -0.0, 0.0, 1e-30]),
    # Above 50 Caffe's backward caps exp; above 88 exp overflows float32.
    (one("BNLL"), [0.0, 49.9, 50.0, 50.1, 89.0, -89.0, 120.0, -120.0]),
])
def test_kinks_match_caffe(body: str, values: list) -> None:
    r = run_both(body, (2, 3, 4, 4), "out", input_values=_grid((2, 3, 4, 4), values))
    assert relative_error(r.engine_out, r.caffe_out) <= TOL
    assert relative_error(r.engine_grad, r.caffe_grad) <= TOL
    # At the kinks themselves the gradient is Caffe's exactly.
    assert np.array_equal(r.engine_grad.reshape(-1)[:len(values)], r.caffe_grad.reshape(-1)[:len(values)])


RELU6 = ('layer { name: "r" type: "ReLU" bottom: "data" top: "data" } '
         'layer { name: "flip" type: "Power" bottom: "data" top: "flip" power_param { scale: -1 shift: 6 } } '
         'layer { name: "fr" type: "ReLU" bottom: "flip" top: "flip" } '
         'layer { name: "out" type: "Power" bottom: "flip" top: "out" power_param { scale: -1 shift: 6 } }')


def test_relu6_pattern_is_bit_exact_at_the_kinks() -> None:
    # 0 and 6 exactly (Caffe's ReLU passes no gradient at 0, so neither end does), values that
    # 6 - (6 - x) rounds (1e-8 -> 0), and the floats either side of 6.
    values = [0.0, -0.0, 6.0, 1e-8, 3e-7, np.nextafter(np.float32(6), np.float32(0)),
              np.nextafter(np.float32(6), np.float32(7)), 2.9999998, 5.9, -1e-8]
    r = run_both(RELU6, (2, 3, 4, 4), "out", input_values=_grid((2, 3, 4, 4), values))
    assert np.array_equal(r.engine_out, r.caffe_out)
    assert np.array_equal(r.engine_grad, r.caffe_grad)
    assert r.caffe_grad.reshape(-1)[0] == 0 and r.caffe_grad.reshape(-1)[2] == 0


@pytest.mark.parametrize("body", [
    one("Power", "power_param { scale: 0.3 shift: -2 }"),
    one("Power", "power_param { scale: 1 shift: 1.5 }"),
    one("Power", "power_param { scale: -2.5 }"),
    one("Power", "power_param { scale: -1 shift: 0.1 power: 3 }"),
])
def test_power_paths_are_bit_exact(body: str) -> None:
    r = run_both(body, (2, 3, 4, 4), "out")
    if "power: 3" in body:
        # Caffe's powx and its y / (shift + scale x) backward differ from x * x * x in the last bits.
        assert relative_error(r.engine_out, r.caffe_out) <= TOL
        assert relative_error(r.engine_grad, r.caffe_grad) <= TOL
    else:
        assert np.array_equal(r.engine_out, r.caffe_out)
        assert np.array_equal(r.engine_grad, r.caffe_grad)


@pytest.mark.parametrize("body,values", [
    (one("Threshold", "threshold_param { threshold: 0.25 }"), [0.25, 0.2500001, 0.0]),
    (one("ArgMax", "argmax_param { top_k: 3 out_max_val: true }"), None),
    (one("ArgMax", "argmax_param { axis: 1 top_k: 2 }"), None),
    (one("ArgMax", "argmax_param { axis: -3 out_max_val: true }"), None),
])
def test_forward_only_layers_match_caffe(body: str, values) -> None:
    # Rounded inputs: many exact ties, which ArgMax breaks toward the larger index as Caffe does.
    x = np.round(np.random.default_rng(2).normal(0.0, 1.0, size=(2, 4, 3, 3))).astype(np.float32)
    if values:
        x.reshape(-1)[:len(values)] = values
    r = run_both(body, x.shape, "out", input_values=x, gradient=False)
    assert np.array_equal(r.engine_out, r.caffe_out)


def test_threshold_passes_no_gradient() -> None:
    # A step: derivative 0 (Caffe has none); the sum's gradient is then exactly the top diff.
    import torch

    from caffe_relabel.engine import build_net
    from caffe_relabel.netdef.proto.io import parse_net

    text = ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } } '
            'layer { name: "t" type: "Threshold" bottom: "data" top: "t" } '
            'layer { name: "out" type: "Eltwise" bottom: "data" bottom: "t" top: "out" }')
    net = build_net(parse_net(text))
    x = torch.tensor([[-1.0, 0.0, 2.0], [0.5, -0.5, 0.0]], requires_grad=True)
    seed = torch.arange(6.0).reshape(2, 3)
    (grad,) = torch.autograd.grad(net(x), x, seed)
    assert torch.equal(grad, seed)
    assert torch.equal(net(x).detach(), x.detach() + (x.detach() > 0).float())
