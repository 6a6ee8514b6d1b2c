"""The sweep's throughput next to the bare gradient and native PyTorch, in one run.

    python bench/sweep_throughput.py [--sources ../shared/imagenet-sample] [--photos 30] [--rounds 3]

Same model (EfficientNet-Lite0 converted to Caffe, engine backend, faithful
mode unless --mode), same batch (8), three rates in image-iterations per
second (one forward plus input gradient per image), measured in interleaved
rounds so a noisy neighbour slows all three alike:

- ``sweep``: :func:`caffe_relabel.experiments.sweep.run_sweep` over the
  photographs x ``--targets`` random targets each, the paper's settings,
  into a fresh store each round; its stages timed apart: decode and resize
  (``Relabeller._fitted``), steps (``Loop._iterate``), finish (``Loop._finish``
  and the result records), store (the store's rows and writes), and the rest;
- ``raw``: the same classifier's bare ``loss_and_gradient`` on a batch of the
  fitted photographs;
- ``native``: the PyTorch EfficientNetLite of the same weights
  (caffe_relabel/models/convert/efficientnet_lite_torch.py), forward and input
  gradient (EfficientNet-Lite models only).

Prints the medians and the ratios sweep/raw (goal >= 0.85) and raw/native
(goal >= 1); writes bench/results/sweep_throughput.json ($BENCH_RESULTS).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, sync, write_json  # noqa: E402
from imagenet_sample import DEFAULT_FOLDER, photographs  # noqa: E402

from caffe_relabel import load_model  # noqa: E402
from caffe_relabel.experiments import store as store_module  # noqa: E402
from caffe_relabel.experiments.sweep import PAPER_SETTINGS, run_sweep  # noqa: E402
from caffe_relabel.images.preprocess import fit, image_to_blob, load_image  # noqa: E402
from caffe_relabel.models.model import Model  # noqa: E402
from caffe_relabel.numerics import NUMERICS  # noqa: E402
from caffe_relabel.relabel.loop import Loop  # noqa: E402
from caffe_relabel.relabel.relabeller import Relabeller  # noqa: E402

STAGES = ("decode_resize", "steps", "finish", "store")


class Stages:
    """Seconds spent in each stage of a sweep, and the image-iterations its steps made."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.image_iterations = 0

    def timed(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
        return wrapper

    def timed_generator(self, stage: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        # A generator does its work as it is consumed: run it out inside the timer.
        def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            start = time.perf_counter()
            items = list(fn(*args, **kwargs))
            self.seconds[stage] += time.perf_counter() - start
            yield from items
        return wrapper

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        """The stage functions wrapped in timers for the duration, then restored."""
        iterate = Loop._iterate

        def counted(loop: Loop, active: list, *args: Any) -> Any:
            self.image_iterations += len(active)
            return iterate(loop, active, *args)

        wraps = [(Relabeller, "_fitted", self.timed("decode_resize", Relabeller._fitted)),
                 (Loop, "_iterate", self.timed("steps", counted)),
                 (Loop, "_finish", self.timed_generator("finish", Loop._finish)),
                 (Relabeller, "_record", self.timed("finish", Relabeller._record)),
                 (store_module.StoredResult, "from_result",
                  staticmethod(self.timed("store", store_module.StoredResult.from_result))),
                 (store_module.SweepStore, "add_many", self.timed("store", store_module.SweepStore.add_many))]
        saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in wraps]
        try:
            for owner, name, fn in wraps:
                setattr(owner, name, fn)
            yield
        finally:
            for owner, name, fn in saved:
                setattr(owner, name, fn)


def sweep_round(model: Model, sources: list, targets: int, max_iter: int, batch: int, device: str) -> dict:
    settings = PAPER_SETTINGS.replace(batch_size=batch, max_iter=max_iter)
    stages = Stages()
    with tempfile.TemporaryDirectory() as tmp, stages.patched():
        start = time.perf_counter()
        result = run_sweep(Path(tmp) / "sweep.sqlite", model, sources, targets_per_source=targets,
                           settings=settings, commit_seconds=1e9)
        sync(device)
        seconds = time.perf_counter() - start
    rest = seconds - sum(stages.seconds.values())
    return {"seconds": seconds, "pairs": result.ran, "successes": result.summary.successes,
            "image_iterations": stages.image_iterations, "image_iterations_per_s": stages.image_iterations / seconds,
            "stages_seconds": {**stages.seconds, "other": rest}}


def rate(fn: Callable[[], object], images: int, repeats: int, device: str) -> float:
    """Image-iterations per second of ``repeats`` calls of ``fn`` (each ``images`` images)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return images * repeats / (time.perf_counter() - start)


def native_step(model: Model, images: list[np.ndarray], targets: np.ndarray, device: str
                ) -> Optional[Callable[[], object]]:
    """Forward and input gradient of the native PyTorch EfficientNet-Lite on RGB 0..255, or None."""
    if not model.name.startswith("efficientnet_lite"):
        return None
    from caffe_relabel.models.convert.efficientnet_lite import reference_model
    from caffe_relabel.models.convert.efficientnet_lite_arch import VARIANTS

    net = reference_model(variant=VARIANTS[model.name]).to(device)
    rgb = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2) * 255.0).float().to(device)
    t = torch.from_numpy(targets).to(device)

    def step() -> torch.Tensor:
        x = rgb.detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(net(x), t, reduction="sum")
        return torch.autograd.grad(loss, x)[0]

    return step


def summary(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=Path, default=DEFAULT_FOLDER,
                    help="folder of <wnid>_<name>.JPEG photographs (default ../shared/imagenet-sample)")
    ap.add_argument("--photos", type=int, default=30)
    ap.add_argument("--targets", type=int, default=1, help="random targets per photograph")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--mode", default="faithful", choices=NUMERICS, help="the engine's numeric mode (default faithful)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10, help="calls per round of the raw and native rates")
    ap.add_argument("--max-iter", type=int, default=PAPER_SETTINGS.max_iter)
    ap.add_argument("--out", type=Path, default=RESULTS / "sweep_throughput.json")
    args = ap.parse_args(argv)

    model = load_model(args.model, backend="engine", device=args.device, numerics=args.mode)
    sources = photographs(args.sources, model, args.photos)
    fitted = [fit(load_image(s.image), model.input) for s in sources[:args.batch]]
    fitted = (fitted * args.batch)[:args.batch]  # a full batch even from fewer photographs
    blobs = np.stack([image_to_blob(im, model.input) for im in fitted])
    targets = np.random.default_rng(0).integers(0, model.classifier.num_classes, args.batch)
    raw_step = lambda: model.classifier.loss_and_gradient(blobs, targets)  # noqa: E731
    native = native_step(model, fitted, targets, args.device)
    raw_step()  # warm-up: allocation, oneDNN primitives
    if native is not None:
        native()

    rounds: list[dict] = []
    for i in range(args.rounds):
        row = {"sweep": sweep_round(model, sources, args.targets, args.max_iter, args.batch, args.device),
               "raw": rate(raw_step, args.batch, args.repeats, args.device),
               "native": None if native is None else rate(native, args.batch, args.repeats, args.device)}
        rounds.append(row)
        sweep = row["sweep"]
        print(f"round {i + 1}: sweep {sweep['image_iterations_per_s']:.2f}, raw {row['raw']:.2f}"
              + ("" if native is None else f", native {row['native']:.2f}") + " img-it/s; stages "
              + ", ".join(f"{k} {v:.2f} s" for k, v in sweep["stages_seconds"].items()), flush=True)

    sweep_rate = statistics.median(r["sweep"]["image_iterations_per_s"] for r in rounds)
    raw_rate = summary(rounds, "raw")
    native_rate = None if native is None else summary(rounds, "native")
    ratios = {"sweep_over_raw": sweep_rate / raw_rate,
              "raw_over_native": None if native_rate is None else raw_rate / native_rate,
              "sweep_over_native": None if native_rate is None else sweep_rate / native_rate}
    print(f"\nmedian img-it/s: sweep {sweep_rate:.2f}, raw loss_and_gradient {raw_rate:.2f}"
          + ("" if native_rate is None else f", native PyTorch {native_rate:.2f}"))
    print(f"sweep/raw = {ratios['sweep_over_raw']:.2f} (goal >= 0.85)"
          + ("" if native_rate is None else f"; raw/native = {ratios['raw_over_native']:.2f} (goal >= 1)"))
    write_json(args.out, {
        "model": args.model, "backend": "engine", "mode": args.mode, "device": args.device, "batch": args.batch,
        "sources": str(args.sources), "photos": args.photos, "targets_per_photo": args.targets,
        "max_iter": args.max_iter, "repeats": args.repeats, "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "median_image_iterations_per_s": {"sweep": sweep_rate, "raw": raw_rate,
                                                                       "native": native_rate},
        "ratios": ratios, "rounds": rounds, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
