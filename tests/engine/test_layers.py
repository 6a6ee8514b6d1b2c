"""Every engine layer against real Caffe on tiny nets with tricky settings.

Tolerances: outputs and input gradients within 1e-5 relative error, defined
as max |engine - caffe| / max |caffe| over the blob. Both sides are float32;
single layers differ only by summation order (a few ulp, ~1e-7 relative),
so 1e-5 leaves room for chains of two or three layers while still catching
any real semantic difference (a wrong divisor, window or rounding rule is
off by >= 1e-2).
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from tests.conftest import requires_pycaffe
from tests.engine.harness import relative_error, run_both

pytestmark = requires_pycaffe

TOL = 1e-5


def conv(name: str, bottom: str, params: str, top: str = "") -> str:
    return f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top or name}" convolution_param {{ {params} }} }}\n'


TWO_CONVS = conv("a", "data", "num_output: 4 kernel_size: 3 pad: 1") + conv("b", "data", "num_output: 4 kernel_size: 3 pad: 1")

# (id, layers after the "data" Input layer, input shape, output blob)
CASES = [
    ("conv_group_dilation", conv("out", "data", "num_output: 6 group: 2 dilation: 2 kernel_size: 3 pad: 1 stride: 2"), (2, 4, 11, 11), "out"),
    ("conv_hw_nobias", conv("out", "data", "num_output: 3 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1 bias_term: false"),
     (2, 2, 9, 8), "out"),
    ("conv_two_values", conv("out", "data", "num_output: 3 kernel_size: 3 kernel_size: 1 stride: 1 stride: 2 pad: 0 pad: 1"), (1, 2, 7, 7), "out"),
    ("pool_max_pad_ceil", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }', (2, 3, 7, 7), "out"),
    ("pool_max_ceil_edge", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }', (2, 3, 8, 6), "out"),
    ("pool_ave_pad_ceil", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }', (2, 3, 8, 8), "out"),
    ("pool_ave_drop_last", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }', (1, 2, 6, 5), "out"),
    ("pool_ave_big_pad", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 2 } }', (1, 2, 6, 7), "out"),
    ("pool_max_big_pad", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 2 pad_w: 1 } }', (1, 2, 5, 6), "out"),
    ("pool_floor", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR } }', (1, 2, 8, 8), "out"),
    ("pool_global_ave", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: AVE global_pooling: true } }', (2, 3, 5, 4), "out"),
    ("pool_global_max", 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: MAX global_pooling: true } }', (2, 3, 5, 4), "out"),
    ("lrn_across_3", 'layer { name: "out" type: "LRN" bottom: "data" top: "out" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }', (2, 5, 4, 4), "out"),
    ("lrn_across_5", 'layer { name: "out" type: "LRN" bottom: "data" top: "out" lrn_param { local_size: 5 alpha: 0.3 beta: 0.6 } }', (2, 7, 3, 3), "out"),
    ("lrn_across_wider_than_channels", 'layer { name: "out" type: "LRN" bottom: "data" top: "out" lrn_param { local_size: 7 alpha: 1 beta: 0.75 } }', (1, 3, 3, 3), "out"),
    ("lrn_within_3", 'layer { name: "out" type: "LRN" bottom: "data" top: "out" lrn_param { norm_region: WITHIN_CHANNEL local_size: 3 alpha: 0.5 beta: 0.75 } }', (2, 3, 5, 6), "out"),
    ("lrn_within_5", 'layer { name: "out" type: "LRN" bottom: "data" top: "out" lrn_param { norm_region: WITHIN_CHANNEL local_size: 5 alpha: 2 beta: 0.5 } }', (1, 2, 6, 6), "out"),
    ("inner_product_axis2", 'layer { name: "out" type: "InnerProduct" bottom: "data" top: "out" inner_product_param { num_output: 3 axis: 2 } }', (2, 3, 4, 5), "out"),
    ("inner_product_transpose", 'layer { name: "out" type: "InnerProduct" bottom: "data" top: "out" inner_product_param { num_output: 4 transpose: true } }', (2, 3, 2, 2), "out"),
    # Not the net's last layer: a final Softmax over another axis than the classes' is refused (test_head).
    ("softmax_axis2", 'layer { name: "out" type: "Softmax" bottom: "data" top: "out" softmax_param { axis: 2 } } '
     'layer { name: "after" type: "TanH" bottom: "out" top: "after" }', (2, 3, 4, 2), "out"),
    ("concat_channels", TWO_CONVS + 'layer { name: "out" type: "Concat" bottom: "a" bottom: "b" bottom: "data" top: "out" }', (2, 2, 5, 5), "out"),
    ("concat_axis3", TWO_CONVS + 'layer { name: "out" type: "Concat" bottom: "a" bottom: "b" top: "out" concat_param { axis: 3 } }', (1, 2, 4, 5), "out"),
    ("eltwise_sum_coeff", TWO_CONVS + 'layer { name: "out" type: "Eltwise" bottom: "a" bottom: "b" top: "out" eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }', (2, 2, 5, 5), "out"),
    ("eltwise_prod", TWO_CONVS + 'layer { name: "out" type: "Eltwise" bottom: "a" bottom: "b" bottom: "a" top: "out" eltwise_param { operation: PROD } }', (2, 2, 5, 5), "out"),
    ("eltwise_max_ties", TWO_CONVS + 'layer { name: "ra" type: "ReLU" bottom: "a" top: "a" } layer { name: "rb" type: "ReLU" bottom: "b" top: "b" } '
     'layer { name: "out" type: "Eltwise" bottom: "a" bottom: "b" bottom: "a" top: "out" eltwise_param { operation: MAX } }', (2, 2, 5, 5), "out"),
    ("batchnorm_scale_bias", conv("c", "data", "num_output: 4 kernel_size: 1") + 'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" batch_norm_param { eps: 0.001 } } '
     'layer { name: "out" type: "Scale" bottom: "c" top: "out" scale_param { bias_term: true } }', (2, 3, 4, 4), "out"),
    ("batchnorm_batch_stats", 'layer { name: "out" type: "BatchNorm" bottom: "data" top: "out" batch_norm_param { use_global_stats: false } }', (3, 2, 4, 4), "out"),
    ("scale_num_axes2", 'layer { name: "out" type: "Scale" bottom: "data" top: "out" scale_param { axis: 1 num_axes: 2 } }', (2, 3, 4, 2), "out"),
    ("scale_two_bottoms", 'layer { name: "s" type: "InnerProduct" bottom: "data" top: "s" inner_product_param { num_output: 3 } } '
     'layer { name: "out" type: "Scale" bottom: "data" bottom: "s" top: "out" scale_param { axis: 0 bias_term: true } }', (2, 3, 2, 2), "out"),
    ("bias_axis2", 'layer { name: "out" type: "Bias" bottom: "data" top: "out" bias_param { axis: 2 num_axes: 1 } }', (2, 3, 4, 2), "out"),
    ("flatten_axis2", 'layer { name: "out" type: "Flatten" bottom: "data" top: "out" flatten_param { axis: 2 } }', (2, 3, 4, 2), "out"),
    ("reshape_copy_infer", 'layer { name: "out" type: "Reshape" bottom: "data" top: "out" reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }', (2, 3, 4, 2), "out"),
    ("reshape_axis_num_axes", 'layer { name: "out" type: "Reshape" bottom: "data" top: "out" reshape_param { axis: 1 num_axes: 1 shape { dim: 1 dim: 3 } } }', (2, 3, 4, 2), "out"),
    ("slice_points", 'layer { name: "sl" type: "Slice" bottom: "data" top: "p" top: "q" top: "r" slice_param { axis: 1 slice_point: 1 slice_point: 4 } } '
     'layer { name: "out" type: "Concat" bottom: "r" bottom: "p" top: "out" }', (2, 6, 3, 3), "out"),
    ("split", 'layer { name: "sp" type: "Split" bottom: "data" top: "u" top: "v" } layer { name: "out" type: "Eltwise" bottom: "u" bottom: "v" top: "out" }', (2, 2, 3, 3), "out"),
    ("crop_offsets", 'layer { name: "ref" type: "DummyData" top: "ref" dummy_data_param { shape { dim: 1 dim: 1 dim: 4 dim: 3 } } } '
     'layer { name: "out" type: "Crop" bottom: "data" bottom: "ref" top: "out" crop_param { axis: 2 offset: 1 offset: 2 } }', (2, 3, 7, 6), "out"),
    ("crop_single_offset", 'layer { name: "ref" type: "DummyData" top: "ref" dummy_data_param { shape { dim: 1 dim: 2 dim: 4 dim: 3 } } } '
     'layer { name: "out" type: "Crop" bottom: "data" bottom: "ref" top: "out" crop_param { axis: 1 offset: 1 } }', (2, 3, 7, 6), "out"),
    ("relu_negative_slope", 'layer { name: "out" type: "ReLU" bottom: "data" top: "out" relu_param { negative_slope: 0.1 } }', (2, 3, 4, 4), "out"),
    ("prelu", 'layer { name: "out" type: "PReLU" bottom: "data" top: "out" }', (2, 3, 4, 4), "out"),
    ("prelu_shared", 'layer { name: "out" type: "PReLU" bottom: "data" top: "out" prelu_param { channel_shared: true } }', (2, 3, 4, 4), "out"),
    ("elu", 'layer { name: "out" type: "ELU" bottom: "data" top: "out" elu_param { alpha: 0.7 } }', (2, 3, 4, 4), "out"),
    ("sigmoid", 'layer { name: "out" type: "Sigmoid" bottom: "data" top: "out" }', (2, 3, 4, 4), "out"),
    ("tanh", 'layer { name: "out" type: "TanH" bottom: "data" top: "out" }', (2, 3, 4, 4), "out"),
    ("absval", 'layer { name: "out" type: "AbsVal" bottom: "data" top: "out" }', (2, 3, 4, 4), "out"),
    ("exp_base2", 'layer { name: "out" type: "Exp" bottom: "data" top: "out" exp_param { base: 2 scale: 0.5 shift: 1 } }', (2, 3, 4, 4), "out"),
    ("exp_e", 'layer { name: "out" type: "Exp" bottom: "data" top: "out" }', (2, 3, 4, 4), "out"),
    ("log_base10", 'layer { name: "a" type: "AbsVal" bottom: "data" top: "a" } layer { name: "out" type: "Log" bottom: "a" top: "out" log_param { base: 10 scale: 2 shift: 1 } }', (2, 3, 4, 4), "out"),
    ("power", 'layer { name: "out" type: "Power" bottom: "data" top: "out" power_param { power: 2 scale: -1 shift: 6 } }', (2, 3, 4, 4), "out"),
    ("power_constant", 'layer { name: "out" type: "Power" bottom: "data" top: "out" power_param { power: 2 scale: 0 shift: 3 } }', (2, 3, 4, 4), "out"),
    ("dropout", 'layer { name: "out" type: "Dropout" bottom: "data" top: "out" dropout_param { dropout_ratio: 0.3 } }', (2, 3, 4, 4), "out"),
]


@pytest.mark.parametrize("body,shape,output", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layer_matches_caffe(body: str, shape: tuple, output: str) -> None:
    r = run_both(body, shape, output)
    assert r.engine_out.shape == r.caffe_out.shape
    assert relative_error(r.engine_out, r.caffe_out) <= TOL
    assert relative_error(r.engine_grad, r.caffe_grad) <= TOL


def test_max_pool_ties_route_to_first_maximum() -> None:
    # Constant input: every window is an exact tie, so any other rule than
    # Caffe's first-in-scan-order maximum moves the gradient elsewhere.
    import numpy as np

    body = 'layer { name: "out" type: "Pooling" bottom: "data" top: "out" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }'
    r = run_both(body, (1, 2, 7, 7), "out", input_values=np.ones((1, 2, 7, 7), np.float32))
    assert np.array_equal(r.engine_grad, r.caffe_grad)
