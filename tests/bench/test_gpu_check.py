"""bench/gpu_check.py's CPU dry run writes every section, and its fidelity numbers hold."""

import json

import pytest

from caffe_relabel.models import zoo
from tests.conftest import requires_pycaffe


@requires_pycaffe
@pytest.mark.skipif(zoo.find_weights(zoo.get("efficientnet_lite0")) is None,
                    reason="efficientnet_lite0 is not converted (caffe-relabel models convert efficientnet_lite0)")
def test_cpu_dry_run_writes_every_section(bench_module, tmp_path):
    gpu_check = bench_module("gpu_check")
    ref = tmp_path / "ref.npz"
    gpu_check.make_references(ref, n=1)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--references", str(ref), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for name in gpu_check.SECTIONS:
        assert "error" not in result[name], result[name]
    fidelity = result["fidelity"]
    # Engine vs Caffe on CPU, both float32: only summation order differs, so logits agree
    # to ~1e-6 relative and only near-zero gradient elements can flip sign.
    assert fidelity["logits_relative_error"] < 1e-4
    assert fidelity["grad_sign_agreement"] > 0.99
    assert fidelity["regression_vs_pycaffe"]["cases"] >= 2
    assert fidelity["regression_vs_pycaffe"]["ending_differently"] == 0
    assert set(result["modes"]) - {"section_seconds"} == {"fast", "fast-bf16"}
    for mode in ("fast", "fast-bf16"):
        assert 0.0 <= result["modes"][mode]["grad_sign_agreement_vs_faithful"] <= 1.0
    runs = result["throughput"]["runs"]
    assert set(runs) == {"faithful", "fast", "fast-bf16"}
    assert all(row["1"]["images_per_s"] > 0 for row in runs.values())
    assert result["throughput"]["ceilings"]["float32"]["ceiling_images_per_s"] > 0
    assert result["sweep"]["done"] == result["sweep"]["planned"] == 1
