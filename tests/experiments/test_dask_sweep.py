"""Shards dispatched on a local two-process Dask cluster give the single-process result."""

from __future__ import annotations

import pytest

from caffe_relabel.experiments.store import SweepStore
from tests.experiments.conftest import SWEEP, assert_same_results

distributed = pytest.importorskip("distributed")


def test_two_workers_match_one_process(tmp_path, reference_sweep):
    from caffe_relabel.experiments.dask_sweep import run_sweep_dask

    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            result = run_sweep_dask(client, tmp_path, shards=4, **SWEEP)
    assert len(result.shards) == 4 and result.merged.total == len(reference_sweep)
    with SweepStore(result.merged.path) as db:
        got = {(r.source, r.target): r for r in db.results()}
    assert_same_results(got, reference_sweep)
