import numpy as np
import pytest

from caffe_relabel.images.distortion import blob_distortion, distortion


def test_channels_are_summed_and_divided_by_pixels():
    a = np.zeros((10, 10, 3))
    b = a.copy()
    b[3, 4, :] = 0.1  # one pixel, three channels
    assert distortion(b, a) == pytest.approx(np.sqrt(3 * 0.01 / 100))


def test_googlenet_scale_single_grey_level():
    # Every channel of every pixel off by one grey level: sqrt(3) / 255.
    a = np.full((224, 224, 3), 0.5)
    assert distortion(a + 1 / 255, a) == pytest.approx(np.sqrt(3) / 255)


def test_blob_distortion_matches_image_distortion():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-100, 100, size=(2, 3, 5, 6))
    x1 = x0 + rng.normal(0, 1, size=x0.shape)
    imgs0 = x0.transpose(0, 2, 3, 1) / 255
    imgs1 = x1.transpose(0, 2, 3, 1) / 255
    d = blob_distortion(x1, x0)
    for i in range(2):
        assert d[i] == pytest.approx(distortion(imgs1[i], imgs0[i]), rel=1e-12)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        distortion(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))
