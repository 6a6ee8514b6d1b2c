"""The offline ImageNet source set: bundled photos, six crops each."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from caffe_relabel.experiments.sources import BUNDLED_PHOTOS, CROPS, bundled_photo, by_class, crops, default_sources


def test_every_bundled_photo_loads_as_rgb():
    for name in BUNDLED_PHOTOS:
        img = bundled_photo(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] >= 150 and 0.0 <= img.min() <= img.max() <= 1.0
    assert {n.split(":")[0] for n in BUNDLED_PHOTOS} == {"skimage", "sklearn", "matplotlib"}


def test_crops_cover_the_named_fractions():
    img = np.arange(200 * 400).reshape(200, 400, 1)
    c = crops(img)
    assert set(c) == set(CROPS) and c["full"].shape == (200, 400, 1) and c["centre"].shape == (150, 300, 1)
    assert c["bottom-right"][0, 0, 0] == img[40, 80, 0] and c["top-left"].shape == (160, 320, 1)


def test_the_imagenet_default_set_has_six_framings_per_photo():
    srcs = default_sources(SimpleNamespace(label_set="imagenet", name="m"))
    assert len(srcs) == len(BUNDLED_PHOTOS) * len(CROPS) and len({s.id for s in srcs}) == len(srcs)
    groups = by_class(srcs)
    # The SVM splits each class into 2 train + 3 test images: every class needs five.
    assert min(len(g) for g in groups.values()) >= 5 and groups[665][0].id.startswith("skimage:stereo_motorcycle")


@pytest.mark.slow
def test_efficientnet_ranks_each_photo_s_class_in_its_top_3():
    from caffe_relabel.models import zoo
    from caffe_relabel.experiments.common import open_model
    from caffe_relabel.images.preprocess import fit, image_to_blob

    if zoo.find_weights(zoo.get("efficientnet_lite0")) is None:
        pytest.skip("efficientnet_lite0 not converted")
    net = open_model("efficientnet_lite0")
    for name, label in BUNDLED_PHOTOS.items():
        probs = net.classifier.forward(image_to_blob(fit(bundled_photo(name), net.input), net.input)[None])[0]
        assert label in np.argsort(-probs)[:3], name
