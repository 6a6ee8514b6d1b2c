"""bench/peers.py hands the attacks the same network the Relabeller uses, and runs on ImageNet photographs."""

import numpy as np
import pytest
import torch

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends.engine import EngineClassifier
from caffe_relabel.images.preprocess import image_to_blob
from caffe_relabel.models.model import Model
from tests.bench.photos import efficientnet_ready, sample_folder  # noqa: F401  (a fixture)


def test_public_module_gives_the_logits_of_the_preprocessed_image(bench_module):
    peers = bench_module("peers")
    assert not hasattr(peers, "BlobInput")  # the attacks get the library's own model.module
    clf = EngineClassifier(testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS)
    spec = zoo.get("digits").input
    images = list(np.random.default_rng(0).uniform(0, 1, (3,) + spec.size + (spec.channels,)))
    module = Model(clf, spec).module
    with torch.no_grad():
        got = module(peers.to_tensor(images, clf.module.device)).numpy()
    want = clf.blob(np.stack([image_to_blob(im, spec) for im in images]), clf.module.logits_name)
    # float32 blob built two ways (torch vs numpy float64 then cast): differences of one ulp in the input
    assert np.allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def test_a_tiny_run_on_imagenet_photographs_reports_the_bim20_ratio(bench_module, tmp_path,
                                                                   efficientnet_ready):  # noqa: F811
    import json

    pytest.importorskip("torchattacks")
    peers = bench_module("peers")
    folder = sample_folder(tmp_path / "photos")
    out = tmp_path / "peers.json"
    peers.main(["--sources", str(folder), "--photos", "2", "--pairs", "3", "--batch", "2",
                "--methods", "relabeller", "bim20", "--out", str(out)])
    got = json.loads(out.read_text())
    assert got["sources"] == str(folder)
    assert [p["photo"] for p in got["pairs"]] == sorted(f.name for f in folder.iterdir()) + [got["pairs"][0]["photo"]]
    rows = {r["method"]: r for r in got["methods"]}
    assert got["bim20_over_relabeller_time"] == rows["torchattacks BIM-20"]["seconds"] / rows["relabeller"]["seconds"]
    assert got["successes_under_cap_relabeller_bim20"] == {
        "relabeller": rows["relabeller"]["success_under_cap"], "bim20": rows["torchattacks BIM-20"]["success_under_cap"]}
    assert rows["torchattacks BIM-20"]["image_iterations"] == 20 * 3
