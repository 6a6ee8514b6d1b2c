"""Issue 22's end-to-end case: a sweep over a flat folder of ``<wnid>_*.JPEG`` photographs on a user's
prototxt and caffemodel with its train_val, on both backends and on the engine's fast numerics,
printing strict JSON.

The user's model is the converted EfficientNet-Lite0 (a real ImageNet net, passed by path as any
user's files are); its train_val states the input transform Caffe trained with.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
import skimage.data
from PIL import Image

from caffe_relabel import cli
from caffe_relabel.models import zoo
from tests.bench.photos import efficientnet_ready  # noqa: F401 (a fixture)
from tests.conftest import requires_pycaffe

TRAIN_VAL = """name: "lite0"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { mirror: true crop_size: 224 mean_value: 127 mean_value: 127 mean_value: 127 }
  data_param { source: "train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { crop_size: 224 mean_value: 127 mean_value: 127 mean_value: 127 }
  data_param { source: "val_lmdb" batch_size: 50 backend: LMDB } }
"""


@pytest.fixture(scope="module")
def user_model(tmp_path_factory, efficientnet_ready):  # noqa: F811
    root = tmp_path_factory.mktemp("user")
    spec = zoo.get("efficientnet_lite0")
    (root / "train_val.prototxt").write_text(TRAIN_VAL)
    flat = root / "photos"
    flat.mkdir()
    wnids = zoo.wordnet_ids("imagenet")
    # The sample's naming, an apostrophe and a space included; JPEG as ImageNet ships them.
    for image, label, name in ((skimage.data.chelsea(), 281, "tabby cat's"), (skimage.data.coffee(), 967, "espresso")):
        Image.fromarray(image).save(flat / f"{wnids[label]}_{name}.JPEG", quality=90)
    return root, flat, spec.prototxt, zoo.find_weights(spec)


@pytest.mark.parametrize("backend, numerics", [pytest.param("pycaffe", "faithful", marks=requires_pycaffe),
                                               ("engine", "faithful"), ("engine", "fast")])
def test_a_flat_wnid_folder_sweeps_on_a_user_prototxt(user_model, tmp_path, capsys, backend, numerics):
    root, flat, prototxt, weights = user_model
    argv = ["experiment", "sweep", "--sources", str(flat), "--prototxt", str(prototxt), "--weights", str(weights),
            "--train-val", str(root / "train_val.prototxt"), "--resize", "256", "--backend", backend,
            "--device", "cpu", "--engine-mode", numerics, "--targets", "409,413", "--max-iter", "3",
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path), "--json", "-q"]
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert rc == cli.EXIT_OK, err
    got = json.loads(out, parse_constant=lambda token: pytest.fail(f"not strict JSON: {token}"))
    summary = got["summary"]
    assert summary["pairs"] == 4 and summary["model"] == prototxt.name  # 2 photographs x 2 targets
    # Both photographs were read with the classes their WordNet ids name.
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        labels = sorted({row[0] for row in db.execute("SELECT source_label FROM results")})
    assert labels == [281, 967]
