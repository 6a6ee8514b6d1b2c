"""Image files to pixel arrays, with bounded time and memory.

Decoding goes through Pillow, after checks on the header alone:

- the file is a regular file of at most 1 GiB (:mod:`.bounded_read`);
- a file of several pages or frames (TIFF, GIF, APNG, WebP) is refused
  unless a page is chosen: reading one page silently would be a wrong
  answer, decoding them all an unbounded one;
- the chosen page has at most :data:`MAX_IMAGE_PIXELS` pixels and at most
  :data:`MAX_DECODED_BYTES` bytes of decoded samples.

Images of more than :data:`MAX_WORKING_PIXELS` pixels are pre-reduced here,
on their integer pixels, by an integer box filter (JPEGs while decoding,
through Pillow's ``draft``), so that no float64 image of the full size is
ever made: a 13000 x 13000 image would need 4 GB as float64, and several
times that while resizing. Networks take inputs of a few hundred pixels,
so the later anti-aliased resize (``preprocess.fit``) still averages many
pre-reduced pixels into each input pixel; images up to the cap (16.7
megapixels, more than most cameras) are not touched and are resized
exactly as before.

Colour comes out as Pillow converts it: CMYK (with Adobe's inverted JPEGs),
YCbCr, HSV and palette images become RGB (RGBA for a palette with
transparency), bilevel becomes grey. 16-bit grey and 16-bit RGB(A) PNG and
TIFF keep all 16 bits.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Optional, Union

import numpy as np

from caffe_relabel.files.bounded_read import open_regular
from caffe_relabel.errors import ImageFormatError

PathLike = Union[str, "os.PathLike[str]"]

#: Pixels of one page, from the header; more is refused before decoding.
MAX_IMAGE_PIXELS = 20000 * 20000
#: Decoded samples of one page (width x height x channels x bytes per sample).
MAX_DECODED_BYTES = 2**30
#: Larger images are box-reduced (integer factor) before becoming float64.
MAX_WORKING_PIXELS = 4096 * 4096

# Modes Pillow turns into RGB (or RGBA) with its own conversion.
_TO_RGB = {"CMYK": "RGB", "YCbCr": "RGB", "HSV": "RGB", "LAB": "RGB", "RGBX": "RGB", "RGBa": "RGBA",
           "PA": "RGBA", "La": "LA", "1": "L"}
_AS_IS = ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def read_pixels(path: PathLike, page: Optional[int] = None) -> np.ndarray:
    """The pixels of an image file: uint8 or uint16 H x W (x C), or float64 in [0, 1] if pre-reduced.

    ``page`` chooses one page (or frame) of a multi-page file, from 0; a
    multi-page file without it is refused.
    """
    from PIL import Image

    with open_regular(path, "image file", "image", ImageFormatError) as f:
        try:
            with warnings.catch_warnings():
                # Pillow's own size guard warns or raises; ours below is the one that applies.
                warnings.simplefilter("ignore")
                im = Image.open(f)
        except Image.DecompressionBombError as e:
            raise ImageFormatError(f"{path}: image is too large ({e})") from None
        except Exception as e:  # PIL raises many types for undecodable files
            raise ImageFormatError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
        with im:
            try:
                _choose_page(im, page, path)
                _check_size(im, path)
                factor = _reduction(im.size)
                if factor > 1 and im.format == "JPEG":
                    # Decode at 1/2, 1/4 or 1/8 scale: the full-size pixels are never made.
                    im.draft(im.mode, (math.ceil(im.size[0] / factor), math.ceil(im.size[1] / factor)))
                pixels = _decode(im, f, page, path)
            except ImageFormatError:
                raise
            except Exception as e:
                raise ImageFormatError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    factor = _reduction((pixels.shape[1], pixels.shape[0]))
    return box_reduce(pixels, factor) if factor > 1 else pixels


def _choose_page(im, page: Optional[int], path: PathLike) -> None:
    if page is None:
        # is_animated looks for a second frame only: quick even on a file of a million frames.
        if getattr(im, "is_animated", False) or getattr(im, "n_frames", 1) > 1:
            raise ImageFormatError(
                f"{path}: {im.format} file with several pages or frames; expected a single image "
                "(choose one with page=N)"
            )
        return
    frames = getattr(im, "n_frames", 1)
    if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page < frames:
        raise ImageFormatError(f"{path}: page {page!r} does not exist; the file has {frames} (0..{frames - 1})")
    im.seek(page)


def _check_size(im, path: PathLike) -> None:
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageFormatError(f"{path}: image is {w} x {h} pixels, more than the {MAX_IMAGE_PIXELS} accepted")
    sample_bytes = 4 if im.mode in ("I", "F") else 2 if im.mode.startswith("I;16") or _is_16_bit_colour(im) else 1
    decoded = w * h * max(len(im.getbands()), 1) * sample_bytes
    if decoded > MAX_DECODED_BYTES:
        raise ImageFormatError(
            f"{path}: image is {w} x {h} pixels ({decoded} bytes decoded), more than the {MAX_DECODED_BYTES} bytes accepted"
        )


def _reduction(size: tuple[int, int]) -> int:
    """The integer box factor that brings ``size`` within MAX_WORKING_PIXELS (1: none)."""
    w, h = size
    return max(1, math.ceil(math.sqrt(w * h / MAX_WORKING_PIXELS)))


def _is_16_bit_colour(im) -> bool:
    """A 16-bit RGB(A) PNG or TIFF, which Pillow would cut to 8 bits."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    if im.format == "PNG":
        return any(t[3] in ("RGB;16B", "RGBA;16B") for t in im.tile)
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return False


