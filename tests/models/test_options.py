"""ModelOptions and load_model: a user's prototxt + caffemodel with its transform, a labels file, Model.predict."""

from __future__ import annotations

import numpy as np
import pytest

from caffe_relabel.errors import ArgumentError, CaffeRelabelError, ModelFormatError
from caffe_relabel.models import testmodels
from caffe_relabel.models.labels import read_labels
from caffe_relabel.models.model import load_model
from caffe_relabel.models.options import ModelOptions

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("labels") / "synset_words.txt"
    p.write_text("".join(f"d{i:02d} digit {name}, the numeral {i}\n" for i, name in enumerate(NAMES)))
    return p


def _user_digits(labels=None, backend="engine", **changes) -> ModelOptions:
    fields = dict(prototxt=str(testmodels.DIGITS_PROTOTXT), weights=str(testmodels.DIGITS_WEIGHTS),
                  mean=(testmodels.DIGITS_MEAN,), channel_order="GREY", resize=None, labels=labels, backend=backend)
    return ModelOptions(**{**fields, **changes})


def test_labels_file_gives_ids_and_names(labels_file):
    labels = read_labels(labels_file, 10)
    assert labels.ids[3] == "d03" and labels.names[3] == "digit three, the numeral 3"


@pytest.mark.parametrize("text,message", [
    ("n01 tench\nlonely\n", "line 2: expected '<id> <class name>'"),
    ("n01 tench\n\nn02 goldfish\n", "line 2: expected"),
    ("n01 tench\nn01 goldfish\n", "line 2: id 'n01' is already class 0 (line 1)"),
    ("\n", "labels file is empty"),
])
def test_bad_labels_file_names_the_file_and_line(tmp_path, text, message):
    p = tmp_path / "labels.txt"
    p.write_text(text)
    with pytest.raises(ModelFormatError, match="labels.txt: ") as e:
        read_labels(p)
    assert message in str(e.value)


def test_labels_count_must_match_the_net(tmp_path, backend):
    p = tmp_path / "labels.txt"
    p.write_text("a one\nb two\n")
    with pytest.raises(ModelFormatError, match="labels.txt: 2 labels for a network with 10 classes"):
        load_model(_user_digits(labels=str(p), backend=backend))


def test_user_prototxt_with_labels_classifies_as_the_zoo_model(labels_file, backend, digits_data):
    model = load_model(_user_digits(labels=str(labels_file), backend=backend))
    zoo = load_model("digits", backend=backend)
    assert model.name == "deploy.prototxt" and model.input == zoo.input
    image = digits_data["images"][4].astype(np.float64) / 255.0
    got, want = model.predict(image), zoo.predict(image)
    np.testing.assert_array_equal(got.probabilities, want.probabilities)
    assert got.label == int(digits_data["labels"][4])
    assert model.class_name(got.label) == f"digit {NAMES[got.label]}, the numeral {got.label}"
    assert model.resolve("d07") == 7 and model.resolve("digit seven, the numeral 7") == 7


def test_labels_file_renames_a_zoo_models_classes(labels_file):
    model = load_model(ModelOptions(model="digits", labels=str(labels_file), backend="engine"))
    assert model.class_name(2) == "digit two, the numeral 2" and model.label_set is None


def test_predict_is_the_forward_of_the_fitted_blob(digits_data):
    from caffe_relabel.images.preprocess import fit, image_to_blob

    model = load_model("digits", backend="engine")
    image = digits_data["images"][0].astype(np.float64) / 255.0
    blob = image_to_blob(fit(np.repeat(image[:, :, None], 3, axis=2), model.input), model.input)
    want = model.classifier.forward(blob[None])[0]
    got = model.predict(image)
    np.testing.assert_array_equal(got.probabilities, want)
    top = got.top(3)
    assert [i for i, _ in top] == list(np.argsort(-want, kind="stable")[:3])
    assert top[0] == (got.label, got.prob) and top[0][1] >= top[1][1] >= top[2][1]
    many = model.predict_many([image] * 3, batch_size=2)
    assert len(many) == 3 and all(p.label == got.label for p in many)


