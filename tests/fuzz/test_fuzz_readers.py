"""Fuzzing the file readers: random bytes and mutated real files.

Every input either reads or raises one of the library's own errors; nothing
else escapes (no protobuf, numpy, PIL or OS exception types, no crash).
The budget is small by default; FUZZ_EXAMPLES=N (e.g. 5000) runs longer
(`make fuzz`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caffe_relabel.models import testmodels
from caffe_relabel.errors import CaffeRelabelError
from caffe_relabel.images.preprocess import load_image
from caffe_relabel.netdef.proto import io as pio
from caffe_relabel.netdef.prototxt import force_backward

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

PROTOTXT = testmodels.DIGITS_PROTOTXT.read_bytes()
CAFFEMODEL = testmodels.DIGITS_WEIGHTS.read_bytes()


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png_bytes()


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """Truncated, bit-flipped, spliced or chunk-deleted versions of a real file."""
    data = bytearray(original)
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "insert", "random"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "random":
        return draw(st.binary(max_size=4096))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def _only_our_errors(fn, *args) -> None:
    try:
        fn(*args)
    except CaffeRelabelError:
        pass


def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


@FUZZ
@given(data=mutated(CAFFEMODEL))
def test_caffemodel_reader(tmp_path, data):
    p = _write(tmp_path, "m.caffemodel", data)

    def read():
        net = pio.read_weights(p)
        for layer in pio.weights_by_layer(net).values():
            for blob in layer.blobs:
                pio.blob_to_array(blob, source=str(p))

    _only_our_errors(read)


@FUZZ
@given(data=mutated(PROTOTXT))
def test_prototxt_reader(tmp_path, data):
    _only_our_errors(pio.read_net, _write(tmp_path, "n.prototxt", data))


@FUZZ
@given(data=mutated(CAFFEMODEL))
def test_mean_reader(tmp_path, data):
    _only_our_errors(pio.read_mean, _write(tmp_path, "mean.binaryproto", data))


@FUZZ
@given(data=mutated(PNG))
def test_image_reader(tmp_path, data):
    _only_our_errors(load_image, _write(tmp_path, "i.png", data))


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list('abc_:{}<>"\'# \n\tforce_backwardtruename')), max_size=200))
def test_force_backward_never_raises_and_is_idempotent(text):
    out = force_backward(text)
    assert force_backward(out) == out
    # Whatever the text was, the only change is the field.
    assert out.replace("force_backward: true\n", "", 1) == text or "force_backward" in text


@pytest.mark.parametrize("dims", [[1, 3, 10**6, 10**6], [10**12], [0, 3, 4, 4]])
def test_absurd_declared_blob_is_refused_before_allocation(tmp_path, dims):
    from caffe_relabel.netdef.proto import BlobProto

    blob = BlobProto()
    blob.shape.dim.extend(dims)
    blob.data.extend([1.0, 2.0])
    p = _write(tmp_path, "mean.binaryproto", blob.SerializeToString())
    with pytest.raises(CaffeRelabelError, match="mean.binaryproto"):
        pio.read_mean(p)
