"""bench/resize_effect.py measures both resamplers on the same photographs and pairs."""

import json

import pytest

from tests.bench.photos import efficientnet_ready, sample_folder  # noqa: F401  (a fixture)


def test_a_tiny_run_compares_the_two_resamplers(bench_module, tmp_path, efficientnet_ready):  # noqa: F811
    folder = sample_folder(tmp_path / "photos")
    out = tmp_path / "resize_effect.json"
    bench_module("resize_effect").main(["--folder", str(folder), "--count", "2", "--pairs", "2", "--out", str(out)])
    got = json.loads(out.read_text())
    assert got["photographs"] == 2 and got["pairs"] == 2 and len(got["targets"]) == 2
    assert got["targets"][0] != 281 and got["targets"][1] != 967  # never the true class
    for r in ("skimage", "pillow"):
        assert got["fit_seconds_median"][r] > 0 and got["top1_accuracy"][r] in (0.0, 0.5, 1.0)
        assert len(got["relabel"][r]["success"]) == 2 and got["relabel"][r]["iterations_mean"] > 0
    # The photographs were resized differently, but not beyond a few grey levels on average.
    assert 0 < got["pixel_difference_mean"] < 10 and got["pixel_difference_max"] <= 255
