"""Fidelity and relabelling time of the Model Zoo architectures (prototxt/zoo), random weights.

    .venv/bin/python bench/zoo_architectures.py [--names resnet50 vgg16 ...] [--max-iter 200]

For each architecture (seeded random weights, caffe_relabel.testmodels):
- logits of the engine (faithful mode) against real pycaffe, max relative
  error; input-gradient signs (elements above 1e-6 of the largest of the
  float64 gradient): the lowest per-sample agreement of engine and Caffe,
  and the most elements either one flips against a float64 evaluation (the
  engine in double precision), which says whose float32 noise a
  disagreement is; on two uniform random inputs (the slow test's) and on
  four photographs (noisier: see tests/engine/test_zoo_fidelity.py);
- the Relabeller on the engine backend (CPU, batch 2): two photographs to
  two random classes, wall seconds per image, faithful and fast modes.
Writes bench/results/zoo_architectures.json. Needs pycaffe and torch.
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
from caffe_relabel import Relabeller, testmodels  # noqa: E402
from caffe_relabel.backends import load_classifier  # noqa: E402
from caffe_relabel.backends.engine import EngineClassifier  # noqa: E402
from caffe_relabel.model import Model  # noqa: E402
from caffe_relabel.proto.io import read_net  # noqa: E402
from tests.engine.test_zoo_fidelity import float64_gradient, photographs  # noqa: E402


def fidelity(engine: EngineClassifier, caffe, x: np.ndarray, targets: np.ndarray) -> dict:
    name = engine.net.logits_name
    want = caffe.blob(x, name)
    rel = float(np.abs(engine.blob(x, name) - want).max() / np.abs(want).max())
    agree, engine_off, caffe_off = [], [], []
    for i in range(len(x)):
        xi, ti = x[i:i + 1], targets[i:i + 1]
        exact = float64_gradient(engine, xi, ti)
        mask = np.abs(exact) > 1e-6 * np.abs(exact).max()
        a, b = engine.loss_and_gradient(xi, ti).grad[mask], caffe.loss_and_gradient(xi, ti).grad[mask]
        agree.append(float((np.sign(a) == np.sign(b)).mean()))
        engine_off.append(float((np.sign(a) != np.sign(exact[mask])).mean()))
        caffe_off.append(float((np.sign(b) != np.sign(exact[mask])).mean()))
    return {"logits_max_rel_error": rel, "sign_agreement_min": min(agree),
            "engine_off_float64_max": max(engine_off), "caffe_off_float64_max": max(caffe_off)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", nargs="+", default=list(testmodels.ZOO_ARCHITECTURES))
    ap.add_argument("--max-iter", type=int, default=200)
    args = ap.parse_args()
    out = {"machine": platform.processor() or platform.machine(), "note": "shared 2-core CPU, timings taken once",
           "architectures": {}}
    for name in args.names:
        proto, weights = testmodels.random_model(name)
        engine = EngineClassifier(proto, weights)
        caffe = load_classifier(proto, weights, backend="pycaffe")
        s = testmodels.ZOO_INPUT_SCALE.get(name, 1.0)
        size = engine.input_shape[1]
        rng = np.random.default_rng(0)
        uniform = (rng.uniform(-120, 120, size=(2,) + engine.input_shape) * s).astype(np.float32)
        targets = np.array([1, 500, 999, 281])
        row = {
            "layer_types": sorted({layer.type for layer in read_net(proto).layer} - {"Input"}),
            "random_input": fidelity(engine, caffe, uniform, targets[:2]),
            "photographs": fidelity(engine, caffe, (photographs(size) * s).astype(np.float32), targets),
        }
        spec = testmodels.zoo_input_spec(name, size)
        photos = [skimage.data.chelsea(), skimage.data.coffee()]
        goals = [int(t) for t in rng.choice(1000, size=2, replace=False)]
        for mode in ("faithful", "fast"):
            model = Model(EngineClassifier(proto, weights, mode=mode), spec, name)
            start = time.perf_counter()
            results = Relabeller(model, max_iter=args.max_iter, batch_size=2).run_batch(photos, goals)
            row[f"relabel_{mode}"] = {
                "batch_size": 2, "images": 2, "seconds_per_image": (time.perf_counter() - start) / 2,
                "max_iter": args.max_iter, "success": [r.success for r in results],
                "iterations": [r.iterations for r in results], "distortion": [r.distortion for r in results],
            }
        out["architectures"][name] = row
        print(name, json.dumps(row), flush=True)
    write_json(RESULTS / "zoo_architectures.json", out)


if __name__ == "__main__":
    main()
