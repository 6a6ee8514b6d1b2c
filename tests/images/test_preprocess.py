import warnings

import numpy as np
import pytest
import skimage.io

from caffe_relabel.errors import ImageFormatError
from caffe_relabel.images.preprocess import InputSpec, blob_to_image, fit, image_to_blob, load_image, save_image, to_uint8

GOOGLENET = InputSpec(size=(224, 224), channel_order="BGR", mean=(104.0, 117.0, 123.0), resize=256)


def test_grey_file_becomes_three_equal_channels(tmp_path):
    p = tmp_path / "g.png"
    skimage.io.imsave(p, np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, check_contrast=False)
    img = load_image(p)
    assert img.shape == (8, 8, 3)
    assert np.array_equal(img[:, :, 0], img[:, :, 2])
    assert img[0, 1, 0] == pytest.approx(4 / 255)


def test_rgba_is_composited_over_white(tmp_path):
    px = np.zeros((2, 2, 4), np.uint8)
    px[0, 0] = (255, 0, 0, 255)  # opaque red
    px[0, 1] = (255, 0, 0, 0)  # fully transparent
    p = tmp_path / "a.png"
    skimage.io.imsave(p, px, check_contrast=False)
    img = load_image(p)
    assert np.allclose(img[0, 0], (1, 0, 0))
    assert np.allclose(img[0, 1], (1, 1, 1))


# (5, 4, 3): tifffile writes (4, 4, 3) as 4 planes of 4 x 3, an RGBA image.
@pytest.mark.parametrize("name,shape", [("deep.png", (4, 4)), ("deep.tif", (5, 4, 3))])
def test_16_bit_keeps_precision(tmp_path, name, shape):
    px = np.full(shape, 1000, np.uint16)
    px[0, 0] = 1001
    p = tmp_path / name
    skimage.io.imsave(p, px, check_contrast=False)
    img = load_image(p)
    assert img[0, 0, 0] == pytest.approx(1001 / 65535)
    assert img[1, 1, 2] == pytest.approx(1000 / 65535)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_unreadable_files_name_the_file(tmp_path, content):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageFormatError, match="bad.png"):
        load_image(p)


def test_missing_file(tmp_path):
    with pytest.raises(ImageFormatError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_float_array_out_of_range_is_refused():
    with pytest.raises(ImageFormatError, match=r"\[0, 1\]"):
        load_image(np.full((4, 4, 3), 2.0))
    with pytest.raises(ImageFormatError, match="NaN"):
        load_image(np.full((4, 4, 3), np.nan))


def test_blob_is_bgr_scaled_and_mean_subtracted():
    img = np.zeros((224, 224, 3))
    img[:, :, 0] = 1.0  # red
    blob = image_to_blob(img, GOOGLENET)
    assert blob.shape == (3, 224, 224) and blob.dtype == np.float32
    assert blob[0, 0, 0] == pytest.approx(-104.0)  # blue channel first
    assert blob[1, 0, 0] == pytest.approx(-117.0)
    assert blob[2, 0, 0] == pytest.approx(255.0 - 123.0)  # red last


def test_round_trip():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, size=(224, 224, 3))
    back = blob_to_image(image_to_blob(img, GOOGLENET), GOOGLENET)
    np.testing.assert_allclose(back, img, atol=1e-6)  # float32 blob


def test_mean_image_is_centre_cropped():
    mean = np.zeros((3, 256, 256))
    mean[:, 16:240, 16:240] = 7.0
    spec = InputSpec(size=(224, 224), mean=mean)
    blob = image_to_blob(np.zeros((224, 224, 3)), spec)
    assert np.all(blob == -7.0)


def test_fit_resizes_shorter_side_then_centre_crops():
    img = np.zeros((300, 600, 3))
    img[:, 290:310] = 1.0  # a bright stripe in the middle survives the crop
    out = fit(img, GOOGLENET)
    assert out.shape == (224, 224, 3)
    assert out[:, 112].min() > 0.9 and out[:, 0].max() < 0.1


def test_fit_keeps_an_image_at_input_size():
    img = np.random.default_rng(1).uniform(0, 1, (224, 224, 3))
    assert np.array_equal(fit(img, GOOGLENET), img)


