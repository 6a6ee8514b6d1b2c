"""What the experiments print with --json is strict JSON, and no interval is NaN where n >= 2."""

from __future__ import annotations

import math
import sqlite3

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.cli import main
from caffe_relabel.experiments.store import StoredResult, StoreIdentity, SweepStore
from caffe_relabel.experiments.sweep import summarize
from tests.files.test_strict_json import strict_loads

IDENTITY = StoreIdentity("digits", "engine", RelabelSettings(max_iter=100))


def _store(path, distortions: list[float], failures: int = 0):
    rows = [StoredResult(f"s{i}", 1, 3, True, "target", 5 + i, d, 3, 0.9, 1, 0.6, 0.6, [[1, 0.6]], 1, True, d,
                         "digits", "0.1.0") for i, d in enumerate(distortions)]
    rows += [StoredResult(f"f{i}", 1, 3, False, "max_iter", 100, 0.02, 3, 0.9, 3, 0.6, 0.1, [[3, 0.6]], 3, False, 0.02,
                          "digits", "0.1.0") for i in range(failures)]
    with SweepStore(path, IDENTITY) as db:
        db.add_many(rows)
    return path


@pytest.mark.parametrize("distortions, failures", [([], 0), ([], 3), ([0.004], 2), ([0.004, 0.006], 0),
                                                   ([0.003, 0.004, 0.009], 1)])
def test_summary_json_is_strict_with_n_beside_every_null(tmp_path, capsys, distortions, failures):
    store = _store(tmp_path / "s.sqlite", distortions, failures)
    assert main(["experiment", "summary", str(store), "--json"]) == 0
    data = strict_loads(capsys.readouterr().out)
    n = len(distortions)
    d = data["distortion"]
    assert d["n"] == n and data["pairs"] == n + failures
    assert (data["success_rate"] is None) == (n + failures == 0)
    if n == 0:
        assert d["mean"] is None and d["low"] is None and d["high"] is None
    elif n == 1:
        assert d["mean"] == pytest.approx(distortions[0]) and d["low"] is None and d["high"] is None
    else:  # the sweep summary's interval, once always NaN: bootstrapped from the stored values
        assert d["low"] <= d["mean"] <= d["high"] and min(distortions) <= d["low"] and d["high"] <= max(distortions)
        assert d["low"] < d["high"]


def test_a_summary_interval_is_the_bootstrap_of_its_values_in_a_stable_order(tmp_path):
    from caffe_relabel.experiments.intervals import mean

    values = [0.001 * (i % 7 + 1) for i in range(40)]
    s = summarize(_store(tmp_path / "s.sqlite", values))
    # Rows come back ordered by (source, target): s0, s1, s10, s11, ...
    ordered = [v for _, v in sorted((f"s{i}", v) for i, v in enumerate(values))]
    want = mean(ordered)
    assert (s.distortion.low, s.distortion.high) == (want.low, want.high) and math.isfinite(want.low)


def test_a_large_store_summary_uses_the_normal_interval_from_sql_moments(tmp_path, monkeypatch):
    from caffe_relabel.experiments import sweep

    values = [0.001 * (i % 5 + 1) for i in range(50)]
    monkeypatch.setattr(sweep, "BOOTSTRAP_MAX_N", 10)
    s = summarize(_store(tmp_path / "s.sqlite", values))
    import numpy as np

    half = 1.959964 * np.std(values, ddof=1) / math.sqrt(len(values))
    assert s.distortion.low == pytest.approx(np.mean(values) - half, rel=1e-6)
    assert s.distortion.high == pytest.approx(np.mean(values) + half, rel=1e-6)


def test_the_sweep_json_of_a_run_with_no_success_parses_strictly(tmp_path, capsys):
    args = ["experiment", "sweep", "-m", "digits", "--per-class", "1", "--targets", "0", "--max-iter", "1",
            "--store", str(tmp_path / "s.sqlite"), "--json", "-q"]
    assert main(args) == 0
    data = strict_loads(capsys.readouterr().out)
    assert data["summary"]["distortion"]["n"] == 0 and data["summary"]["distortion"]["mean"] is None
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == data["summary"]["pairs"] == 9


def test_the_report_says_why_the_svm_row_has_no_number_when_the_data_is_too_small(tmp_path, digits_model):
    from caffe_relabel.experiments import report, svm
    from caffe_relabel.experiments.common import UNCAPPED

    common = dict(sources=None, seed=0)
    relabel = UNCAPPED.replace(batch_size=16)
    claims, figures = report._svm(digits_model, tmp_path, dict(sets=2, n_train=2, n_test=3), common, relabel, "data")
    assert len(claims) == 1 and figures == [] and not list(tmp_path.iterdir())  # nothing was run
    row = claims[0].ours
    assert row.startswith("not measured: a set has only 5 true image(s)") and f"at least {svm.MIN_TRUE_IMAGES}" in row
    assert "the paper: 50" in row and "[" not in row