def _decode(im, f, page: Optional[int], path: PathLike) -> np.ndarray:
    if _is_16_bit_colour(im):
        return _png_16_bit(im, f) if im.format == "PNG" else _tiff_16_bit(f, page or 0, path)
    mode = im.mode
    if mode == "P":
        mode = "RGBA" if "transparency" in im.info else "RGB"
    mode = _TO_RGB.get(mode, mode)
    if mode not in _AS_IS:
        raise ImageFormatError(f"{path}: image mode {im.mode} is not supported; expected an RGB, grey or CMYK image")
    img = im.convert(mode) if mode != im.mode else im
    pixels = np.asarray(img)
    if mode.startswith("I;16"):
        return pixels.astype(np.uint16)
    if mode == "I":
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise ImageFormatError(f"{path}: 32-bit integer pixels outside 0..65535; expected 8- or 16-bit values")
        return pixels.astype(np.uint16)
    if mode == "F":
        return pixels.astype(np.float64)
    return pixels


def _png_16_bit(im, f) -> np.ndarray:
    """All 16 bits of an RGB(A) PNG, through Pillow's own PNG decoder.

    Pillow unpacks 16-bit colour to 8 bits, keeping the high byte ("RGB;16B").
    Decoding a second time with the little-endian unpacker ("RGB;16L") keeps
    the other byte of each big-endian sample: the low byte.
    """
    from PIL import Image

    high = np.asarray(im)
    f.seek(0)
    with Image.open(f) as again:
        again.tile = [t._replace(args=t.args.replace(";16B", ";16L")) for t in again.tile]
        low = np.asarray(_load(again))
    return (high.astype(np.uint16) << 8) | low


def _load(im):
    im.load()
    return im


def _tiff_16_bit(f, page: int, path: PathLike) -> np.ndarray:
    import tifffile

    f.seek(0)
    with tifffile.TiffFile(f, name=os.path.basename(str(path))) as tif:
        p = tif.pages[page]
        pixels = p.asarray()
        axes = p.axes
    if axes == "SYX":
        pixels = pixels.transpose(1, 2, 0)
    elif axes != "YXS":
        raise ImageFormatError(f"{path}: 16-bit TIFF with axes {axes}; expected rows, columns and samples")
    if pixels.dtype != np.uint16:
        raise ImageFormatError(f"{path}: TIFF samples are {pixels.dtype}; expected 16-bit integers")
    return pixels


def box_reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks, as float64 in [0, 1] (pixels past the last whole block are dropped)."""
    if pixels.dtype == np.uint8 or pixels.dtype == np.uint16:
        full = float(np.iinfo(pixels.dtype).max)
    else:
        full = 1.0
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = pixels[:h, :w].reshape(h // factor, factor, w // factor, factor, *pixels.shape[2:])
    return blocks.sum(axis=(1, 3), dtype=np.float64) / (factor * factor * full)