def test_grey_network_gets_one_channel():
    spec = InputSpec(size=(16, 16), channel_order="GREY", mean=(128.0,), resize=None)
    out = fit(np.full((32, 32, 3), 0.5), spec)
    assert out.shape == (16, 16, 1)
    assert image_to_blob(out, spec).shape == (1, 16, 16)


def test_spec_validation():
    with pytest.raises(ValueError, match="3 per-channel means"):
        InputSpec(size=(4, 4), mean=(1.0, 2.0))
    with pytest.raises(ValueError, match="channel_order"):
        InputSpec(size=(4, 4), channel_order="BRG")


def test_save_is_8bit_round_to_nearest(tmp_path):
    img = np.full((4, 4, 3), 100.4 / 255)
    img[0, 0, 0] = 100.6 / 255
    p = tmp_path / "o.png"
    save_image(img, p)
    px = skimage.io.imread(p)
    assert px[0, 0, 0] == 101 and px[1, 1, 1] == 100
    assert np.array_equal(px, to_uint8(img))


@pytest.mark.parametrize("kw", [dict(raw_scale=0), dict(raw_scale=-1.0), dict(input_scale=float("nan")),
                                dict(input_scale=float("inf")), dict(raw_scale="255"), dict(input_scale=True),
                                dict(input_scale=0.0), dict(mean=(float("nan"), 0, 0)), dict(mean=(-1.0, 0, 0)),
                                dict(mean=(float("inf"), 0, 0))])
def test_input_spec_refuses_bad_scale_and_mean(kw):
    with pytest.raises(ValueError, match="scale|mean"):
        InputSpec(size=(4, 4), **kw)


@pytest.mark.parametrize("kw, match", [
    (dict(raw_scale=1e-320), "raw_scale \\* input_scale = .*subnormal"),
    (dict(input_scale=1e-320), "raw_scale \\* input_scale = .*subnormal"),
    (dict(raw_scale=1e-30, input_scale=1e-5), "subnormal"),
    (dict(raw_scale=1e308), "raw_scale \\* input_scale: the blob would reach 1e\\+308, past float32"),
    (dict(input_scale=1e308), "raw_scale \\* input_scale: the blob would reach inf, past float32"),
    (dict(mean=(1e300, 0, 0)), "mean: the blob would reach 1e\\+300, past float32"),
    (dict(mean=(0, 0, 1e9)), "mean: .*float32 steps by 64, more than a grey level"),
])
def test_input_spec_refuses_what_float32_cannot_hold(kw, match):
    from caffe_relabel.errors import ArgumentError

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before any overflowing arithmetic warns
        with pytest.raises(ArgumentError, match=match):
            InputSpec(size=(4, 4), **kw)


@pytest.mark.parametrize("kw", [dict(mean=(1e6, 0, 0)), dict(raw_scale=1.0, input_scale=1e-20), dict(input_scale=1e30)])
def test_input_spec_takes_extreme_transforms_float32_still_resolves(kw):
    spec = InputSpec(size=(2, 2), resize=None, **kw)
    blobs = [image_to_blob(np.full((2, 2, 3), v / 255), spec) for v in (0, 1)]
    assert np.isfinite(blobs[1]).all() and (blobs[1] != blobs[0]).all()  # one grey level apart stays apart


