"""Fidelity and relabelling time of the Model Zoo architectures (prototxt/zoo), random weights.

    .venv/bin/python bench/zoo_architectures.py [--names resnet50 vgg16 ...] [--max-iter 200]

For each architecture (seeded random weights, caffe_relabel.models.testmodels):
- logits of the engine (faithful mode) against real pycaffe, max relative
  error;
- input-gradient signs (elements above 1e-6 of the largest of a float64
  evaluation, the engine in double precision), for the engine's faithful and
  fast modes: the agreement with Caffe per input, and the share of elements
  each of engine and Caffe flips against float64 (which says whose float32
  noise a disagreement is); on the slow test's eight uniform random inputs
  and on four photographs (see tests/engine/test_zoo_fidelity.py);
- the Relabeller on the engine backend (CPU, batch 2): two photographs to
  two random classes, wall seconds per image, faithful and fast modes.
Writes bench/results/zoo_architectures.json and prints the README's table rows.
Needs pycaffe and torch.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import skimage.data

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, write_json  # noqa: E402
from caffe_relabel import Relabeller  # noqa: E402
from caffe_relabel.models import testmodels
from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier  # noqa: E402
from caffe_relabel.backends.engine import EngineClassifier  # noqa: E402
from caffe_relabel.models.model import Model  # noqa: E402
from caffe_relabel.netdef.proto.io import read_net  # noqa: E402
from tests.engine.test_zoo_architectures import TARGETS  # noqa: E402
from tests.engine.test_zoo_fidelity import float64_gradient, photographs  # noqa: E402


def fidelity(engines: dict[str, EngineClassifier], caffe, x: np.ndarray, targets: list[int]) -> dict:
    name = engines["faithful"].net.logits_name
    want = caffe.blob(x, name)
    out: dict = {"logits_max_rel_error": float(np.abs(engines["faithful"].blob(x, name) - want).max()
                                               / np.abs(want).max()),
                 "caffe_off_float64": []}
    out.update({mode: {"agreement": [], "off_float64": []} for mode in engines})
    for i, target in enumerate(targets):
        xi, ti = x[i:i + 1], np.array([target])
        exact = float64_gradient(engines["faithful"], xi, ti)
        mask = np.abs(exact) > 1e-6 * np.abs(exact).max()
        exact, theirs = np.sign(exact[mask]), np.sign(caffe.loss_and_gradient(xi, ti).grad[mask])
        out["caffe_off_float64"].append(float((theirs != exact).mean()))
        for mode, engine in engines.items():
            ours = np.sign(engine.loss_and_gradient(xi, ti).grad[mask])
            out[mode]["agreement"].append(float((ours == theirs).mean()))
            out[mode]["off_float64"].append(float((ours != exact).mean()))
    return out


def cells(f: dict, mode: str = "faithful") -> str:
    """logits error / median (lowest) agreement / mean flips against float64, engine and Caffe."""
    ours = f[mode]
    return (f"{f['logits_max_rel_error']:.1e} / {np.median(ours['agreement']):.2%} ({min(ours['agreement']):.2%}) / "
            f"{np.mean(ours['off_float64']):.3%}, {np.mean(f['caffe_off_float64']):.3%}")


def table_row(name: str, row: dict) -> str:
    """The README's row: fidelity cells, then seconds per image faithful / fast, and successes."""
    faithful, fast = row["relabel_faithful"], row["relabel_fast"]
    return (f"| {name} | {', '.join(row['layer_types'])} | {cells(row['random_input'])} | {cells(row['photographs'])} | "
            f"{faithful['seconds_per_image']:.1f} / {fast['seconds_per_image']:.1f} | "
            f"{sum(faithful['success'])}/{len(faithful['success'])} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", nargs="+", default=list(testmodels.ZOO_ARCHITECTURES), choices=testmodels.RANDOM_MODELS,
                    help="default: the zoo architectures; the BVLC nets (bvlc_googlenet, ...) run too")
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--out", type=Path, default=RESULTS / "zoo_architectures.json")
    args = ap.parse_args()
    out = {"machine": platform.processor() or platform.machine(), "note": "shared 2-core CPU, timings taken once",
           "architectures": {}}
    for name in args.names:
        proto, weights = testmodels.random_model(name)
        engines = {mode: EngineClassifier(proto, weights, numerics=mode) for mode in ("faithful", "fast")}
        caffe = load_classifier(proto, weights, backend="pycaffe")
        s = testmodels.ZOO_INPUT_SCALE.get(name, 1.0)
        shape = engines["faithful"].input_shape
        size = shape[1]
        rng = np.random.default_rng(0)
        uniform = (rng.uniform(-120, 120, size=(len(TARGETS),) + shape) * s).astype(np.float32)  # the slow test's
        row = {
            "layer_types": sorted({layer.type for layer in read_net(proto).layer} - {"Input"}),
            "random_input": fidelity(engines, caffe, uniform, list(TARGETS)),
            "photographs": fidelity(engines, caffe, (photographs(size) * s).astype(np.float32), [1, 500, 999, 281]),
        }
        spec = zoo.get(name).input if name in zoo.MODELS else testmodels.zoo_input_spec(name, size)
        photos = [skimage.data.chelsea(), skimage.data.coffee()]
        goals = [int(t) for t in rng.choice(1000, size=2, replace=False)]
        for mode in ("faithful", "fast"):
            model = Model(engines[mode], spec, name)
            start = time.perf_counter()
            results = Relabeller(model, max_iter=args.max_iter, batch_size=2).run_batch(photos, goals)
            row[f"relabel_{mode}"] = {
                "batch_size": 2, "images": 2, "seconds_per_image": (time.perf_counter() - start) / 2,
                "max_iter": args.max_iter, "success": [r.success for r in results],
                "iterations": [r.iterations for r in results], "distortion": [r.distortion for r in results],
            }
        out["architectures"][name] = row
        print(name, json.dumps(row), flush=True)
    write_json(args.out, out)
    for name, row in out["architectures"].items():
        print(table_row(name, row))
    print("fast mode (channels-last oneDNN):")
    for name, row in out["architectures"].items():
        print(f"| {name} | {cells(row['random_input'], 'fast')} | {cells(row['photographs'], 'fast')} |")


if __name__ == "__main__":
    main()
