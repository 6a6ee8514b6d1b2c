"""Shared settings: one small digits sweep that several tests compare against."""

from __future__ import annotations

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.backends import pycaffe_available

# 10 sources (one per digit) x 4 targets, less their own class: 36 pairs, a few seconds.
SWEEP = dict(model="digits", per_class=1, targets=[0, 3, 5, 8], settings=RelabelSettings(max_distortion=0.1, batch_size=16),
             seed=0)


@pytest.fixture(scope="session")
def digits_model():
    if not pycaffe_available():
        pytest.skip("pycaffe is not built (run `make setup`)")
    from caffe_relabel.experiments.common import open_model

    return open_model("digits")


@pytest.fixture(scope="session")
def reference_sweep(tmp_path_factory, digits_model):
    """An uninterrupted single-process run of SWEEP: {(source, target): StoredResult}."""
    from caffe_relabel.experiments.store import SweepStore
    from caffe_relabel.experiments.sweep import run_sweep

    path = tmp_path_factory.mktemp("reference") / "all.sqlite"
    run_sweep(path, **SWEEP)
    with SweepStore(path) as db:
        return {(r.source, r.target): r for r in db.results()}
