"""Atomic writes: the destination is whole or untouched, failures are OutputError naming it."""

import errno
import os

import numpy as np
import pytest

from caffe_relabel.files import atomic_write
from caffe_relabel.errors import OutputError
from caffe_relabel.images.preprocess import save_image
from caffe_relabel.netdef.proto import NetParameter, write_weights


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    atomic_write.write_text(p, "new")
    assert p.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_full_disk_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    p = tmp_path / "out.txt"
    p.write_text("old")
    monkeypatch.setattr(atomic_write.os, "replace", _full_disk)
    with pytest.raises(OutputError, match=f"{p}: cannot write report: No space left"):
        atomic_write.write_text(p, "new", "report")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_parent_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"{blocker}"):
        atomic_write.write_bytes(blocker / "sub" / "out.bin", b"data")
    assert blocker.read_text() == "x"


def test_destination_is_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write.write_bytes(tmp_path / "d", b"data")
    assert os.listdir(tmp_path) == ["d"]


def test_concurrent_writers_use_distinct_temporaries(tmp_path):
    dest = tmp_path / "m.caffemodel"
    with atomic_write.atomic_path(dest) as a, atomic_write.atomic_path(dest) as b:
        assert a != b and a.parent == b.parent == tmp_path
        a.write_bytes(b"first")
        b.write_bytes(b"second")
    assert dest.read_bytes() == b"first"  # the outer context finished last
    assert os.listdir(tmp_path) == ["m.caffemodel"]


def test_mode_follows_umask_not_mkstemp(tmp_path):
    p = atomic_write.write_bytes(tmp_path / "f", b"x")
    assert p.stat().st_mode & 0o777 == 0o666 & ~atomic_write._UMASK


def test_write_weights_on_full_disk_leaves_nothing(tmp_path, monkeypatch):
    net = NetParameter(name="n")
    monkeypatch.setattr(atomic_write.os, "fsync", _full_disk)
    with pytest.raises(OutputError, match="m.caffemodel: cannot write caffemodel"):
        write_weights(net, tmp_path / "m.caffemodel")
    assert os.listdir(tmp_path) == []


def test_save_image_on_full_disk_leaves_no_partial_png(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_write.os, "replace", _full_disk)
    with pytest.raises(OutputError, match="x.png"):
        save_image(np.zeros((4, 4, 3)), tmp_path / "x.png")
    assert os.listdir(tmp_path) == []


def test_save_image_writes_the_format_of_its_name(tmp_path):
    save_image(np.ones((4, 4, 3)), tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
