"""Image decoding: colour spaces, 16 bits, pages and frames, and bounded memory for huge images."""

import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from caffe_relabel.images import decode as image_read
from caffe_relabel.errors import ImageFormatError
from caffe_relabel.images.preprocess import load_image
from tests.limited import run_limited


def _png16(path, pixels: np.ndarray) -> None:
    """A 16-bit RGB(A) PNG (Pillow cannot write one); rows use the Sub filter, whose step is the pixel size."""
    h, w, c = pixels.shape
    raw = pixels.astype(">u2").view(np.uint8).reshape(h, w * c * 2)
    step = c * 2
    sub = raw.copy()
    sub[:, step:] = raw[:, step:] - raw[:, :-step]  # uint8 wraps, as PNG's filter does
    data = b"".join(b"\x01" + row.tobytes() for row in sub)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_keeps_every_bit(tmp_path, channels):
    rng = np.random.default_rng(0)
    px = rng.integers(0, 65536, size=(5, 7, channels), dtype=np.uint16)
    px[..., 3:] = 65535  # opaque: compositing leaves the colour as it is
    p = tmp_path / "deep.png"
    _png16(p, px)
    assert np.array_equal(image_read.read_pixels(p), px)
    assert np.array_equal(load_image(p), px[..., :3] / 65535)


def test_cmyk_jpeg_is_converted_not_read_as_alpha(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("RGB", (32, 32), (200, 30, 30)).convert("CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    img = load_image(p)
    # JPEG loses a little; a K channel taken for alpha would give near-white instead.
    assert np.allclose(img.mean(axis=(0, 1)), np.array([200, 30, 30]) / 255, atol=0.05)


def test_palette_png_with_transparency(tmp_path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((1, 0), 1)
    p = tmp_path / "pal.png"
    im.save(p, transparency=1)
    img = load_image(p)
    assert np.allclose(img[0, 0], (1, 0, 0))
    assert np.allclose(img[0, 1], (1, 1, 1))  # transparent: white


@pytest.mark.parametrize("mode,value,expected", [("1", 1, 1.0), ("LA", (100, 255), 100 / 255), ("I;16", 1001, 1001 / 65535)])
def test_other_modes(tmp_path, mode, value, expected):
    p = tmp_path / "m.png"
    Image.new(mode, (3, 2), value).save(p)
    img = load_image(p)
    assert img.shape == (2, 3, 3) and np.allclose(img, expected)


def test_ycbcr_tiff_is_converted(tmp_path):
    p = tmp_path / "y.tif"
    Image.new("RGB", (8, 8), (10, 200, 60)).convert("YCbCr").save(p)
    assert np.allclose(load_image(p)[0, 0], np.array([10, 200, 60]) / 255, atol=0.02)


def _multipage_tiff(p, n=3):
    pages = [Image.new("RGB", (6, 4), (40 * i, 0, 0)) for i in range(n)]
    pages[0].save(p, save_all=True, append_images=pages[1:])


def test_multipage_tiff_is_refused_or_the_page_is_chosen(tmp_path):
    p = tmp_path / "pages.tif"
    _multipage_tiff(p)
    with pytest.raises(ImageFormatError, match="pages.tif: TIFF file with several pages"):
        load_image(p)
    assert np.allclose(load_image(p, page=2)[0, 0], (80 / 255, 0, 0))
    with pytest.raises(ImageFormatError, match="page 3 does not exist; the file has 3"):
        load_image(p, page=3)


def test_gif_of_many_frames_is_refused_quickly(tmp_path):
    frames = [Image.new("RGB", (64, 64), (i % 256, 40 * (i // 256), 0)) for i in range(2000)]
    p = tmp_path / "many.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    start = time.monotonic()
    with pytest.raises(ImageFormatError, match="several pages or frames"):
        load_image(p)
    # Generous: only the first two frames are looked at (0.01 s here); decoding 2000 would take much longer.
    assert time.monotonic() - start < 5
    assert load_image(p, page=1).shape == (64, 64, 3)


def test_animated_png_is_refused(tmp_path):
    p = tmp_path / "a.png"
    frames = [Image.new("RGB", (8, 8), (i * 50, 0, 0)) for i in range(3)]
    frames[0].save(p, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageFormatError, match="PNG file with several pages"):
        load_image(p)


def test_gif_with_a_huge_screen_is_refused_from_the_header(tmp_path):
    p = tmp_path / "bomb.gif"
    Image.new("P", (8, 8)).save(p)
    data = bytearray(p.read_bytes())
    data[6:10] = struct.pack("<HH", 65535, 65535)  # the logical screen
    p.write_bytes(bytes(data))
    with pytest.raises(ImageFormatError, match="bomb.gif: image is (too large|65535 x 65535 pixels)"):
        load_image(p)


def test_large_images_are_box_reduced_before_float(tmp_path):
    px = np.zeros((4200, 4200), np.uint8)  # 17.6 Mpx: over the 16.7 Mpx budget, so halved
    px[::2] = 200  # alternate rows: a 2x2 box averages them to 100
    p = tmp_path / "big.png"
    Image.fromarray(px).save(p)
    img = load_image(p)
    assert img.shape == (2100, 2100, 3)
    assert np.allclose(img, 100 / 255)


def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path):
    p = tmp_path / "big.jpg"
    Image.new("RGB", (8192, 4100), (0, 128, 255)).save(p)
    img = image_read.read_pixels(p)
    # draft picks scale 1/2: 4096 x 2050 is within the working budget, so no box reduction follows.
    assert img.shape == (2050, 4096, 3) and img.dtype == np.uint8


@pytest.mark.slow  # about 25 s: making and decoding a 169-megapixel PNG
def test_13000_square_png_stays_within_bounded_memory(tmp_path):
    p = tmp_path / "huge.png"
    Image.new("RGB", (13000, 13000), (10, 20, 30)).save(p, compress_level=1)
    # The float64 image of this size alone is 4 GB; the limit leaves room for the
    # imports (about 1.5 GB of address space) and the uint8 decode (0.5 GB, twice).
    r = run_limited(f"""
        import numpy as np
        from caffe_relabel.images.preprocess import InputSpec, fit, load_image
        img = fit(load_image({str(p)!r}), InputSpec(size=(224, 224)))
        print(img.shape, np.round(img[100, 100] * 255).astype(int).tolist())
    """, memory_bytes=4 * 2**30, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["(224,", "224,", "3)", "[10,", "20,", "30]"]
