"""bench/sweep_scale.py at a small size: its stub relabels as designed and the figures are all there."""

import json

import numpy as np

from caffe_relabel.relabel.relabeller import Relabeller, StopReason


def test_the_stub_target_wins_after_target_mod_3_steps(bench_module):
    bench = bench_module("sweep_scale")
    model_settings = bench.PAPER_SETTINGS.replace(batch_size=4)
    relabeller = Relabeller(bench.Model(bench.InstantClassifier(model_settings.alpha), bench.SPEC, "stub"), model_settings)
    image = bench.synthetic_sources(1)[0].image
    results = relabeller.run_batch([image] * 4, [3, 4, 5, 7])
    assert [r.iterations for r in results] == [0, 1, 2, 1]
    assert all(r.success and r.stop == StopReason.TARGET for r in results)


def test_a_small_run_writes_every_figure(bench_module, tmp_path):
    bench = bench_module("sweep_scale")
    out = tmp_path / "scale.json"
    bench.main(["--sources", "20", "--prefix", "3000", "--commit-rows", "100", "--store-only-rows", "200",
                "--out", str(out)])
    got = json.loads(out.read_text())
    assert got["planned_pairs"] == 20 * 999 and got["streamed_results"] == 3000
    for key in ("plan_peak_rss_mb", "stream_peak_rss_mb", "results_per_s", "reopen_seconds", "final_peak_rss_mb"):
        assert np.isfinite(got[key]) and got[key] > 0, key
    assert set(got["store_only_rows_per_s"]) == {"1", "100"}
