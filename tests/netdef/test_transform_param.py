"""An input transform read from a train_val prototxt's transform_param."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel.errors import ModelFormatError
from caffe_relabel.images.preprocess import InputSpec
from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import BlobProto

LENET = """
name: "LeNet"
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.5 mirror: true } data_param { source: "train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { scale: 0.00390625 %s } data_param { source: "test_lmdb" batch_size: 100 backend: LMDB } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 10 } }
"""


def _write(tmp_path, text: str, name: str = "train_val.prototxt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _mean_file(path, shape) -> None:
    blob = BlobProto()
    blob.shape.dim.extend([1, *shape])
    blob.data.extend(np.arange(np.prod(shape), dtype=np.float32) % 200)
    path.write_bytes(blob.SerializeToString())


def test_test_phase_scale_and_one_mean_value_for_every_channel(tmp_path):
    spec = InputSpec.from_transform_param(_write(tmp_path, LENET % "mean_value: 33"), (28, 28), channel_order="BGR")
    assert spec.input_scale == 0.00390625  # TEST's, not TRAIN's 0.5
    assert spec.mean == (33.0, 33.0, 33.0) and spec.raw_scale == 255.0
    assert spec.grey_level == pytest.approx(1 / 256)


def test_per_channel_mean_values_and_matching_crop(tmp_path):
    p = _write(tmp_path, LENET % "mean_value: 104 mean_value: 117 mean_value: 123 crop_size: 28 mirror: true")
    spec = InputSpec.from_transform_param(p, (28, 28), resize=32)
    assert spec.mean == (104.0, 117.0, 123.0) and spec.resize == 32  # mirror ignored


def test_no_mean_subtracts_nothing(tmp_path):
    spec = InputSpec.from_transform_param(_write(tmp_path, LENET % ""), (28, 28), channel_order="GREY", resize=None)
    assert spec.mean == (0.0,) and spec.channels == 1


def test_mean_file_next_to_the_prototxt(tmp_path, monkeypatch):
    _mean_file(tmp_path / "mean.binaryproto", (3, 32, 32))
    monkeypatch.chdir(tmp_path.parent)  # not found from the current folder: found beside the prototxt
    spec = InputSpec.from_transform_param(_write(tmp_path, LENET % 'mean_file: "mean.binaryproto"'), (28, 28))
    assert spec.mean.shape == (3, 32, 32) and spec.mean_blob().shape == (3, 28, 28)


def test_v1_layers_keep_the_transform_in_data_param(tmp_path):
    v1 = """layers { name: "d" type: DATA top: "data" top: "label" include { phase: TEST }
      data_param { source: "x" batch_size: 1 scale: 0.25 crop_size: 8 } }"""
    spec = InputSpec.from_transform_param(_write(tmp_path, v1), (8, 8), channel_order="GREY", resize=None)
    assert spec.input_scale == 0.25 and spec.mean == (0.0,)


@pytest.mark.parametrize("fields, message", [
    ("crop_size: 227", "crop_size: 227 does not match the deploy net's input 28 x 28"),
    ('mean_value: 1 mean_file: "m.binaryproto"', "expected mean_file or mean_value, not both"),
    ("mean_value: 1 mean_value: 2", "mean_value: expected 1 or 3 values, got 2"),
    ("mean_value: -1", "mean_value: expected finite values >= 0"),
    ('mean_file: "absent.binaryproto"', "mean_file: 'absent.binaryproto' not found"),
    ('mean_file: "small.binaryproto"', "expected 3 channels covering 28 x 28"),
])
def test_bad_transform_param_names_the_field(tmp_path, fields, message):
    _mean_file(tmp_path / "small.binaryproto", (3, 16, 16))
    p = _write(tmp_path, LENET % fields)
    with pytest.raises(ModelFormatError, match="layer 'mnist': transform_param") as e:
        InputSpec.from_transform_param(p, (28, 28))
    assert message in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("scale", ["0", "-0.5", "nan", "inf"])
def test_bad_scale_is_refused(tmp_path, scale):
    with pytest.raises(ModelFormatError, match="transform_param.scale: expected a finite number > 0"):
        InputSpec.from_transform_param(_write(tmp_path, LENET.replace("0.00390625", scale) % ""), (28, 28))


def test_a_net_without_a_test_transform_is_refused(tmp_path):
    train_only = LENET.replace("phase: TEST", "phase: TRAIN") % ""
    with pytest.raises(ModelFormatError, match="no layer of the TEST phase has a transform_param"):
        InputSpec.from_transform_param(_write(tmp_path, train_only), (28, 28))


def test_two_different_test_transforms_are_refused(tmp_path):
    two = LENET.replace("phase: TRAIN", "phase: TEST") % ""
    with pytest.raises(ModelFormatError, match="different transform_params"):
        InputSpec.from_transform_param(_write(tmp_path, two), (28, 28))
