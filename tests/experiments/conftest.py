"""Shared settings: one small digits sweep that several tests compare against."""

from __future__ import annotations

import pytest

from caffe_relabel import RelabelSettings
from caffe_relabel.backends import pycaffe_available
from caffe_relabel.experiments.store import StoredResult
from tests.regression.test_regression import TOLERANCE

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


# A resumed, sharded or distributed sweep runs each pair beside other pairs than an
# uninterrupted one does, and BLAS rounds a row of a batch by its place in the batch
# on some CPUs (OpenBLAS's Zen kernel and MKL on an AMD EPYC: a digits forward moved
# by 4e-7 in probability). One such flip moved a pair's distortion by 3.9e-6 after a
# resume at row 6, with the same iterations and labels; the regression's cross-CPU
# tolerance for the digits net's free runs bounds both.
RESUMED_DISTORTION_TOL = TOLERANCE["digits_free"][0]


def assert_same_results(got: dict[tuple[str, int], StoredResult], want: dict[tuple[str, int], StoredResult]) -> None:
    """The same pairs, each with the same outcome and its distortion within rounding."""
    assert got.keys() == want.keys()
    for key, a in got.items():
        b = want[key]
        assert (a.iterations, a.success, a.stop, a.final_label) == (b.iterations, b.success, b.stop, b.final_label), key
        # Where rounding to 8 bits changed the label, the image sits on a tie (test_regression.py).
        assert a.uint8_label in {b.uint8_label, b.final_label}, key
        assert a.distortion == pytest.approx(b.distortion, abs=RESUMED_DISTORTION_TOL), key
