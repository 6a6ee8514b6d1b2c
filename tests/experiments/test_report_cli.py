"""The report and the `experiment`/`report` subcommands."""

from __future__ import annotations

import json
import re

import pytest

from caffe_relabel.experiments.__main__ import main
from caffe_relabel.experiments.report import SETTINGS, build_report

TINY = {
    "examples": dict(n=2), "sweep": dict(per_class=1, targets_per_source=1, caps=(0.2,)), "synthesis": dict(n_targets=2),
    "svm": dict(sets=2, n_train=4, n_test=6), "limitations": dict(n=3),
}


def test_the_report_references_existing_figures(tmp_path, monkeypatch, digits_model):
    monkeypatch.setitem(SETTINGS, ("digits", "quick"), TINY)
    r = build_report(tmp_path, digits_model.name, size="quick")
    assert not r.skipped
    md = r.markdown.read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(linked) >= 8 and all((tmp_path / name).is_file() for name in linked)
    page = r.html.read_text()
    # Self-contained: every figure embedded, none fetched from beside the page.
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(linked) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(name in page for name in linked)
    # Distinct captions and titles: each figure says which paper figure it is.
    captions = [f.caption for f in r.figures]
    assert len(set(captions)) == len(captions) and any(c.startswith("Reproduces Figure 2") for c in captions)
    assert "| claim | paper | ours | setting | model and data | command |" in md
    assert "98.7%" in md and "89.6%" in md and "0.00814" in md
    # Provenance and intervals: the header names what produced the numbers, each number has its interval.
    for key in ("commit", "backend", "device", "machine", "seed", "date", "command"):
        assert f"- {key}: " in md
    assert r.provenance.backend == digits_model.classifier.backend_name
    assert all(re.search(r"\[[-0-9.%]+, [-0-9.%]+\] \(n=\d+\)", c.ours) for c in r.claims if "one pair" not in c.claim)
    # TINY's cap 0.2 is not the paper's 0.01: that row says so.
    sweep_rows = [c for c in r.claims if c.claim.startswith("All-pairs")]
    assert sweep_rows and all(any("not the paper's setting" in d for d in c.deviations) for c in sweep_rows)


def test_experiment_sweep_summary_and_merge_commands(tmp_path, capsys, digits_model):
    args = ["--model", "digits", "--per-class", "1", "--targets", "0,1", "--max-distortion", "0.2", "-q"]
    assert main(["experiment", "sweep", *args, "--store", str(tmp_path / "a.sqlite"), "--shard", "0/2"]) == 0
    assert main(["experiment", "sweep", *args, "--store", str(tmp_path / "b.sqlite"), "--shard", "1/2"]) == 0
    capsys.readouterr()
    assert main(["experiment", "merge", str(tmp_path / "m.sqlite"), str(tmp_path / "a.sqlite"),
                 str(tmp_path / "b.sqlite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 18
    assert main(["experiment", "summary", str(tmp_path / "m.sqlite")]) == 0
    assert "pairs: 18" in capsys.readouterr().out


def test_errors_are_one_line_with_the_input_exit_code(tmp_path, capsys):
    assert main(["experiment", "summary", str(tmp_path / "none.sqlite")]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such sweep store" in err
    with pytest.raises(SystemExit) as e:  # a usage error, reported by argparse
        main(["experiment", "sweep", "--shard", "3/2", "-q"])
    assert e.value.code == 2 and "--shard: expected 0 <= i < n" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["experiment", "nonsense"])
    assert e.value.code == 2
