"""bench/sweep_throughput.py at a tiny size: the three rates, side by side, and the sweep's stages."""

import json
import types

import numpy as np
import pytest

from tests.bench.photos import efficientnet_ready, sample_folder  # noqa: F401  (a fixture)


def test_a_tiny_run_gives_the_three_rates_and_the_stages(bench_module, tmp_path, efficientnet_ready):  # noqa: F811
    bench = bench_module("sweep_throughput")
    out = tmp_path / "throughput.json"
    bench.main(["--sources", str(sample_folder(tmp_path / "photos")), "--photos", "2", "--batch", "2",
                "--rounds", "2", "--repeats", "1", "--max-iter", "2", "--out", str(out)])
    got = json.loads(out.read_text())
    assert len(got["rounds"]) == 2
    for row in got["rounds"]:
        sweep = row["sweep"]
        assert sweep["pairs"] == 2
        # Each pair runs one step more than its iterations (the last forward judges it), at most max_iter + 1.
        assert 2 <= sweep["image_iterations"] <= 2 * 3
        stages = sweep["stages_seconds"]
        assert set(stages) == {"decode_resize", "steps", "finish", "store", "other"}
        assert all(stages[k] > 0 for k in ("decode_resize", "steps", "finish", "store"))
        assert sum(stages.values()) == sweep["seconds"] or np.isclose(sum(stages.values()), sweep["seconds"])
        assert row["raw"] > 0 and row["native"] > 0
    rates = got["median_image_iterations_per_s"]
    assert np.isclose(got["ratios"]["sweep_over_raw"], rates["sweep"] / rates["raw"])
    assert np.isclose(got["ratios"]["raw_over_native"], rates["raw"] / rates["native"])


def test_photographs_are_labelled_by_their_wordnet_id(bench_module, tmp_path):
    bench = bench_module("sweep_throughput")
    from caffe_relabel.models import zoo

    folder = sample_folder(tmp_path / "photos")
    model = types.SimpleNamespace(resolve=lambda wnid: zoo.resolve_class(wnid, "imagenet"))  # all it asks a model
    assert [s.label for s in bench.photographs(folder, model, 2)] == [281, 967]  # by name: the cat's wnid first
    with pytest.raises(SystemExit, match="expected at least 3 photographs"):
        bench.photographs(folder, model, 3)
