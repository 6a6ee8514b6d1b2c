"""Model and image paths: regular files of bounded size, opened without blocking."""

import os

import pytest

from caffe_relabel.files import bounded_read
from caffe_relabel.files.bounded_read import read_bounded
from caffe_relabel.errors import ImageFormatError, ModelFormatError
from caffe_relabel.netdef.proto.io import read_mean, read_net, read_weights
from tests.limited import run_limited


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_fifo_paths_are_refused_without_blocking(fifo):
    # In a child with a timeout: a regression would block in open() forever.
    r = run_limited(f"""
        from caffe_relabel.errors import CaffeRelabelError
        from caffe_relabel.netdef.proto.io import read_net, read_weights, read_mean
        from caffe_relabel.images.preprocess import load_image
        for reader in (read_net, read_weights, read_mean, load_image):
            try:
                reader({str(fifo)!r})
            except CaffeRelabelError as e:
                print(e)
    """, memory_bytes=4 * 2**30, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and all(str(fifo) in line and "FIFO" in line for line in lines)


def test_dev_zero_symlink_is_refused_without_reading(tmp_path):
    link = tmp_path / "zero.caffemodel"
    link.symlink_to("/dev/zero")
    # 1 GiB of address space: reading /dev/zero into memory would fail here, not pass.
    r = run_limited(f"""
        from caffe_relabel.errors import ModelFormatError
        from caffe_relabel.netdef.proto.io import read_weights
        try:
            read_weights({str(link)!r})
        except ModelFormatError as e:
            print(e)
    """, memory_bytes=4 * 2**30, timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(link) in r.stdout and "character device" in r.stdout


@pytest.mark.parametrize("reader", [read_net, read_weights, read_mean])
def test_directory_is_refused(tmp_path, reader):
    with pytest.raises(ModelFormatError, match=f"{tmp_path}.*directory"):
        reader(tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelFormatError, match="nope.prototxt: prototxt not found"):
        read_net(tmp_path / "nope.prototxt")


def test_size_cap_per_kind(tmp_path, monkeypatch):
    p = tmp_path / "big.prototxt"
    p.write_text("name: 'x'\n" + "#" * 189 + "\n")  # 200 bytes
    monkeypatch.setitem(bounded_read.LIMITS, "prototxt", 100)
    with pytest.raises(ModelFormatError, match=r"big.prototxt: prototxt is 200 bytes, more than the 100"):
        read_net(p)
    monkeypatch.setitem(bounded_read.LIMITS, "prototxt", 200)
    assert read_net(p).name == "x"


def test_error_type_is_the_callers(fifo):
    with pytest.raises(ImageFormatError, match="FIFO"):
        read_bounded(fifo, "image", "image", ImageFormatError)


def test_a_small_file_is_read_without_a_buffer_the_size_of_the_cap(tmp_path):
    # read(n) allocates n bytes before reading: asking for the 2 GiB caffemodel cap would fail
    # under a 1 GiB address space (and made a long fuzz run crawl). The file's own size is enough.
    from tests.limited import run_limited

    small = tmp_path / "small.caffemodel"
    small.write_bytes(b"\x0a\x03net" * 10)
    done = run_limited(f"""
        from caffe_relabel.files.bounded_read import read_bounded
        print(len(read_bounded({str(small)!r}, "caffemodel", "caffemodel")))
    """, memory_bytes=2**30, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "50", done.stderr
