"""Images to network blobs and back.

An *image* here is a float64 H x W x 3 RGB array in [0, 1] (H x W x 1 for a
grey network) at the network's input size: the space where the paper
measures distortion. A *blob* is what the data layer receives, Caffe's
whole data transform applied: channels first, in the network's channel
order, (pixel * raw_scale - mean) * input_scale.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from caffe_relabel.files import atomic_write
from caffe_relabel.errors import ArgumentError, ImageFormatError

ImageLike = Union[str, "os.PathLike[str]", np.ndarray]

# Both backends compute the blob in float32: a transform must fit it.
_F32 = np.finfo(np.float32)
# Steps are fractions of a grey level (50/255 in the paper): this much headroom keeps them normal floats.
_STEP_HEADROOM = 2.0**16

@dataclass(frozen=True)
class InputSpec:
    """How a network expects its input: Caffe's data transform, image to blob.

    blob = (pixel * raw_scale - mean) * input_scale, pixel in [0, 1], as
    Caffe's classify.py (``--raw_scale``, ``--input_scale``) and a data
    layer's ``transform_param`` (the mean is subtracted before ``scale``).

    size: the net's input H x W; an image is resized and centre-cropped to it
        (Caffe's ``crop_size`` at test time).
    channel_order: "BGR" (Caffe's usual), "RGB" or "GREY".
    mean: per-channel means in the network's channel order, on the raw scale
        (0..raw_scale), or a C x h x w mean image (centre-cropped to the input size).
    resize: the shorter side is resized to this before the centre crop
        (256 for the BVLC models); None resizes straight to the input size.
    interpolation: spline order for resizing (1 bilinear, 3 bicubic).
    resample: who resizes (:mod:`caffe_relabel.images.resize`): "skimage"
        (scikit-image, as caffe.io; any order) or "pillow" (Pillow's
        anti-aliased convolution on float32; orders 0, 1, 3; a far faster bicubic).
    raw_scale: the pixel range the mean is given in (255: 8-bit pixels).
    input_scale: multiplies the blob after the mean is subtracted (Caffe's
        ``transform_param.scale``: 0.00390625 for LeNet, 0.017 for MobileNet).
    """

    size: tuple[int, int]
    channel_order: str = "BGR"
    mean: Union[tuple[float, ...], np.ndarray] = (104.0, 117.0, 123.0)
    resize: Optional[int] = 256
    interpolation: int = 1
    raw_scale: float = 255.0
    input_scale: float = 1.0
    resample: str = "skimage"

    def __post_init__(self) -> None:
        from caffe_relabel.images.resize import ORDERS

        if not isinstance(self.resample, str) or self.resample not in ORDERS:
            raise ArgumentError(f"expected resample {' or '.join(map(repr, ORDERS))}, got {self.resample!r}")
        if isinstance(self.interpolation, bool) or self.interpolation not in ORDERS[self.resample]:
            raise ArgumentError(f"expected interpolation {', '.join(map(str, ORDERS[self.resample]))} "
                                f"(spline order) with resample={self.resample!r}, got {self.interpolation!r}")
        for name in ("raw_scale", "input_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ArgumentError(f"expected {name} to be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ArgumentError(f"expected {name} to be a finite number > 0, got {value!r}")
        if self.channel_order not in ("BGR", "RGB", "GREY"):
            raise ArgumentError(f"expected channel_order 'BGR', 'RGB' or 'GREY', got {self.channel_order!r}")
        try:
            mean = np.asarray(self.mean, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentError(f"expected mean to be numbers, got {self.mean!r}") from None
        if not np.all(np.isfinite(mean)) or np.any(mean < 0):
            raise ArgumentError("expected finite mean values >= 0 (on the raw scale), got NaN, infinity or a negative value")
        if mean.ndim == 1 and mean.size != self.channels:
            raise ArgumentError(f"expected {self.channels} per-channel means, got {mean.size}")
        if mean.ndim == 3 and (mean.shape[0] != self.channels or mean.shape[1] < self.size[0] or mean.shape[2] < self.size[1]):
            raise ArgumentError(
                f"mean image of shape {list(mean.shape)} does not cover a {self.channels} x {self.size[0]} x {self.size[1]} input"
            )
        if mean.ndim not in (1, 3):
            raise ArgumentError(f"expected per-channel means or a C x H x W mean image, got shape {list(mean.shape)}")
        self._check_float32(mean)

    def _check_float32(self, mean: np.ndarray) -> None:
        """Refuse a transform whose blob float32 cannot hold: subnormal grey levels, overflow, or values so large
        that neighbouring grey levels round together (every image would then give the same blob)."""
        # Python floats: an underflow or overflow here is a value to refuse, not a RuntimeWarning.
        unit = float(self.raw_scale) * float(self.input_scale)
        grey = unit / 255.0
        low = float(_F32.tiny) * _STEP_HEADROOM * 255.0
        if not unit >= low:
            raise ArgumentError(f"raw_scale * input_scale = {unit:.3g} makes a grey level subnormal in float32; "
                                f"expected raw_scale * input_scale >= {low:.3g}")
        lo, hi = (float(mean.min()), float(mean.max())) if mean.size else (0.0, 0.0)
        field = "mean" if hi >= float(self.raw_scale) - lo else "raw_scale * input_scale"
        largest = max(hi, float(self.raw_scale) - lo) * float(self.input_scale)
        if not largest < float(_F32.max):
            raise ArgumentError(f"{field}: the blob would reach {largest:.3g}, past float32's {float(_F32.max):.3g}")
        spacing = float(np.spacing(np.float32(largest)))
        if spacing > grey:
            raise ArgumentError(f"{field}: the blob would reach {largest:.3g}, where float32 steps by {spacing:.3g}, "
                                f"more than a grey level ({grey:.3g}): images could not be told apart")

    @classmethod
    def from_transform_param(
        cls,
        path: "str | os.PathLike[str]",
        size: tuple[int, int],
        channel_order: str = "BGR",
        resize: Optional[int] = 256,
        interpolation: int = 1,
        raw_scale: float = 255.0,
        resample: str = "skimage",
    ) -> "InputSpec":
        """The spec a train_val prototxt's TEST-phase ``transform_param`` describes
        (mean_value or mean_file, scale, crop_size; see :mod:`caffe_relabel.netdef.transform_param`)."""
        from caffe_relabel.netdef.transform_param import read_transform_param

        channels = 1 if channel_order == "GREY" else 3
        t = read_transform_param(path, size, channels)
        mean = t.mean if t.mean is not None else (0.0,) * channels
        return cls(size=size, channel_order=channel_order, mean=mean, resize=resize, interpolation=interpolation,
                   raw_scale=raw_scale, input_scale=t.scale, resample=resample)

    def __repr__(self) -> str:
        # Field by field, with a mean image shown by its shape: printing a spec must not dump an array.
        def show(value: object) -> str:
            if isinstance(value, np.ndarray):
                return f"<{'x'.join(map(str, value.shape))} mean image>" if value.ndim > 1 else repr(tuple(value.tolist()))
            return repr(value)

        return f"InputSpec({', '.join(f'{f.name}={show(getattr(self, f.name))}' for f in fields(self))})"

    @property
    def channels(self) -> int:
        return 1 if self.channel_order == "GREY" else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size[0], self.size[1])

    @property
    def pixel_unit(self) -> float:
        """Blob units a pixel moves going from 0 to 1 (black to white): raw_scale * input_scale."""
        return float(self.raw_scale) * float(self.input_scale)

    @property
    def grey_level(self) -> float:
        """Blob units of one grey level (1/255 of the pixel range), whatever the transform."""
        return self.pixel_unit / 255.0

    def mean_blob(self) -> np.ndarray:
        """The mean as a C x H x W array (broadcast or centre-cropped), on the raw scale."""
        mean = np.asarray(self.mean, dtype=np.float64)
        h, w = self.size
        if mean.ndim == 1:
            return np.broadcast_to(mean[:, None, None], (self.channels, h, w))
        top = (mean.shape[1] - h) // 2
        left = (mean.shape[2] - w) // 2
        return mean[:, top : top + h, left : left + w]

    def blob_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """C x H x W blob values of a black (0) and a white (1) pixel: the blob's valid range."""
        mean = self.mean_blob()
        return (0.0 - mean) * self.input_scale, (self.raw_scale - mean) * self.input_scale


def load_image(source: ImageLike, page: Optional[int] = None) -> np.ndarray:
    """Any image Pillow reads (or an array) as float64 RGB H x W x 3 in [0, 1].

    Grey images are repeated over the three channels, an alpha channel is
    composited over white, 16-bit and float files keep their precision,
    other colour spaces (CMYK, palette) are converted by Pillow. A file of
    several pages or frames needs ``page``. Images of more than 16.7
    megapixels come back box-reduced (see :mod:`caffe_relabel.images.decode`).
    """
    if isinstance(source, np.ndarray):
        return _to_rgb_float(_bounded_array(source), "<array>")
    if not isinstance(source, (str, os.PathLike)):
        raise ArgumentError(f"expected an image path or a numpy array, got {type(source).__name__}")
    return _to_rgb_float(_read(Path(source), page), str(source))


def _bounded_array(img: np.ndarray) -> np.ndarray:
    """An array image within the size a file may have, box-reduced as a file would be (no full-size float64 copy)."""
    from caffe_relabel.images.decode import MAX_IMAGE_PIXELS, _reduction, box_reduce

    if img.ndim not in (2, 3):
        raise ImageFormatError(f"<array>: expected H x W, H x W x 3 or H x W x 4 pixels, got shape {list(img.shape)}")
    pixels = img.shape[0] * img.shape[1]
    if pixels > MAX_IMAGE_PIXELS:
        raise ImageFormatError(f"<array>: image is {img.shape[1]} x {img.shape[0]} pixels, more than the "
                               f"{MAX_IMAGE_PIXELS} accepted")
    factor = _reduction((img.shape[1], img.shape[0]))
    if factor > 1 and img.dtype in (np.uint8, np.uint16):
        return box_reduce(img, factor)
    if factor > 1 and np.issubdtype(img.dtype, np.floating) and np.isfinite(img).all() and \
            0.0 <= img.min() and img.max() <= 1.0:
        return box_reduce(img, factor)
    return img


def _read(path: Path, page: Optional[int]) -> np.ndarray:
    from caffe_relabel.images.decode import read_pixels

    return read_pixels(path, page)


def _to_rgb_float(img: np.ndarray, name: str) -> np.ndarray:
    if img.dtype == np.bool_:
        img = img.astype(np.float64)
    elif np.issubdtype(img.dtype, np.integer):
        if img.dtype not in (np.uint8, np.uint16):
            raise ImageFormatError(f"{name}: expected 8- or 16-bit pixels, got dtype {img.dtype}")
        img = img.astype(np.float64) / np.iinfo(img.dtype).max
    elif np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float64)
        if not np.all(np.isfinite(img)):
            raise ImageFormatError(f"{name}: image holds NaN or infinite values")
        if img.size and (img.min() < 0 or img.max() > 1):
            raise ImageFormatError(
                f"{name}: float image values must lie in [0, 1], got {img.min():.4g}..{img.max():.4g}"
            )
    else:
        raise ImageFormatError(f"{name}: expected a numeric image, got dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or min(img.shape[:2]) < 1:
        raise ImageFormatError(f"{name}: expected H x W, H x W x 3 or H x W x 4 pixels, got shape {list(img.shape)}")
    if img.shape[2] in (2, 4):
        # Composite over white: transparent pixels carry no colour.
        alpha = img[:, :, -1:]
        img = img[:, :, :-1] * alpha + (1.0 - alpha)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def fit(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize (shorter side to ``spec.resize``) and centre-crop to the input size.

    An image already at the input size is returned unchanged. The result is
    RGB (or grey, H x W x 1, for a GREY network) float64 in [0, 1].
    ``spec.resample`` and ``spec.interpolation`` say how it is resized.
    """
    from caffe_relabel.images.resize import RESAMPLERS

    resize = RESAMPLERS[spec.resample]
    h, w = spec.size
    if image.shape[:2] != (h, w):
        if spec.resize is None:
            image = resize(image, (h, w), spec.interpolation, True)
        else:
            if spec.resize < max(h, w):
                raise ArgumentError(f"resize {spec.resize} is smaller than the input size {h} x {w}")
            s = spec.resize / min(image.shape[:2])
            new = (max(h, round(image.shape[0] * s)), max(w, round(image.shape[1] * s)))
            image = resize(image, new, spec.interpolation, s < 1)
            top = (new[0] - h) // 2
            left = (new[1] - w) // 2
            image = image[top : top + h, left : left + w]
        image = np.clip(image, 0.0, 1.0)
    if spec.channel_order == "GREY" and image.shape[2] == 3:
        from skimage.color import rgb2gray

        image = rgb2gray(image)[:, :, None]
    return np.ascontiguousarray(image)


def image_to_blob(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """An image at the input size (from :func:`fit`) to a C x H x W float32 blob."""
    if image.shape[:2] != spec.size or image.shape[2] != spec.channels:
        raise ArgumentError(
            f"expected an image of {spec.size[0]} x {spec.size[1]} x {spec.channels}, got {list(image.shape)}"
        )
    return images_to_blobs(image[None], spec)[0]


def blob_to_image(blob: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Inverse of :func:`image_to_blob`: float64 H x W x C in image space (not clipped)."""
    return np.ascontiguousarray(blobs_to_images(np.asarray(blob)[None], spec)[0])


# The batched forms below are the one implementation of the transform. ``xp`` is numpy or torch
# (the functions used are spelled alike in both), so the relabelling loop runs the same float64
# arithmetic on the engine's device; ``mean`` is spec.mean_blob() as an array of that kind.

def images_to_blobs(images: Any, spec: InputSpec, xp: Any = np, mean: Any = None) -> Any:
    """N x H x W x C images in [0, 1] to N x C x H x W float32 blobs: (pixel * raw_scale - mean) * input_scale."""
    mean = spec.mean_blob() if mean is None else mean
    chw = _flip(xp.moveaxis(xp.asarray(images, dtype=xp.float64), 3, 1), spec, xp)
    return xp.asarray((chw * spec.raw_scale - mean) * spec.input_scale, dtype=xp.float32)


def blobs_to_images(blobs: Any, spec: InputSpec, xp: Any = np, mean: Any = None) -> Any:
    """Inverse of :func:`images_to_blobs`: float64 N x H x W x C (a view; not clipped)."""
    mean = spec.mean_blob() if mean is None else mean
    chw = (xp.asarray(blobs, dtype=xp.float64) / spec.input_scale + mean) / spec.raw_scale
    return xp.moveaxis(_flip(chw, spec, xp), 1, 3)


def quantize(images: Any, xp: Any = np) -> Any:
    """Images in [0, 1] on the 8-bit grid (what :func:`to_uint8` keeps), still float64 in [0, 1]."""
    return xp.clip(xp.round(xp.asarray(images, dtype=xp.float64) * 255.0), 0, 255) / 255.0


def _flip(chw: Any, spec: InputSpec, xp: Any) -> Any:
    return xp.flip(chw, (1,)) if spec.channel_order == "BGR" else chw


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit pixels of an image in [0, 1] (rounded to nearest, clipped)."""
    return np.round(quantize(image) * 255.0).astype(np.uint8)


# Formats an 8-bit image can be saved in (PNG, BMP, TIFF and PPM/PGM keep it exact).
SAVE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".jpg", ".jpeg", ".webp")


def check_output_path(path: "str | os.PathLike[str]") -> Path:
    """Refuse an output path :func:`save_image` cannot write, before any work is done for it."""
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise ArgumentError(f"expected an output image file name, got {text!r}")
    # Path() drops a trailing slash: "new.png/" names a folder, and must not be written as the file new.png.
    if text.endswith(("/", os.sep)):
        raise ArgumentError(f"{text}: expected an image file name, got a folder (trailing slash)")
    p = Path(text)
    if p.suffix.lower() not in SAVE_SUFFIXES:
        raise ImageFormatError(f"{p}: expected an image file name ending in {', '.join(SAVE_SUFFIXES)}")
    if p.is_dir() or not p.parent.is_dir():
        raise ImageFormatError(f"{p}: expected a file in an existing folder")
    return p


def save_image(image: np.ndarray, path: "str | os.PathLike[str]") -> None:
    """Save as 8-bit (PNG keeps it exact); grey H x W x 1 is saved as grey.

    An unwritable or full destination raises OutputError; nothing partial is left.
    """
    p = check_output_path(path)
    pixels = to_uint8(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    try:
        data = _encode(pixels, p.suffix.lower())
    except ValueError as e:
        raise ImageFormatError(f"{p}: cannot save the image ({type(e).__name__}: {e})") from None
    # Encoded in memory, written by us alone, atomically: a full disk or a killed process leaves the old
    # file or none, never half an image, and no encoder is left holding a file it cannot close.
    atomic_write.write_bytes(p, data, "image")


def _encode(pixels: np.ndarray, suffix: str) -> bytes:
    """The file's bytes, by the encoders scikit-image's imsave uses: tifffile for TIFF, imageio otherwise."""
    if suffix in (".tif", ".tiff"):
        import io

        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="rgb" if pixels.ndim == 3 else "minisblack")
        return buffer.getvalue()
    import imageio.v3

    return imageio.v3.imwrite("<bytes>", pixels, extension=suffix)

