"""The report header's provenance."""

from __future__ import annotations

import datetime

from caffe_relabel import __version__
from caffe_relabel.experiments.provenance import UNKNOWN, collect, git_commit


def test_provenance_names_version_commit_machine_and_date(tmp_path):
    p = collect("engine", "cpu", 7, "caffe-relabel report --quick")
    fields = dict(p.rows())
    assert fields["caffe-relabel"] == __version__ and fields["seed"] == "7" and fields["backend"] == "engine"
    assert fields["command"] == "caffe-relabel report --quick" and "cores" in fields["machine"]
    assert datetime.datetime.fromisoformat(fields["date"]).tzinfo is not None
    assert p.commit == UNKNOWN or len(p.commit.split("+")[0]) == 40


def test_outside_a_checkout_the_commit_is_unknown(tmp_path):
    assert git_commit(tmp_path) == UNKNOWN
