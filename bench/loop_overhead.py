"""What the relabelling loop costs on top of the network: loop vs raw module, side by side.

    python bench/loop_overhead.py                 # EfficientNet-Lite0 and random GoogLeNet, batch 8
    python bench/loop_overhead.py --quick         # fewer steps, to try it out

The unit is the image-iteration (one forward plus the input gradient for one
image). "raw" is what a hand-written loop pays at the least: ``module(x)``
and ``torch.autograd.grad`` of the summed cross-entropy, at the same batch.
"loop" is ``Relabeller.relabel_batch`` on the engine (least-likely targets,
no cap, ``--steps`` steps, so the batch stays full), counting the samples each
step held, with everything it does: the sign step, clip, distortions, stop
decisions, slot refills, the final 8-bit check and records. The two alternate
round by round (``--rounds``), and the median round of each is reported with
the ratio loop / raw (goal: at least 0.9).

Writes bench/results/loop_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch

from common import RESULTS, sync  # noqa: E402  (puts the repository on sys.path)

from caffe_relabel import Relabeller, load_model  # noqa: E402

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier  # noqa: E402
from caffe_relabel.numerics import NUMERICS  # noqa: E402
from caffe_relabel.models.model import Model  # noqa: E402

MODELS = ("efficientnet_lite0", "bvlc_googlenet")


def load(name: str, device: str, mode: str) -> Model:
    if name == "efficientnet_lite0":  # converted weights, present offline
        return load_model(name, backend="engine", device=device, numerics=mode)
    prototxt, weights = testmodels.random_model(name)
    spec = zoo.get(name)
    return Model(load_classifier(prototxt, weights, backend="engine", device=device, numerics=mode), spec.input, name,
                 zoo.class_names(spec.classes), spec.classes)


def raw_round(model: Model, x: torch.Tensor, targets: torch.Tensor, steps: int, device: str) -> float:
    """Image-iterations/s of ``steps`` plain forward + input-gradient calls."""
    module = model.blob_module
    start = time.perf_counter()
    for _ in range(steps):
        xr = x.detach().requires_grad_(True)
        logits = module(xr).flatten(1)
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xr)
        x = x - 50 / 255 * grad.sign()
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - start)


def loop_round(relabeller: Relabeller, images: torch.Tensor) -> tuple[float, int]:
    """Image-iterations/s of one relabel_batch call, and how many it did."""
    done = [0]
    start = time.perf_counter()
    relabeller.relabel_batch(images, "least_likely", on_iteration=lambda n: done.__setitem__(0, done[0] + n))
    return done[0] / (time.perf_counter() - start), done[0]


def bench(name: str, batch: int, steps: int, rounds: int, device: str, mode: str) -> dict[str, Any]:
    model = load(name, device, mode)
    rng = np.random.default_rng(0)
    c, h, w = model.classifier.input_shape
    images = torch.from_numpy(rng.random((batch, c, h, w))).float().to(device)
    relabeller = Relabeller(model, max_distortion=None, max_iter=steps - 1, batch_size=batch)
    blobs = relabeller._arrays.to_blobs(images.permute(0, 2, 3, 1).double())
    targets = torch.as_tensor(rng.integers(0, model.classifier.num_classes, batch), device=device)
    raw_round(model, blobs, targets, 1, device)  # warm-up: allocator, first-call costs
    loop_round(relabeller, images)
    raws, loops = [], []
    for _ in range(rounds):
        raws.append(raw_round(model, blobs, targets, steps, device))
        rate, count = loop_round(relabeller, images)
        loops.append(rate)
    raw, loop = statistics.median(raws), statistics.median(loops)
    out = dict(model=name, batch=batch, steps=steps, rounds=rounds, loop_image_iterations=count,
               raw_per_s=raw, loop_per_s=loop, ratio=loop / raw, raw_rounds=raws, loop_rounds=loops)
    print(f"{name:20s} batch {batch}: raw {raw:7.2f} img-it/s  loop {loop:7.2f} img-it/s  loop/raw {loop / raw:.3f}",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20, help="steps per round (default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating raw/loop rounds (default 3)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="faithful", choices=NUMERICS, help="the engine's numeric mode (default faithful)")
    ap.add_argument("--quick", action="store_true", help="5 steps, 2 rounds")
    ap.add_argument("--note", default="", help="recorded with the results (e.g. 'machine shared')")
    args = ap.parse_args()
    steps, rounds = (5, 2) if args.quick else (args.steps, args.rounds)
    results = [bench(m, args.batch, steps, rounds, args.device, args.mode) for m in args.models]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "loop_overhead.json"
    path.write_text(json.dumps(dict(
        device=args.device, mode=args.mode, torch=torch.__version__, threads=torch.get_num_threads(), machine=platform.processor()
        or platform.machine(), note=args.note, results=results), indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