@pytest.mark.parametrize("name", ["", " ", "new.png/"])
def test_output_path_that_names_no_file_is_refused(tmp_path, name):
    from caffe_relabel.errors import ArgumentError
    from caffe_relabel.images.preprocess import check_output_path

    path = str(tmp_path / name) + "/" if name.endswith("/") else name
    with pytest.raises(ArgumentError, match="expected an (output )?image file name"):
        save_image(np.zeros((2, 2, 3)), path)
    with pytest.raises(ArgumentError):
        check_output_path(path)
    assert list(tmp_path.iterdir()) == []  # new.png/ was not written as the file new.png


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_a_full_disk_is_one_error_and_no_ignored_exception(tmp_path, suffix):
    import subprocess
    import sys

    # A file-size limit is a full disk for this process: the write fails with EFBIG (SIGXFSZ ignored).
    code = ("import gc, resource, signal, numpy as np\n"
            "from caffe_relabel.images.preprocess import save_image\n"
            "from caffe_relabel.errors import OutputError\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.RLIM_INFINITY))\n"
            "try:\n"
            f"    save_image(np.random.default_rng(0).uniform(size=(32, 32, 3)), {str(tmp_path / ('o' + suffix))!r})\n"
            "except OutputError as e:\n"
            "    print(e)\n"
            "gc.collect()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "cannot write image" in done.stdout, done.stdout + done.stderr
    assert done.stderr == ""  # an encoder holding the file it could not close would print "Exception ignored"
    assert list(tmp_path.iterdir()) == []


def test_saved_bytes_are_what_scikit_image_writes(tmp_path):
    import skimage.io

    from caffe_relabel.images.preprocess import SAVE_SUFFIXES

    rng = np.random.default_rng(0)
    for pixels in (rng.uniform(size=(12, 10, 3)), rng.uniform(size=(12, 10, 1))):
        for suffix in SAVE_SUFFIXES:
            ours, theirs = tmp_path / f"ours{suffix}", tmp_path / f"theirs{suffix}"
            save_image(pixels, ours)
            u8 = to_uint8(pixels)
            skimage.io.imsave(str(theirs), u8[:, :, 0] if u8.shape[2] == 1 else u8, check_contrast=False)
            assert ours.read_bytes() == theirs.read_bytes(), suffix


def test_blob_is_caffes_transform_and_inverts():
    # Caffe: blob = (pixel * raw_scale - mean) * input_scale, the mean subtracted before the scale.
    spec = InputSpec(size=(2, 2), channel_order="RGB", mean=(0.5, 1.0, 0.25), resize=None, raw_scale=2.0, input_scale=4.0)
    image = np.array([[[0.0, 0.5, 1.0]] * 2] * 2)
    blob = image_to_blob(image, spec)
    np.testing.assert_array_equal(blob[:, 0, 0], [(0.0 * 2 - 0.5) * 4, (0.5 * 2 - 1.0) * 4, (1.0 * 2 - 0.25) * 4])
    np.testing.assert_allclose(blob_to_image(blob, spec), image, atol=1e-7)  # float32 blob
    low, high = spec.blob_bounds()
    np.testing.assert_array_equal(low[:, 0, 0], [-2.0, -4.0, -1.0])
    np.testing.assert_array_equal(high[:, 0, 0], [6.0, 4.0, 7.0])


@pytest.mark.parametrize("raw_scale, input_scale, grey", [(255.0, 1.0, 1.0), (255.0, 1 / 256, 1 / 256),
                                                           (255.0, 0.017, 0.017), (1.0, 1.0, 1 / 255)])
def test_grey_level_in_blob_units(raw_scale, input_scale, grey):
    spec = InputSpec(size=(2, 2), mean=(0.0, 0.0, 0.0), resize=None, raw_scale=raw_scale, input_scale=input_scale)
    assert spec.grey_level == pytest.approx(grey, rel=1e-15)
    black, white = (np.zeros((2, 2, 3)), np.ones((2, 2, 3)))
    one_level = image_to_blob(np.full((2, 2, 3), 1 / 255), spec) - image_to_blob(black, spec)
    np.testing.assert_allclose(one_level, spec.grey_level, rtol=1e-6)  # float32 blob
    assert float((image_to_blob(white, spec) - image_to_blob(black, spec)).mean()) == pytest.approx(spec.pixel_unit, rel=1e-6)


@pytest.mark.parametrize("image", [[1, 2, 3], None, b"digit.png", 3.5])
def test_load_image_refuses_other_types(image):
    from caffe_relabel.errors import ArgumentError
    from caffe_relabel.images.preprocess import load_image

    with pytest.raises(ArgumentError, match="expected an image path or a numpy array"):
        load_image(image)


def test_load_image_bounds_arrays_without_copying_them():
    from caffe_relabel.errors import ImageFormatError
    from caffe_relabel.images.decode import MAX_IMAGE_PIXELS, MAX_WORKING_PIXELS
    from caffe_relabel.images.preprocess import load_image

    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    huge = np.broadcast_to(np.zeros(3, np.uint8), (side, side, 3))  # a view: no memory behind it
    with pytest.raises(ImageFormatError, match="more than the"):
        load_image(huge)
    big = np.broadcast_to(np.full(3, 255, np.uint8), (4 * 4096, 4096, 3))  # 4x the working size: box-reduced by 2
    out = load_image(big)
    assert out.shape == (8192, 2048, 3) and out.shape[0] * out.shape[1] <= MAX_WORKING_PIXELS
    assert np.all(out == 1.0)
