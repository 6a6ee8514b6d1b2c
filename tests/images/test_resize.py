"""InputSpec.resample: fit's two resamplers, scikit-image (as before) and Pillow's float32 convolution resize."""

import dataclasses

import numpy as np
import pytest
from PIL import Image
from skimage.transform import resize

from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import InputSpec, fit, to_uint8

SPEC = InputSpec(size=(32, 32), mean=(127.0, 127.0, 127.0), resize=40, interpolation=3)
FILTERS = {0: Image.Resampling.NEAREST, 1: Image.Resampling.BILINEAR, 3: Image.Resampling.BICUBIC}


def _photo(h: int, w: int) -> np.ndarray:
    """A non-square image on the 8-bit grid: a hard edge (white on black, where a cubic overshoots) and a
    different gradient in each channel (a channel mixed up or transposed shows)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / (w - 1), y / (h - 1), (x + 2 * y) / (w + 2 * h)], axis=2)
    img[h // 3 : 2 * h // 3, w // 4 : w // 2] = (1.0, 1.0, 1.0)
    img[h // 3 : 2 * h // 3, w // 2 : 3 * w // 4] = 0.0
    return np.round(img * 255) / 255


def _pillow_planes(img: np.ndarray, new: tuple[int, int], order: int) -> np.ndarray:
    """Pillow's own float resize of each channel to ``new`` = (height, width), float64, not clipped."""
    return np.stack([np.asarray(Image.fromarray(img[:, :, c].astype(np.float32)).resize(
        (new[1], new[0]), FILTERS[order], reducing_gap=None), dtype=np.float64) for c in range(3)], axis=2)


def _crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    top, left = (img.shape[0] - size[0]) // 2, (img.shape[1] - size[1]) // 2
    return img[top : top + size[0], left : left + size[1]]


# (image shape, resized shape): shorter side to 40, the other in proportion.
SHAPES = {"landscape": ((90, 150), (40, 67)), "portrait": ((150, 90), (67, 40))}


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_pillow_is_pillows_float_resize_then_the_centre_crop_and_clip(shape, order):
    (h, w), new = SHAPES[shape]
    img = _photo(h, w)
    spec = dataclasses.replace(SPEC, interpolation=order, resample="pillow")
    got = fit(img, spec)
    resized = _pillow_planes(img, new, order)
    assert got.shape == (32, 32, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, np.clip(_crop(resized, (32, 32)), 0.0, 1.0), rtol=0, atol=1e-6)
    if order == 3:  # the edge overshoots in the crop: the clip is what keeps the image in [0, 1]
        assert _crop(resized, (32, 32)).max() > 1.0 + 1e-3 and _crop(resized, (32, 32)).min() < -1e-3
        assert got.min() == 0.0 and got.max() == 1.0


def test_pillow_resizes_straight_to_the_input_size_without_resize():
    img = _photo(90, 150)
    spec = dataclasses.replace(SPEC, size=(24, 48), resize=None, resample="pillow")
    np.testing.assert_allclose(fit(img, spec), np.clip(_pillow_planes(img, (24, 48), 3), 0, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("order", [1, 3])
def test_pillow_float_agrees_with_pillows_8_bit_resize_within_a_grey_level(order):
    # Pillow's 8-bit resize rounds and clips between its two passes: kept off black and white here, the
    # edge's overshoot is not clipped, and only the rounding tells the two apart.
    img = np.round((0.25 + 0.5 * _photo(90, 150)) * 255) / 255
    spec = dataclasses.replace(SPEC, interpolation=order, resample="pillow")
    eight = Image.fromarray(to_uint8(img)).resize((67, 40), FILTERS[order], reducing_gap=None)
    want = _crop(np.asarray(eight, dtype=np.float64) / 255, (32, 32))
    diff = np.abs(fit(img, spec) - want)
    assert diff.max() <= 1 / 255 + 1e-4
    assert diff.max() > 0  # the float path is not rounded to the 8-bit grid


@pytest.mark.parametrize("resample", ["skimage", "pillow"])
def test_an_image_at_the_input_size_is_returned_unchanged(resample):
    img = _photo(32, 32)
    assert fit(img, dataclasses.replace(SPEC, resample=resample)) is img


@pytest.mark.parametrize("order", [1, 3])
def test_skimage_is_scikit_images_resize_as_before(order):
    img = _photo(90, 150)
    spec = dataclasses.replace(SPEC, interpolation=order)
    assert spec.resample == "skimage"  # the default
    want = np.clip(_crop(resize(img, (40, 67), order=order, anti_aliasing=True, mode="edge"), (32, 32)), 0, 1)
    assert np.array_equal(fit(img, spec), want)
    assert not np.allclose(fit(img, dataclasses.replace(spec, resample="pillow")), want, atol=1e-3)


def test_resample_and_its_orders_are_checked():
    with pytest.raises(ArgumentError, match=r"^expected resample 'skimage' or 'pillow', got 'opencv'$"):
        dataclasses.replace(SPEC, resample="opencv")
    with pytest.raises(ArgumentError, match=r"^expected resample 'skimage' or 'pillow', got \['pillow'\]$"):
        dataclasses.replace(SPEC, resample=["pillow"])
    with pytest.raises(ArgumentError, match=r"^expected interpolation 0, 1, 3 \(spline order\) with "
                                            r"resample='pillow', got 2$"):
        dataclasses.replace(SPEC, interpolation=2, resample="pillow")
    with pytest.raises(ArgumentError, match=r"interpolation 0, 1, 2, 3, 4, 5 .*resample='skimage', got 6"):
        dataclasses.replace(SPEC, interpolation=6)
    assert dataclasses.replace(SPEC, interpolation=2).interpolation == 2  # scikit-image has a quadratic spline
    assert "resample='pillow'" in repr(dataclasses.replace(SPEC, resample="pillow"))
