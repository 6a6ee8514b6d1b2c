import dataclasses
import hashlib

import pytest

from caffe_relabel.models import zoo
from caffe_relabel.errors import ArgumentError, DownloadError, ModelNotFoundError


@pytest.mark.parametrize(
    "target,index",
    [(281, 281), ("281", 281), ("tabby", 281), ("tabby cat", 281), ("Tabby, tabby cat", 281),
     ("n02123045", 281), ("half track", 586), ("half_track", 586), ("Shih-Tzu", 155)],
)
def test_imagenet_targets(target, index):
    assert zoo.resolve_class(target, "imagenet") == index


def test_unknown_class_name_lists_closest():
    with pytest.raises(ModelNotFoundError, match="closest.*tabby"):
        zoo.resolve_class("tabby catt", "imagenet")


def test_ambiguous_class_name_lists_all():
    with pytest.raises(ModelNotFoundError, match="ambiguous.*134.*517"):
        zoo.resolve_class("crane", "imagenet")


def test_index_out_of_range():
    with pytest.raises(ModelNotFoundError, match="0..999"):
        zoo.resolve_class(1000, "imagenet")


@pytest.mark.parametrize("target", ["\u00b2", "--1", "", " ", "3.5", "\u0663", 2.0, None])
def test_number_like_targets_that_are_no_index_are_usage_errors(target):
    # '²' and '٣' pass str.isdigit() but are no ASCII index; "--1" once slipped through lstrip("-").
    with pytest.raises(ArgumentError, match="expected a class index"):
        zoo.resolve_class(target, "digits")


@pytest.mark.parametrize("target,index", [(" 7 ", 7), ("+3", 3), ("n02123045", 281)])
def test_ascii_indices_and_ids_still_resolve(target, index):
    assert zoo.resolve_class(target, "imagenet" if target.startswith("n") else "digits") == index


def test_class_names_come_from_the_maintained_list():
    names = zoo.class_names("imagenet")
    assert len(names) == 1000 and names[0].startswith("tench") and names[999].startswith("toilet tissue")
    assert len(set(zoo.wordnet_ids("imagenet"))) == 1000


def test_unknown_model_suggests():
    with pytest.raises(ModelNotFoundError, match="did you mean bvlc_googlenet"):
        zoo.get("bvlc_googlnet")


def test_missing_weights_say_what_to_put_where(cache_home):
    if zoo.find_weights(zoo.get("bvlc_alexnet")) is not None:
        pytest.skip("real AlexNet weights are present")
    with pytest.raises(ModelNotFoundError) as e:
        zoo.weights_path("bvlc_alexnet")
    msg = str(e.value)
    assert "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel" in msg
    assert str(cache_home / "models" / "bvlc_alexnet.caffemodel") in msg
    assert "9116a64c0fbe4459d18f4bb6b56d647b63920377" in msg


def test_efficientnet_lite_resizes_with_pillow_bicubic_and_bvlc_as_the_paper():
    # bench/resize_effect.py measured Pillow's bicubic no worse; the paper's nets keep caffe.io's skimage bilinear.
    for name, spec in zoo.MODELS.items():
        want = ("pillow", 3) if name.startswith("efficientnet_lite") else ("skimage", 1)
        assert (spec.input.resample, spec.input.interpolation) == want, name
    assert "efficientnet_lite0" in zoo.MODELS and "bvlc_googlenet" in zoo.MODELS


def test_digits_is_bundled():
    assert zoo.weights_path("digits").is_file()
    assert zoo.present_models()["digits"] is not None


def test_fetch_into_cache_and_verify(http_server, cache_home, monkeypatch):
    body = b"pretend caffemodel" * 1000
    http_server.state.files["/tiny.caffemodel"] = body
    spec = dataclasses.replace(zoo.get("bvlc_alexnet"), name="tiny", weights_file="tiny.caffemodel",
                               url=f"{http_server.url}/tiny.caffemodel", sha1=hashlib.sha1(body).hexdigest())
    monkeypatch.setitem(zoo.MODELS, "tiny", spec)
    monkeypatch.setattr(zoo, "_checkout_models_dir", lambda: cache_home / "nowhere")
    path = zoo.fetch("tiny")
    assert path == cache_home / "models" / "tiny.caffemodel" and path.read_bytes() == body
    assert zoo.verify("tiny") == (path, True)
    path.write_bytes(b"corrupted")
    assert zoo.verify("tiny") == (path, False)
    assert zoo.fetch("tiny").read_bytes() == body  # a bad file is replaced, not used


