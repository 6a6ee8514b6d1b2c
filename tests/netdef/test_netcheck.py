"""Malformed and absurd definitions and weights: both backends refuse them with our errors, before allocating.

Real Caffe aborts the whole process (CHECK, LOG(FATAL), std::bad_alloc) on
most of these inputs, so a pycaffe case that slipped through would kill the
test run rather than fail it.
"""

from __future__ import annotations

import os

import pytest

from caffe_relabel.models import testmodels
from caffe_relabel.errors import (CaffeRelabelError, ModelFormatError, NetTooLargeError, UnsupportedLayerError,
                                  WeightsMismatchError)
from caffe_relabel.netdef.netcheck import BYTES_PER_VALUE, MAX_BLOB_ELEMENTS, MAX_NET_BYTES_ENV, check_batch, check_net, max_net_bytes
from caffe_relabel.netdef.proto import read_weights, write_weights
from caffe_relabel.netdef.proto.io import parse_net
from tests.conftest import requires_pycaffe

INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
CONV = 'convolution_param { num_output: 4 kernel_size: 3 }'

BACKENDS = [pytest.param("pycaffe", marks=requires_pycaffe), "engine"]


def _load(backend: str, prototxt, weights=None):
    if backend == "pycaffe":
        from caffe_relabel.backends.pycaffe import PycaffeClassifier

        return PycaffeClassifier(prototxt, weights)
    pytest.importorskip("torch")
    from caffe_relabel.backends.engine import EngineClassifier

    return EngineClassifier(prototxt, weights)


