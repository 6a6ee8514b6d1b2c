"""What resizing with Pillow instead of scikit-image costs or gains on EfficientNet-Lite0 (issue 25).

    .venv/bin/python bench/resize_effect.py [--folder ../shared/imagenet-sample] [--count 500] [--pairs 40]

On the ImageNet sample (``<wnid>_<name>.JPEG``, labels from the WordNet id),
the zoo spec's bicubic resize (shorter side 256, centre crop 224) by each
resampler of ``InputSpec.resample``:

(a) seconds per photograph of ``fit`` (median; the decode is not timed);
(b) top-1 accuracy of each (engine, fast numerics), the share of photographs
    whose top-1 agrees, and the mean / max absolute pixel difference (grey levels);
(c) on the first ``--pairs`` photographs, one seeded random target each (never
    the true class), the paper's settings in faithful numerics, batch 8: the
    success rate under the 0.01 cap, the mean distortion of the successes and
    the mean iterations.

Writes resize_effect.json into $BENCH_RESULTS (default bench/results/), or to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np
from common import RESULTS, write_json
from imagenet_sample import DEFAULT_FOLDER

from caffe_relabel import Relabeller, load_model
from caffe_relabel.experiments.sources import IMAGE_SUFFIXES
from caffe_relabel.experiments.sweep import PAPER_SETTINGS
from caffe_relabel.images.preprocess import fit, images_to_blobs, load_image

RESAMPLERS = ("skimage", "pillow")
MODEL = "efficientnet_lite0"
CHUNK = 16  # photographs classified at once: the fitted images are not all kept


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    ap.add_argument("--count", type=int, default=500, help="photographs for (a) and (b) (default 500)")
    ap.add_argument("--pairs", type=int, default=40, help="photographs relabelled for (c) (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="of the random targets (default 0)")
    ap.add_argument("--out", type=Path, default=RESULTS / "resize_effect.json")
    args = ap.parse_args(argv)

    fast = load_model(MODEL, backend="engine", numerics="fast")
    specs = {r: dataclasses.replace(fast.input, interpolation=3, resample=r) for r in RESAMPLERS}
    files = sorted(f for f in args.folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)[:args.count]
    if len(files) < max(args.count, args.pairs):
        raise SystemExit(f"{args.folder}: expected {max(args.count, args.pairs)} <wnid>_<name>.JPEG photographs, "
                         f"found {len(files)}")
    truth = np.array([fast.resolve(f.name.split("_", 1)[0]) for f in files])

    seconds: dict[str, list[float]] = {r: [] for r in RESAMPLERS}
    top1: dict[str, list[int]] = {r: [] for r in RESAMPLERS}
    kept: dict[str, list[np.ndarray]] = {r: [] for r in RESAMPLERS}  # the first --pairs fitted images, for (c)
    diff_sum, diff_max, pixels = 0.0, 0.0, 0
    for start in range(0, len(files), CHUNK):
        fitted: dict[str, list[np.ndarray]] = {r: [] for r in RESAMPLERS}
        for f in files[start:start + CHUNK]:
            image = load_image(f)
            for r in RESAMPLERS:
                t = time.perf_counter()
                fitted[r].append(fit(image, specs[r]))
                seconds[r].append(time.perf_counter() - t)
        for r in RESAMPLERS:
            blobs = images_to_blobs(np.stack(fitted[r]), specs[r])
            top1[r] += [int(i) for i in fast.classifier.forward(blobs).argmax(1)]
            kept[r] += fitted[r][:max(0, args.pairs - start)]
        d = np.abs(np.stack(fitted["skimage"]) - np.stack(fitted["pillow"])) * 255.0
        diff_sum, diff_max, pixels = diff_sum + float(d.sum()), max(diff_max, float(d.max())), pixels + d.size
        print(f"{start + len(fitted['skimage'])}/{len(files)} photographs", flush=True)
    labels = {r: np.array(top1[r]) for r in RESAMPLERS}

    rng = np.random.default_rng(args.seed)
    targets = [int((t + rng.integers(1, 1000)) % 1000) for t in truth[:args.pairs]]
    relabeller = Relabeller(load_model(MODEL, backend="engine", numerics="faithful"), PAPER_SETTINGS, batch_size=8)
    relabel = {}
    for r in RESAMPLERS:
        t = time.perf_counter()
        out = relabeller.relabel_batch(np.stack(kept[r]), targets)
        ok = out.success
        relabel[r] = {"success_rate": float(ok.mean()),
                      "distortion_mean_success": float(out.distortions[ok].mean()) if ok.any() else None,
                      "iterations_mean": float(out.iterations.mean()), "seconds": time.perf_counter() - t,
                      "success": ok.tolist(), "distortions": out.distortions.tolist()}

    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "cpu": _cpu(), "model": MODEL,
        "resize": specs["skimage"].resize, "interpolation": 3, "photographs": len(files), "pairs": args.pairs,
        "seed": args.seed, "settings": PAPER_SETTINGS.as_dict(),
        "fit_seconds_median": {r: statistics.median(seconds[r]) for r in RESAMPLERS},
        "top1_accuracy": {r: float((labels[r] == truth).mean()) for r in RESAMPLERS},
        "top1_agreement": float((labels["skimage"] == labels["pillow"]).mean()),
        "pixel_difference_mean": diff_sum / pixels, "pixel_difference_max": diff_max,  # grey levels (1/255)
        "relabel": relabel, "targets": targets,
    }
    _print_table(result)
    write_json(args.out, result)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else ():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _print_table(result: dict) -> None:
    def fmt(value: object, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(f"{MODEL}, {result['photographs']} photographs; relabelling {result['pairs']} pairs, cap 0.01")
    print(f"{'resample':10} {'fit s/photo':>11} {'top-1':>6} {'success':>8} {'distortion':>10} {'iterations':>10}")
    for r in RESAMPLERS:
        rel = result["relabel"][r]
        print(f"{r:10} {result['fit_seconds_median'][r]:11.4f} {result['top1_accuracy'][r]:6.3f} "
              f"{rel['success_rate']:8.3f} {fmt(rel['distortion_mean_success'], '10.5f')} "
              f"{rel['iterations_mean']:10.2f}")
    print(f"top-1 agreement {result['top1_agreement']:.3f}; pixel difference mean "
          f"{result['pixel_difference_mean']:.3f}, max {result['pixel_difference_max']:.1f} grey levels")


if __name__ == "__main__":
    main()
