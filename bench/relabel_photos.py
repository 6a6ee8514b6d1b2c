"""Relabel scikit-image photos to random ImageNet classes on EfficientNet-Lite0.

    .venv/bin/python bench/relabel_photos.py [--targets 20] [--backend auto] [--batch 8]

The offline stand-in for the paper's ImageNet experiment: each photo to
``--targets`` random classes under the paper's 0.01 cap. Writes
relabel_photos_<backend>.json into $BENCH_RESULTS (default bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import skimage.data

from caffe_relabel import Relabeller, load_model

PHOTOS = {
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "astronaut": skimage.data.astronaut,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    model = load_model("efficientnet_lite0", backend=args.backend, device=args.device)
    rng = np.random.default_rng(args.seed)
    images, targets, names = [], [], []
    for name, load in PHOTOS.items():
        for t in rng.choice(1000, size=args.targets, replace=False):
            images.append(load())
            targets.append(int(t))
            names.append(name)
    start = time.perf_counter()
    results = Relabeller(model, batch_size=args.batch).run_batch(images, targets)
    seconds = time.perf_counter() - start
    dist = np.array([r.distortion for r in results])
    ok = np.array([r.success for r in results])
    its = np.array([r.iterations for r in results])
    out = {
        "model": "efficientnet_lite0",
        "backend": model.classifier.backend_name,
        "relabellings": len(results),
        "success_rate": float(ok.mean()),
        "uint8_success_rate": float(np.mean([r.uint8_success for r in results])),
        "distortion_mean_success": float(dist[ok].mean()) if ok.any() else None,
        "distortion_mean_all": float(dist.mean()),
        "iterations_mean": float(its.mean()),
        "image_iterations_per_second": float((its + 1).sum() / seconds),
        "seconds": seconds,
        "cases": [dict(photo=n, **{k: v for k, v in r.summary().items() if k != "source"}) for n, r in zip(names, results)],
    }
    path = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).with_name("results")) / f"relabel_photos_{out['backend']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "cases"}, indent=1))


if __name__ == "__main__":
    main()