def test_train_val_gives_the_mean_and_an_option_wins_over_it(tmp_path):
    train_val = tmp_path / "train_val.prototxt"
    train_val.write_text('layer { name: "d" type: "Data" top: "data" include { phase: TEST }\n'
                         '  transform_param { scale: 0.5 mean_value: 100 } }\n')
    spec = _user_digits(mean=None, train_val=str(train_val)).input_spec((1, 16, 16))
    assert tuple(spec.mean) == (100.0,) and spec.input_scale == 0.5
    spec = _user_digits(mean=(7.0,), train_val=str(train_val), input_scale=2.0).input_spec((1, 16, 16))
    assert tuple(spec.mean) == (7.0,) and spec.input_scale == 2.0


def test_interpolation_and_resample_reach_the_spec_with_or_without_train_val(tmp_path):
    assert (ModelOptions().interpolation, ModelOptions().resample) == ("bilinear", "skimage")  # as before
    train_val = tmp_path / "train_val.prototxt"
    train_val.write_text('layer { name: "d" type: "Data" top: "data" include { phase: TEST }\n'
                         '  transform_param { mean_value: 100 } }\n')
    for given in ({}, {"mean": None, "train_val": str(train_val)}):
        spec = _user_digits(interpolation="bicubic", resample="pillow", resize=20, **given).input_spec((1, 16, 16))
        assert (spec.interpolation, spec.resample, spec.resize) == (3, "pillow", 20)
        assert _user_digits(interpolation="nearest", **given).input_spec((1, 16, 16)).interpolation == 0
    with pytest.raises(ArgumentError, match=r"--interpolation: expected nearest, bilinear, bicubic, got 'cubic'"):
        _user_digits(interpolation="cubic").input_spec((1, 16, 16))
    with pytest.raises(ArgumentError, match=r"expected resample 'skimage' or 'pillow', got 'cv2'"):
        _user_digits(resample="cv2").input_spec((1, 16, 16))


def test_mean_file_gives_a_mean_image(tmp_path):
    from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import BlobProto

    blob = BlobProto()
    blob.shape.dim.extend([1, 1, 16, 16])
    blob.data.extend((np.arange(256, dtype=np.float32) % 200).tolist())
    path = tmp_path / "mean.binaryproto"
    path.write_bytes(blob.SerializeToString())
    model = load_model(_user_digits(mean=None, mean_file=str(path)))
    assert np.asarray(model.input.mean).shape == (1, 16, 16) and np.asarray(model.input.mean)[0, 1, 2] == 18.0


@pytest.mark.parametrize("options,error,message", [
    (ModelOptions(model="digits", weights="x.caffemodel"), CaffeRelabelError, "--weights needs --prototxt"),
    (ModelOptions(model="digits", mean=(1.0,)), ArgumentError, "--mean: only with --prototxt"),
    (ModelOptions(prototxt="deploy.prototxt"), CaffeRelabelError, "--prototxt needs --weights"),
    (ModelOptions(prototxt="d.prototxt", weights="w", mean=(1.0,), mean_file="m"), ArgumentError,
     "--mean and --mean-file: expected one of them"),
    (ModelOptions(prototxt="d.prototxt", weights="w"), CaffeRelabelError, "needs --mean B,G,R, --mean-file or --train-val"),
])
def test_option_combinations_refused_before_loading(options, error, message):
    with pytest.raises(error, match=message):
        load_model(options)


def test_a_prototxt_as_model_name_says_where_it_goes():
    from caffe_relabel.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="--model deploy.prototxt: expected a zoo model name; a net "
                                                 "definition goes in --prototxt deploy.prototxt --weights"):
        load_model(ModelOptions(model="deploy.prototxt"))


def test_random_weights_name_is_checked_as_a_zoo_name():
    from caffe_relabel.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="did you mean digits"):
        load_model(ModelOptions(model="random:digitz", backend="engine"))