def test_fetch_offline(cache_home, monkeypatch):
    spec = dataclasses.replace(zoo.get("bvlc_alexnet"), name="tiny", weights_file="tiny.caffemodel",
                               url="http://127.0.0.1:9/tiny.caffemodel")
    monkeypatch.setitem(zoo.MODELS, "tiny", spec)
    monkeypatch.setattr(zoo, "_checkout_models_dir", lambda: cache_home / "nowhere")
    with pytest.raises(DownloadError, match="tiny.caffemodel"):
        zoo.fetch("tiny", timeout=5)


def _made_model(cache_home, monkeypatch):
    """A converted model "made" in the cache: 5000 bytes of weights, no record yet."""
    spec = dataclasses.replace(zoo.get("efficientnet_lite0"), name="made", weights_file="made.caffemodel")
    monkeypatch.setitem(zoo.MODELS, "made", spec)
    monkeypatch.setattr(zoo, "_checkout_models_dir", lambda: cache_home / "nowhere")
    path = cache_home / "models" / "made.caffemodel"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x01" * 5000)
    return path


def test_verify_checks_converted_models_against_their_record(cache_home, monkeypatch):
    from caffe_relabel.files.checksums import write_record

    path = _made_model(cache_home, monkeypatch)
    assert zoo.verify("made") == (path, False)  # no record: not verified
    write_record(path)
    assert zoo.verify("made") == (path, True)
    with open(path, "r+b") as f:
        f.truncate(1000)
    assert zoo.verify("made") == (path, False)
    path.write_bytes(b"\x02" * 5000)  # same size, other content
    assert zoo.verify("made") == (path, False)


def test_fetch_of_a_cut_converted_model_fails_as_verify_does(cache_home, monkeypatch, capsys):
    from caffe_relabel import cli
    from caffe_relabel.errors import ModelFormatError
    from caffe_relabel.files.checksums import write_record

    path = _made_model(cache_home, monkeypatch)
    write_record(path)
    assert zoo.fetch("made") == path  # intact: found, nothing to do
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ModelFormatError, match="SHA1 MISMATCH.*models convert efficientnet_lite0"):
        zoo.fetch("made")
    capsys.readouterr()
    assert cli.main(["models", "fetch", "made", "-q"]) == cli.EXIT_INPUT
    assert cli.main(["models", "verify", "made"]) == cli.EXIT_INPUT
    captured = capsys.readouterr()
    assert "SHA1 MISMATCH" in captured.err and "SHA1 MISMATCH" in captured.out and "Traceback" not in captured.err


def test_a_word_suggests_the_classes_named_with_it_before_fuzzy_matches():
    with pytest.raises(ModelNotFoundError) as e:
        zoo.resolve_class("cat", "imagenet")
    message = str(e.value)
    named, _, fuzzy = message.partition("closest")
    for cls in ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"):
        assert cls in named
    assert "crate" not in named


@pytest.mark.parametrize("wnid, match", [("n99999999", "well-formed but not one of the 1000 classes"),
                                         ("n123", "malformed WordNet id 'n123'")])
def test_wordnet_ids_that_name_no_class_say_so(wnid, match):
    with pytest.raises(ModelNotFoundError, match=match):
        zoo.resolve_class(wnid, "imagenet")


def test_missing_download_weights_point_to_the_offline_model(cache_home):
    if zoo.find_weights(zoo.get("bvlc_googlenet")) is not None:
        pytest.skip("real GoogLeNet weights are present")
    with pytest.raises(ModelNotFoundError, match="models fetch bvlc_googlenet.*efficientnet_lite0"):
        zoo.weights_path("bvlc_googlenet")
