"""The models the project makes itself are real and well-behaved."""

import numpy as np
import pytest

from caffe_relabel.models import testmodels
from tests.conftest import requires_pycaffe

pytestmark = requires_pycaffe


def test_digits_model_reaches_95_percent_held_out(digits_pycaffe, digits_blobs, digits_data):
    pred = digits_pycaffe.forward(digits_blobs).argmax(1)
    assert len(pred) == 450
    assert (pred == digits_data["labels"]).mean() >= 0.95


@pytest.mark.parametrize("name", list(testmodels.BVLC_RANDOM_MODELS) + [
    pytest.param(name, marks=pytest.mark.slow) for name in testmodels.ZOO_ARCHITECTURES  # full-size, written on first use
])
def test_random_zoo_nets_are_not_degenerate(name):
    import skimage.data
    from skimage.transform import resize

    from caffe_relabel.backends.pycaffe import PycaffeClassifier

    clf = PycaffeClassifier(*testmodels.random_model(name))
    h = clf.input_shape[1]
    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    scale = testmodels.ZOO_INPUT_SCALE.get(name, 1.0)
    x = np.stack([(resize(p, (h, h))[:, :, ::-1].transpose(2, 0, 1) * 255 - 117) * scale for p in photos]).astype(np.float32)
    probs = clf.forward(x)
    assert clf.num_classes == 1000
    assert probs.max() < 0.9999  # not saturated: gradients flow
    assert testmodels.logit_spread(clf, x) > 0.5  # classes are told apart
    assert np.abs(probs[0] - probs[1]).max() > 1e-3  # different photos, different outputs
