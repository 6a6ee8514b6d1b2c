"""The resamplers :func:`caffe_relabel.images.preprocess.fit` resizes with, by name (``InputSpec.resample``).

Each takes a float64 H x W x C image in [0, 1], the new (height, width), the
spline order (0 nearest, 1 bilinear, 3 bicubic) and whether to anti-alias,
and returns float64 H' x W' x C (not clipped: a cubic overshoots at edges).

- "skimage": scikit-image's ``resize``, as ``caffe.io.resize_image`` (the
  paper's); any order 0..5. Its bicubic is a float64 spline, slow on photographs.
- "pillow": Pillow's convolution resize on float32 ("F") planes, its filters
  widened by the reduction factor (anti-aliasing always; ``reducing_gap=None``,
  so exact, not the faster JPEG-style reduction); orders 0, 1 and 3.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Resampler = Callable[[np.ndarray, "tuple[int, int]", int, bool], np.ndarray]


def skimage_resize(image: np.ndarray, shape: "tuple[int, int]", order: int, anti_aliasing: bool) -> np.ndarray:
    from skimage.transform import resize

    return resize(image, shape, order=order, anti_aliasing=anti_aliasing, mode="edge")


def pillow_resize(image: np.ndarray, shape: "tuple[int, int]", order: int, anti_aliasing: bool) -> np.ndarray:
    """``anti_aliasing`` is not an option here: Pillow's filters always widen on a reduction."""
    from PIL import Image

    size = (shape[1], shape[0])  # Pillow's (width, height)
    resample = Image.Resampling[PILLOW_FILTERS[order]]
    planes = [Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32)).resize(
        size, resample=resample, reducing_gap=None) for c in range(image.shape[2])]
    return np.stack([np.asarray(p, dtype=np.float64) for p in planes], axis=2)


#: Spline order -> Pillow's filter of that order (by name: Pillow is imported only to resize).
PILLOW_FILTERS = {0: "NEAREST", 1: "BILINEAR", 3: "BICUBIC"}

#: InputSpec.resample -> its resampler.
RESAMPLERS: "dict[str, Resampler]" = {"skimage": skimage_resize, "pillow": pillow_resize}

#: The spline orders each resampler takes.
ORDERS: "dict[str, tuple[int, ...]]" = {"skimage": (0, 1, 2, 3, 4, 5), "pillow": tuple(PILLOW_FILTERS)}
