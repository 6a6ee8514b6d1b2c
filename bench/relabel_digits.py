"""Relabelling statistics on the digits model: 100 random (image, target) pairs.

    .venv/bin/python bench/relabel_digits.py [--n 100] [--backend auto]

Under the paper's 0.01 cap and without a cap; writes relabel_digits.json into $BENCH_RESULTS (default bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from caffe_relabel import Relabeller, load_model

from caffe_relabel.models import testmodels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    data = np.load(testmodels.DIGITS_TEST)
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(data["images"]), args.n, replace=False)
    images = [data["images"][i][:, :, None] / 255.0 for i in idx]
    targets = [int((data["labels"][i] + rng.integers(1, 10)) % 10) for i in idx]
    model = load_model("digits", backend=args.backend)
    out: dict = {"model": "digits", "backend": model.classifier.backend_name, "n": args.n, "seed": args.seed, "runs": {}}
    for cap in (0.01, None):
        start = time.perf_counter()
        results = Relabeller(model, max_distortion=cap, max_iter=1000, batch_size=16).run_batch(images, targets)
        seconds = time.perf_counter() - start
        its = np.array([r.iterations for r in results])
        dist = np.array([r.distortion for r in results])
        out["runs"]["none" if cap is None else str(cap)] = {
            "max_distortion": cap,
            "success_rate": float(np.mean([r.success for r in results])),
            "uint8_success_rate": float(np.mean([r.uint8_success for r in results])),
            "distortion_mean": float(dist.mean()),
            "distortion_std": float(dist.std()),
            "iterations_mean": float(its.mean()),
            "iterations_median": float(np.median(its)),
            "image_iterations_per_second": float((its + 1).sum() / seconds),
            "seconds": seconds,
        }
    path = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).with_name("results")) / "relabel_digits.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