# (definition, error type, what the message must say)
BAD_DEFINITIONS = {
    "input dim 10^12": ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 '
                        'dim: 1000000000000 dim: 224 } } }', ModelFormatError, "'data'.*top 'data'.*1000000000000"),
    "input_dim fields": ('input: "data" input_dim: 1 input_dim: 3 input_dim: 100000 input_dim: 100000',
                         ModelFormatError, "'data'.*100000, 100000.*at most 2147483647"),
    "zero dim": (INPUT.replace("dim: 3", "dim: 0"), ModelFormatError, "top 'data'.*positive"),
    "negative dim": (INPUT.replace("dim: 3", "dim: -3"), ModelFormatError, "top 'data'.*positive"),
    "conv num_output 10^9": (INPUT + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                             'convolution_param { num_output: 1000000000 kernel_size: 3 } }',
                             ModelFormatError, "'c'.*parameter blob 0.*1000000000, 3, 3, 3"),
    "kernel larger than input": (INPUT + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                                 'convolution_param { num_output: 4 kernel_size: 9 } }', ModelFormatError,
                                 "'c'.*convolution_param.kernel_size.*exceeds"),
    "inner product num_output 10^10": (INPUT + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                                       'inner_product_param { num_output: 10000000000 } }', ModelFormatError,
                                       "not a valid Caffe net definition.*num_output"),
    "inner product num_output 4e9": (INPUT + 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                                     'inner_product_param { num_output: 4000000000 } }', ModelFormatError,
                                     "'ip'.*inner_product_param.num_output.*4000000000"),
    "stride over int": (INPUT + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                        'pooling_param { kernel_size: 2 stride: 3000000000 } }', ModelFormatError, "'p'.*pooling_param.stride"),
    "unknown type": (INPUT + 'layer { name: "w" type: "Frobnicate" bottom: "data" top: "w" }',
                     UnsupportedLayerError, "'w'.*'Frobnicate'.*supported types: AbsVal"),
    "python layer": (INPUT + 'layer { name: "py" type: "Python" bottom: "data" top: "py" '
                     'python_param { module: "this" layer: "x" } }', UnsupportedLayerError, "'py'.*'Python'"),
    "file-writing layer": (INPUT + 'layer { name: "out" type: "HDF5Output" bottom: "data" bottom: "data" '
                           'hdf5_output_param { file_name: "/tmp/x.h5" } }', UnsupportedLayerError, "'out'.*'HDF5Output'"),
    "missing bottom": (INPUT + 'layer { name: "r" type: "ReLU" bottom: "nowhere" top: "r" }', ModelFormatError,
                       "'r'.*bottom blob 'nowhere' is not produced"),
    "bottom used before produced": (INPUT + 'layer { name: "a" type: "ReLU" bottom: "b" top: "a" } '
                                    'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }', ModelFormatError,
                                    "'a'.*bottom blob 'b' is not produced by any earlier layer"),
    "duplicate top": (INPUT + 'layer { name: "a" type: "ReLU" bottom: "data" top: "x" } '
                      'layer { name: "b" type: "Sigmoid" bottom: "data" top: "x" }', ModelFormatError,
                      "'b'.*top blob 'x' is produced by an earlier layer"),
    "in-place convolution": (INPUT + f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "data" {CONV} }}',
                             ModelFormatError, "'c'.*in place"),
    "duplicate layer name": (INPUT + 'layer { name: "data" type: "ReLU" bottom: "data" top: "r" }', ModelFormatError,
                             "'data'.*name.*unique"),
    "singular field twice": ('name: "a"\nname: "b"\n' + INPUT, ModelFormatError, "multiple \"name\""),
    "gaussian std 0": (INPUT + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { '
                       'num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0 } } }', ModelFormatError,
                       "'c'.*weight_filler.std"),
    "unknown filler": (INPUT + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { '
                       'num_output: 4 kernel_size: 3 weight_filler { type: "gausian" } } }', ModelFormatError,
                       "'c'.*unknown filler 'gausian'"),
    "weights in the definition": (INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" blobs { data: 1 } }',
                                  ModelFormatError, "'r'.*blobs.*caffemodel"),
    "layer hidden behind the file's own stage": ('state { stage: "s" }\n' + INPUT + 'layer { name: "py" type: "Python" '
                                                  'bottom: "data" top: "py" include { stage: "s" } }',
                                                  UnsupportedLayerError, "'py'.*'Python'"),
    "two inputs": (INPUT + INPUT.replace('"data"', '"data2"'), ModelFormatError, "one input blob, got 2"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(BAD_DEFINITIONS))
def test_bad_definitions_are_refused_before_allocation(backend, case, tmp_path):
    text, error, match = BAD_DEFINITIONS[case]
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    with pytest.raises(error, match=match) as e:
        _load(backend, path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_utf8_prototxt(backend, tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_bytes(INPUT.encode().replace(b'"data"', b'"d\xffta"', 1))
    with pytest.raises(ModelFormatError, match="not UTF-8 text"):
        _load(backend, path)


@requires_pycaffe
def test_cudnn_engine_is_refused_by_pycaffe(tmp_path):
    # A CPU-only Caffe aborts on it ("Layer r has unknown engine").
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    path = tmp_path / "net.prototxt"
    path.write_text(INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" relu_param { engine: CUDNN } }')
    with pytest.raises(UnsupportedLayerError, match="'r'.*relu_param.engine"):
        PycaffeClassifier(path)


# 1000 x 1000 input and two ReLUs: 3e6 values, 24e6 bytes with their gradients.
BIG = ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 1000 dim: 1000 } } }'
       + "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "data" top: "r{i}" }}' for i in range(2)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_net_memory_is_bounded_by_a_limit_the_user_can_raise(backend, tmp_path, monkeypatch):
    path = tmp_path / "net.prototxt"
    path.write_text(BIG)
    monkeypatch.setenv(MAX_NET_BYTES_ENV, "20e6")
    with pytest.raises(NetTooLargeError, match=r"'r1'.*needs 0\.02 GiB \(24000000 bytes.*limit of 0\.02 GiB "
                                               r"\(20000000 bytes\); raise it with CAFFE_RELABEL_MAX_NET_BYTES"):
        _load(backend, path)
    monkeypatch.setenv(MAX_NET_BYTES_ENV, "24e6")
    assert _load(backend, path).input_shape == (1, 1000, 1000)


def test_the_memory_limit_defaults_to_half_the_ram_and_refuses_nonsense(monkeypatch):
    monkeypatch.delenv(MAX_NET_BYTES_ENV, raising=False)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert max_net_bytes() == ram // 2
    for bad in ("0", "-5", "lots", "nan", "1e400"):
        monkeypatch.setenv(MAX_NET_BYTES_ENV, bad)
        with pytest.raises(NetTooLargeError, match=f"{MAX_NET_BYTES_ENV}=.*expected a positive number of bytes"):
            max_net_bytes()


def test_check_batch_repeats_the_checks_at_the_run_batch():
    checked = check_net(parse_net(BIG), "big.prototxt", max_bytes=10**9)
    at4 = check_batch(checked, 4, "big.prototxt", max_bytes=10**9)
    assert at4.blobs["r1"] == (4, 1, 1000, 1000) and at4.elements == 4 * checked.elements
    with pytest.raises(NetTooLargeError, match=r"'r0'.*at a batch of 70, more than the limit"):
        check_batch(checked, 70, "big.prototxt", max_bytes=10**9)
    # A blob over Caffe's int count, whatever the memory limit.
    with pytest.raises(NetTooLargeError, match=r"'data'.*2147483647 values per blob.*at a batch of 3000 samples"):
        check_batch(checked, 3000, "big.prototxt", max_bytes=2**60)
    assert BYTES_PER_VALUE * at4.elements < 10**9


def test_check_batch_refuses_a_reshape_that_fixes_the_batch():
    # Caffe's Reshape CHECKs the count at every reshape: dim 1 fits batch 1 only.
    net = parse_net(INPUT + 'layer { name: "flat" type: "Reshape" bottom: "data" top: "flat" '
                            'reshape_param { shape { dim: 1 dim: 192 } } }')
    checked = check_net(net, "r.prototxt")
    with pytest.raises(NetTooLargeError, match="'flat'.*at a batch of 2 samples"):
        check_batch(checked, 2, "r.prototxt")


def test_engine_lrn_band_is_bounded():
    pytest.importorskip("torch")
    from caffe_relabel.engine import build_net

    net = parse_net('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 40000 dim: 1 '
                    'dim: 1 } } } layer { name: "n" type: "LRN" bottom: "data" top: "n" }')
    with pytest.raises(UnsupportedLayerError, match="'n'.*40000 channels"):
        build_net(net)


def test_shapes_of_a_real_net():
    checked = check_net(parse_net(testmodels.DIGITS_PROTOTXT.read_text()))
    assert checked.input == "data"
    assert checked.blobs["pool2"] == (1, 32, 4, 4) and checked.blobs["prob"] == (1, 10)
    assert checked.params["fc1"] == [(64, 512), (64,)] and checked.params["relu1"] == []
    assert 0 < checked.elements < MAX_BLOB_ELEMENTS


def _tampered(tmp_path, edit):
    net = read_weights(testmodels.DIGITS_WEIGHTS)
    edit(next(layer for layer in net.layer if layer.name == "fc2"))
    out = tmp_path / "tampered.caffemodel"
    write_weights(net, out)
    return out


def _nan(layer):
    layer.blobs[1].data[3] = float("nan")


def _short(layer):
    del layer.blobs[0].data[5:]


def _diff(layer):
    layer.blobs[1].diff.extend([1.0, 2.0])  # Caffe CHECKs the diff count too


def _doubles(layer):
    layer.blobs[1].double_data.extend([0.0] * 3)  # Caffe reads double_data when it has any


def _shape(layer):
    layer.blobs[0].shape.dim[:] = [64, 10]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("edit,match", [
    (_nan, "'fc2' blob 1.*1 non-finite values"),
    (_short, "'fc2' blob 0.*640 values.*holds 5 values"),
    (_diff, "'fc2' blob 1.*holds 2 diffs"),
    (_doubles, "'fc2' blob 1.*holds 3 values"),
    (_shape, "'fc2'.*blob 0.*\\[64, 10\\].*\\[10, 64\\]"),
])
def test_bad_weights_are_refused(backend, edit, match, tmp_path):
    bad = _tampered(tmp_path, edit)
    with pytest.raises((WeightsMismatchError, ModelFormatError), match=match) as e:
        _load(backend, testmodels.DIGITS_PROTOTXT, bad)
    assert str(bad) in str(e.value)


@requires_pycaffe
def test_weights_with_both_layer_fields_are_refused(tmp_path):
    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    net = read_weights(testmodels.DIGITS_WEIGHTS)
    net.layers.add(name="old")
    bad = tmp_path / "both.caffemodel"
    write_weights(net, bad)
    with pytest.raises(CaffeRelabelError, match="both 'layer' and 'layers'"):
        PycaffeClassifier(testmodels.DIGITS_PROTOTXT, bad)


@pytest.mark.parametrize("setting", ["relu_param { negative_slope: nan }", "relu_param { negative_slope: inf }",
                                     "power_param { scale: -inf }", "elu_param { alpha: nan }",
                                     "lrn_param { k: nan }"])
def test_non_finite_layer_settings_are_refused(setting):
    text = testmodels.DIGITS_PROTOTXT.read_text().replace('type: "ReLU"', f'type: "ReLU" {setting}', 1)
    with pytest.raises(ModelFormatError, match=r"layer 'relu1'.*_param\.\w+: expected a finite number"):
        check_net(parse_net(text))
