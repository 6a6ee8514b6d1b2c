"""An output folder's advisory lock: one run at a time, the others refused at once, released by a killed run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from caffe_relabel.errors import ArgumentError, OutputError
from caffe_relabel.files.folder_lock import LOCK_NAME, folder_lock

REPO = Path(__file__).resolve().parents[2]


def test_a_held_folder_is_refused_at_once_and_free_again_after(tmp_path):
    out = tmp_path / "R"
    with folder_lock(out, "report folder") as path:
        assert path == out / LOCK_NAME and path.exists()
        with pytest.raises(OutputError, match=rf"{out}: the report folder is in use by another run"):
            with folder_lock(out, "report folder"):
                pass
        assert path.exists()  # the refused run left the holder's lock alone
    assert not (out / LOCK_NAME).exists()
    with folder_lock(out):
        pass


def test_a_killed_holder_releases_the_folder(tmp_path):
    out = tmp_path / "R"
    code = ("import sys, time; from caffe_relabel.files.folder_lock import folder_lock\n"
            f"with folder_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "held\n"
        with pytest.raises(OutputError, match="in use"):
            with folder_lock(out):
                pass
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert (out / LOCK_NAME).exists()  # SIGKILL left the file, not the lock
    with folder_lock(out):
        pass


def test_a_report_into_a_folder_in_use_refuses_before_any_work(tmp_path, monkeypatch):
    from caffe_relabel.experiments import report

    monkeypatch.setattr(report, "open_model", lambda *a, **k: pytest.fail("a refused report opened a model"))
    with folder_lock(tmp_path, "report folder"):
        with pytest.raises(OutputError, match="report folder is in use"):
            report.build_report(tmp_path, "digits", size="quick")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_report_into_the_empty_path_is_refused(tmp_path, monkeypatch):
    from caffe_relabel.experiments import report

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError, match="expected an output folder for the report, got ''"):
        report.build_report("", "digits")
    assert list(tmp_path.iterdir()) == []
