"""The reliability suite (tests.fuzz.test_reliability) on the experiments' data: source lists, stores, report folders.

Issue 24's cases: a NUL byte in a --sources list, a million-line list with a
bad last line or with every file missing, a store whose `stop` holds a BLOB or
whose `top5` is not JSON, `report --out ''`, and three reports at once into
one folder. Each case runs in the suite's memory-limited children and is
classified the suite's way; only success and a documented exit code pass.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.conftest import COUNTS
from tests.fuzz.reliability_child import classify
from tests.fuzz.test_reliability import ALLOWED, FAST, ROOT, _cases, check, files, run_cases  # noqa: F401 (a fixture)

LINES = 1_000_000


@pytest.fixture(scope="module")
def data(tmp_path_factory, files):  # noqa: F811 (the suite's fixture)
    d = tmp_path_factory.mktemp("experiment-data")
    shutil.copy(files / "digit.png", d / "a.png")
    (d / "nul.txt").write_bytes(b"a.png 3\na\x00.png 3\n")
    (d / "nul-label.txt").write_bytes(b"a.png 3\na.png \x003\n")
    with open(d / "long-bad-end.txt", "w") as f:  # every line good but the last: read whole, quickly
        f.writelines("a.png 3\n" for _ in range(LINES - 1))
        f.write("a.png 10\n")
    with open(d / "long-missing.txt", "w") as f:
        f.writelines(f"gone/{i}.png 3\n" for i in range(LINES))
    from caffe_relabel.cli import main

    good = d / "good.sqlite"
    assert main(["experiment", "sweep", "--per-class", "1", "--targets", "0,1", "--store", str(good), *FAST]) == 0
    for name, column, value in [("blob-stop", "stop", b"target"), ("text-top5", "top5", "[[1, 0.5"),
                                ("object-top5", "top5", '{"a": 1}'), ("text-iterations", "iterations", "many")]:
        shutil.copy(good, d / f"{name}.sqlite")
        with sqlite3.connect(d / f"{name}.sqlite") as db:
            db.execute(f"UPDATE results SET {column} = ? WHERE rowid = (SELECT MIN(rowid) FROM results)", (value,))
    return d


def test_hostile_source_lists_and_stores(data, tmp_path):
    out = str(tmp_path / "out")
    sweep = ["experiment", "sweep", "--targets", "0,1", "--out", out, *FAST, "--sources"]
    argvs = [sweep + [str(data / n)] for n in ("nul.txt", "nul-label.txt", "long-bad-end.txt", "long-missing.txt")]
    argvs += [[*command, str(data / f"{n}.sqlite")] for n in ("blob-stop", "text-top5", "object-top5", "text-iterations")
              for command in (["experiment", "summary"], ["experiment", "merge", str(tmp_path / f"m-{n}.sqlite")])]
    argvs += [["report", "--quick", "-m", "digits", "--out", "", "-q"]]
    cases = _cases("experiment data", argvs)
    check("experiment data", cases, tmp_path)
    # Clean is not enough here: each must be refused (none is a valid input), with the file and what is wrong.
    outcomes = run_cases.outcomes
    codes = [outcomes[c["id"]]["rc"] for c in cases]
    assert codes == [3] * 4 + [3] * 8 + [2], codes
    details = [outcomes[c["id"]]["detail"] for c in cases]
    assert "nul.txt:2: the line holds a NUL byte" in details[0] and "nul-label.txt:2:" in details[1]
    assert f"long-bad-end.txt:{LINES}: label: class index 10 is out of range" in details[2]
    assert "long-missing.txt:1: " in details[3] and "gone/0.png" in details[3]
    assert "column stop holds b'target'" in details[4] and "column top5 holds '[[1, 0.5'" in details[6]
    assert all(str(data) in d and "unreadable result" in d for d in details[4:12])
    assert "expected an output folder for the report, got ''" in details[12]
    assert not list(Path(ROOT).glob("report.md"))  # nothing written into the current folder


def _report(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; from caffe_relabel.cli.main import main; "
                             "sys.exit(main(sys.argv[1:]))", "report", "--quick", "-m", "digits", "--out", str(out),
                             "-q"], cwd=ROOT, env=dict(os.environ, GLOG_minloglevel="2"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_three_reports_into_one_folder_all_succeed_or_all_but_one_refuse(tmp_path):
    out = tmp_path / "R"
    children = [_report(out) for _ in range(3)]
    ended = [(child.wait(timeout=900), child.stderr.read()) for child in children]
    for child in children:
        child.stderr.close()
    kinds = [classify(rc, err) for rc, err in ended]
    COUNTS["reliability concurrent reports: inputs"] += len(kinds)
    for kind in kinds:
        COUNTS[f"reliability concurrent reports: {kind}"] += 1
    assert all(k in ALLOWED for k in kinds), ended
    refused = [err for rc, err in ended if rc != 0]
    assert len(refused) in (0, 2), ended
    for err in refused:  # refused at once: before any model was opened, in one line
        assert err.strip().count("\n") == 0 and "report folder is in use by another run" in err, err
    from caffe_relabel.files.folder_lock import LOCK_NAME

    assert (out / "report.md").is_file() and not (out / LOCK_NAME).exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(("-wal", "-shm")) or ".part" in p.name]
