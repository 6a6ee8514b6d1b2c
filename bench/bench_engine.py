"""Engine vs pycaffe, side by side in one run: image-iterations per second.

One image-iteration = one forward pass plus the input gradient for one image
(what one step of the relabelling loop costs). Both backends run the same
random-weight zoo net (caffe_relabel.models.testmodels) on the same inputs, one
backend after the other per batch size, after a warm-up call; the median of
the repeats is reported. A large float32 matrix multiply on the same device
gives the practical throughput limit, and the net's multiply-add count turns
it into a ceiling in images per second.

    python bench/bench_engine.py                       # CPU, GoogLeNet, batches 1 8 32
    python bench/bench_engine.py --device cuda --mode fast --name h100-fast

Writes bench/results/<name>.json and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, flops_per_image, matmul_gflops, time_call  # noqa: E402

from caffe_relabel.models import testmodels
from caffe_relabel.backends import load_classifier  # noqa: E402
from caffe_relabel.backends.base import Classifier  # noqa: E402
from caffe_relabel.backends.engine import EngineClassifier  # noqa: E402
from caffe_relabel.numerics import NUMERICS  # noqa: E402


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="bvlc_googlenet", choices=testmodels.RANDOM_MODELS)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--mode", default="faithful", choices=NUMERICS)
    parser.add_argument("--compile", action="store_true", help="run the engine through torch.compile")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all cores)")
    parser.add_argument("--no-pycaffe", action="store_true", help="time the engine alone")
    parser.add_argument("--name", default=None, help="results file name (default: <model>-<device>-<mode>)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    proto, weights = testmodels.random_model(args.model)
    engine = EngineClassifier(proto, weights, device=args.device, numerics=args.mode, compile=args.compile)
    backends: dict[str, Classifier] = {"engine": engine}
    if not args.no_pycaffe:
        backends["pycaffe"] = load_classifier(proto, weights, backend="pycaffe",
                                              device="gpu:0" if args.device.startswith("cuda") else "cpu")
    gflops = matmul_gflops(args.device)
    flops = flops_per_image(engine.net)
    rng = np.random.default_rng(0)
    rows = {}
    for batch in args.batches:
        x = rng.uniform(-120, 120, size=(batch,) + engine.input_shape).astype(np.float32)
        t = rng.integers(0, engine.num_classes, batch)
        times: dict[str, list[float]] = {}
        for name, clf in backends.items():
            # One backend at a time: interleaving single calls makes each pay for the
            # other's thread pool (OpenBLAS and OpenMP workers spin after a call).
            time.sleep(1.0)
            clf.loss_and_gradient(x, t)  # warm-up: allocation, oneDNN/cuDNN primitive creation
            times[name] = [time_call(lambda: clf.loss_and_gradient(x, t), args.device) for _ in range(args.repeats)]
        row = {f"{name}_images_per_s": batch / statistics.median(ts) for name, ts in times.items()}
        row.update({f"{name}_seconds": ts for name, ts in times.items()})
        if "pycaffe" in backends:
            row["ratio_engine_over_pycaffe"] = row["engine_images_per_s"] / row["pycaffe_images_per_s"]
        rows[str(batch)] = row
        ratio = f"  ratio {row['ratio_engine_over_pycaffe']:.2f}x" if "pycaffe" in backends else ""
        print(f"batch {batch:3d}: engine {row['engine_images_per_s']:8.2f} img-it/s"
              + (f"  pycaffe {row['pycaffe_images_per_s']:8.2f} img-it/s" if "pycaffe" in backends else "") + ratio)
    ceiling = gflops * 1e9 / flops
    print(f"matmul {gflops:.1f} GFLOP/s; {flops / 1e9:.2f} GFLOP per image-iteration -> ceiling {ceiling:.2f} img-it/s")
    result = {
        "model": args.model, "device": args.device, "mode": args.mode, "compile": args.compile,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "matmul_gflops": gflops, "gflop_per_image_iteration": flops / 1e9, "ceiling_images_per_s": ceiling,
        "repeats": args.repeats, "batches": rows, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name or f'{args.model}-{args.device}-{args.mode}'}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
