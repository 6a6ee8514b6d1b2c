"""Downloads against a local server: resume, verification, concurrency, offline."""

import hashlib
import threading

import pytest

from caffe_relabel.files.download import download
from caffe_relabel.errors import DownloadError

BODY = bytes(range(256)) * 4000  # ~1 MB
SHA1 = hashlib.sha1(BODY).hexdigest()


def test_plain_download_verifies_and_reports_progress(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    seen = []
    path = download(f"{http_server.url}/m.caffemodel", tmp_path / "m.caffemodel", sha1=SHA1,
                    progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY))
    assert not (tmp_path / "m.caffemodel.part").exists()


def test_interrupted_download_resumes_with_range(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    http_server.state.cut_after.append(300_000)
    dest = tmp_path / "m.caffemodel"
    with pytest.raises(DownloadError, match="interrupted"):
        download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert not dest.exists()  # never a partial file under the real name
    assert (tmp_path / "m.caffemodel.part").stat().st_size == 300_000
    download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert dest.read_bytes() == BODY
    assert http_server.state.requests[-1][1] == "bytes=300000-"


def test_wrong_sha1_is_deleted_and_reported(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    with pytest.raises(DownloadError, match="expected 0000"):
        download(f"{http_server.url}/m.caffemodel", dest, sha1="0" * 40)
    assert not dest.exists() and not (tmp_path / "m.caffemodel.part").exists()


def test_corrupt_partial_file_is_redone_from_zero(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    (tmp_path / "m.caffemodel.part").write_bytes(b"\xff" * 1000)  # junk from an older file
    download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert dest.read_bytes() == BODY
    assert [r for _, r in http_server.state.requests] == ["bytes=1000-", ""]


def test_bad_file_at_destination_is_replaced(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    dest.write_bytes(b"tampered")
    download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert dest.read_bytes() == BODY


def test_concurrent_downloads_of_one_file(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    results, errors = [], []

    def worker():
        try:
            results.append(download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert dest.read_bytes() == BODY
    assert len(http_server.state.requests) == 1  # the others found the finished file


def test_offline_error_says_where_to_put_the_file(tmp_path):
    dest = tmp_path / "m.caffemodel"
    with pytest.raises(DownloadError, match=f"put it at {dest}"):
        download("http://127.0.0.1:9/m.caffemodel", dest, sha1=SHA1, timeout=5)


def test_http_error(http_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{http_server.url}/missing", tmp_path / "x", sha1=SHA1)


def test_concurrent_downloads_from_two_processes(http_server, tmp_path):
    import subprocess
    import sys

    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    code = ("import sys; from caffe_relabel.files.download import download; "
            f"print(download({http_server.url + '/m.caffemodel'!r}, sys.argv[1], sha1={SHA1!r}))")
    children = [subprocess.Popen([sys.executable, "-c", code, str(dest)], stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    outs = [c.communicate(timeout=60)[0].strip() for c in children]
    assert [c.returncode for c in children] == [0, 0] and outs == [str(dest)] * 2
    assert dest.read_bytes() == BODY
    assert len(http_server.state.requests) == 1  # the lock: the second process found the finished file


def test_bytes_beyond_content_length_are_ignored(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    http_server.state.extra = b"trailing junk"
    dest = download(f"{http_server.url}/m.caffemodel", tmp_path / "m.caffemodel", sha1=SHA1)
    assert dest.read_bytes() == BODY


def test_redirect_is_followed(http_server, tmp_path):
    http_server.state.files["/real/m.caffemodel"] = BODY
    http_server.state.redirects["/m.caffemodel"] = f"{http_server.url}/real/m.caffemodel"
    dest = download(f"{http_server.url}/m.caffemodel", tmp_path / "m.caffemodel", sha1=SHA1)
    assert dest.read_bytes() == BODY


def test_redirect_loop_is_a_download_error(http_server, tmp_path):
    http_server.state.redirects["/a"] = f"{http_server.url}/b"
    http_server.state.redirects["/b"] = f"{http_server.url}/a"
    with pytest.raises(DownloadError, match="HTTP 30"):
        download(f"{http_server.url}/a", tmp_path / "m.caffemodel", sha1=SHA1)


def test_stalled_server_times_out_and_resumes(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    http_server.state.stall_after.append(200_000)
    dest = tmp_path / "m.caffemodel"
    with pytest.raises(DownloadError, match="interrupted after .* bytes .*timed out"):
        download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1, timeout=0.5)
    kept = (tmp_path / "m.caffemodel.part").stat().st_size  # whole chunks only
    assert 0 < kept <= 200_000
    download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert dest.read_bytes() == BODY and http_server.state.requests[-1][1] == f"bytes={kept}-"


def test_part_file_of_a_crashed_process_with_a_bad_prefix(http_server, tmp_path):
    # A crashed run left a .part whose first bytes are wrong (another file's start): the
    # resumed file fails its sha1, is deleted, and the download is redone from zero.
    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    (tmp_path / "m.caffemodel.part").write_bytes(b"\x00" * 10 + BODY[10:500_000])
    download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert dest.read_bytes() == BODY
    assert [r for _, r in http_server.state.requests] == ["bytes=500000-", ""]
    assert not (tmp_path / "m.caffemodel.part").exists()


def test_server_ignoring_range_restarts_the_file(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    http_server.state.honour_range = False
    (tmp_path / "m.caffemodel.part").write_bytes(BODY[:1000])
    dest = download(f"{http_server.url}/m.caffemodel", tmp_path / "m.caffemodel", sha1=SHA1)
    assert dest.read_bytes() == BODY


def test_file_urls_are_refused_unless_asked_for(tmp_path):
    src = tmp_path / "mine.caffemodel"
    src.write_bytes(BODY)
    with pytest.raises(DownloadError, match="file:// addresses are refused"):
        download(src.as_uri(), tmp_path / "out" / "m.caffemodel", sha1=SHA1)
    assert download(src.as_uri(), tmp_path / "out" / "m.caffemodel", sha1=SHA1, allow_file_urls=True).read_bytes() == BODY
    with pytest.raises(DownloadError, match="expected an http"):
        download("ftp://example.org/m.caffemodel", tmp_path / "m.caffemodel")


def test_checksum_mismatch_never_deletes_the_users_file(tmp_path):
    src = tmp_path / "mine.caffemodel"
    src.write_bytes(BODY)
    with pytest.raises(DownloadError, match="expected 0000"):
        download(src.as_uri(), tmp_path / "out" / "m.caffemodel", sha1="0" * 40, allow_file_urls=True)
    assert src.read_bytes() == BODY


def test_a_bad_file_at_the_destination_is_moved_aside_not_deleted(http_server, tmp_path):
    http_server.state.files["/m.caffemodel"] = BODY
    dest = tmp_path / "m.caffemodel"
    dest.write_bytes(b"put here by hand")
    download(f"{http_server.url}/m.caffemodel", dest, sha1=SHA1)
    assert dest.read_bytes() == BODY
    aside = tmp_path / f"m.caffemodel.sha1-{hashlib.sha1(b'put here by hand').hexdigest()}"
    assert aside.read_bytes() == b"put here by hand"
