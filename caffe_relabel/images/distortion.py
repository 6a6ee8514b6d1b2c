"""The paper's distortion measure (its equation 3, after Szegedy et al.).

distortion(x', x) = sqrt( sum over pixels and channels of (x' - x)^2 / n ),
with x, x' in [0, 1] and n the number of pixels (224 * 224 = 50176 for
GoogLeNet): channels are summed, not averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe_relabel.errors import ArgumentError


def distortion(relabelled: np.ndarray, original: np.ndarray) -> float:
    """Distortion between two H x W x C images in [0, 1]."""
    a = np.asarray(relabelled, dtype=np.float64)
    b = np.asarray(original, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ArgumentError(f"expected two H x W x C images of one shape, got {list(a.shape)} and {list(b.shape)}")
    return float(image_distortion(a[None], b[None])[0])


# The batched forms are the one implementation; ``xp`` is numpy or torch (spelled alike in both),
# so the relabelling loop measures on the engine's device with the same float64 arithmetic.

def image_distortion(images: Any, originals: Any, xp: Any = np) -> Any:
    """Per-sample distortion of N x H x W x C images in [0, 1]."""
    n, pixels = images.shape[0], images.shape[1] * images.shape[2]
    d = xp.asarray(images, dtype=xp.float64) - xp.asarray(originals, dtype=xp.float64)
    return xp.sqrt(xp.sum((d ** 2).reshape(n, -1), axis=1) / pixels)


def blob_distortion(blobs: Any, originals: Any, pixel_unit: float = 255.0, xp: Any = np) -> Any:
    """Per-sample distortion of N x C x H x W blobs, in [0, 1] pixel units whatever the transform.

    ``pixel_unit``: blob units of a pixel going from 0 to 1 (:attr:`InputSpec.pixel_unit
    <caffe_relabel.images.preprocess.InputSpec.pixel_unit>`, raw_scale * input_scale); the mean
    and the channel order cancel out.
    """
    d = (xp.asarray(blobs, dtype=xp.float64) - xp.asarray(originals, dtype=xp.float64)) / pixel_unit
    pixels = d.shape[2] * d.shape[3]
    return xp.sqrt(xp.sum(d.reshape(d.shape[0], -1) ** 2, axis=1) / pixels)
