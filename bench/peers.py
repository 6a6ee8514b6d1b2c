"""The Relabeller against torchattacks and Foolbox BIM, side by side in one run.

    python bench/peers.py                 # 32 pairs, Relabeller + torchattacks BIM-10/20 + Foolbox BIM-10/20
    python bench/peers.py --pairs 64 --methods relabeller bim20
    python bench/peers.py --sources ../shared/imagenet-sample --photos 32 --methods relabeller bim20

Same model (EfficientNet-Lite0 converted to Caffe, engine backend; the
attacks get its torch module), same photo/target pairs (scikit-image photos
and crops of them, or with --sources the first --photos ImageNet photographs
of a folder of ``<wnid>_<name>.JPEG`` files; targets drawn at random with a
fixed seed), same step:
the paper's 50/255 of a grey level per pixel channel. The peers work on
[0, 1] RGB images through the model's public ``model.module``, which builds
the network's blob (BGR, x 255, minus the mean) inside; their eps is the whole reach of their steps,
so it never binds before the cap does. They run every step (no early stop);
the Relabeller stops each sample on its own.

Per method: successes under the 0.01 cap (top-1 = target and
caffe_relabel.images.distortion <= 0.01, on the float image), 8-bit successes (the
same on the image rounded to uint8 and classified again), top-1 hits at any
distortion, mean distortion, image-iterations (forward + input gradient per
image) and wall time. The Relabeller's time includes its own final 8-bit
classification; the peers' time is their attack call only. Writes
bench/results/peers.json and prints the table, BIM-20 time / Relabeller time
(goal >= 2.5) and both methods' successes under the cap (goal: the
Relabeller's at least BIM-20's).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import skimage.data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, sync, write_json  # noqa: E402
from imagenet_sample import photographs  # noqa: E402

from caffe_relabel import Relabeller, load_model  # noqa: E402
from caffe_relabel.images.distortion import distortion  # noqa: E402
from caffe_relabel.numerics import NUMERICS  # noqa: E402
from caffe_relabel.models.model import Model  # noqa: E402
from caffe_relabel.images.preprocess import InputSpec, fit, load_image, to_uint8  # noqa: E402

CAP = 0.01
ALPHA = 50.0  # the paper's step: 50/255 of a grey level


def _motorcycle() -> np.ndarray:
    return skimage.data.stereo_motorcycle()[0]


# Photos and crops of them (rows, columns): different framings give the net different inputs.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "astronaut": skimage.data.astronaut,
    "rocket": skimage.data.rocket,
    "motorcycle": _motorcycle,
    "astronaut_face": lambda: skimage.data.astronaut()[0:256, 128:384],
    "coffee_cup": lambda: skimage.data.coffee()[50:350, 150:450],
    "motorcycle_wheel": lambda: _motorcycle()[200:500, 0:300],
}


def make_pairs(n: int, seed: int, spec: InputSpec, files: Optional[list[str]] = None
               ) -> tuple[list[str], list[np.ndarray], list[int]]:
    """n (photo name, fitted [0, 1] RGB image, random target) triples, photos taken in turn:
    the scikit-image photos and crops, or the image ``files``."""
    rng = np.random.default_rng(seed)
    if files is None:
        fitted = {name: fit(load_image(load()), spec) for name, load in PHOTOS.items()}
    else:
        fitted = {Path(f).name: fit(load_image(f), spec) for f in files}
    names = [list(fitted)[i % len(fitted)] for i in range(n)]
    targets = [int(t) for t in rng.integers(0, 1000, n)]
    return names, [fitted[name] for name in names], targets


def to_tensor(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32)).to(device)


def to_images(x: torch.Tensor) -> list[np.ndarray]:
    return list(x.detach().cpu().double().numpy().transpose(0, 2, 3, 1))


def classify(module: torch.nn.Module, images: list[np.ndarray], device: torch.device, batch: int) -> list[int]:
    labels: list[int] = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            labels += module(to_tensor(images[i : i + batch], device)).argmax(1).flatten().tolist()
    return labels


def score(name: str, labels: list[int], dists: list[float], labels8: list[int], dists8: list[float],
          targets: list[int], image_iterations: int, seconds: float) -> dict:
    hit = np.array(labels) == np.array(targets)
    ok = hit & (np.array(dists) <= CAP)
    ok8 = (np.array(labels8) == np.array(targets)) & (np.array(dists8) <= CAP)
    return {
        "method": name,
        "pairs": len(targets),
        "success_under_cap": int(ok.sum()),
        "uint8_success_under_cap": int(ok8.sum()),
        "top1_target_any_distortion": int(hit.sum()),
        "mean_distortion": float(np.mean(dists)),
        "mean_distortion_successes": float(np.mean(np.array(dists)[ok])) if ok.any() else None,
        "image_iterations": int(image_iterations),
        "seconds": seconds,
        "image_iterations_per_s": image_iterations / seconds,
        "per_pair": {"label": labels, "distortion": dists, "uint8_label": labels8, "uint8_distortion": dists8},
    }


def run_relabeller(model: Model, photos: list[np.ndarray], targets: list[int], batch: int, device: str) -> dict:
    relabeller = Relabeller(model, alpha=ALPHA, max_distortion=CAP, batch_size=batch)
    start = time.perf_counter()
    results = relabeller.run_batch(photos, targets)
    sync(device)
    seconds = time.perf_counter() - start
    for r, x in zip(results, photos):
        assert np.array_equal(r.original, x), "the Relabeller saw another image than the peers"
    return score("relabeller", [r.final_label for r in results], [r.distortion for r in results],
                 [r.uint8_label for r in results], [r.uint8_distortion for r in results], targets,
                 sum(r.iterations + 1 for r in results), seconds)


def run_attack(name: str, attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int,
               module: torch.nn.Module, photos: list[np.ndarray], targets: list[int], batch: int,
               device: torch.device) -> dict:
    adv: list[np.ndarray] = []
    seconds = 0.0
    for i in range(0, len(photos), batch):
        x = to_tensor(photos[i : i + batch], device)
        t = torch.tensor(targets[i : i + batch], device=device)
        start = time.perf_counter()
        out = attack(x, t)
        sync(str(device))
        seconds += time.perf_counter() - start
        adv += to_images(out)
    # The image the attack returned is float32; compare it with the float64 original.
    dists = [distortion(a, p) for a, p in zip(adv, photos)]
    adv8 = [to_uint8(a) / 255.0 for a in adv]
    dists8 = [distortion(a, p) for a, p in zip(adv8, photos)]
    return score(name, classify(module, adv, device, batch), dists, classify(module, adv8, device, batch),
                 dists8, targets, steps * len(photos), seconds)


def torchattacks_bim(module: torch.nn.Module, step: float, steps: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torchattacks

    atk = torchattacks.BIM(module, eps=step * steps, alpha=step, steps=steps)
    atk.set_mode_targeted_by_label(quiet=True)
    return atk


def foolbox_bim(module: torch.nn.Module, step: float, steps: int, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import foolbox

    fmodel = foolbox.PyTorchModel(module, bounds=(0, 1), device=device)
    attack = foolbox.attacks.LinfBasicIterativeAttack(abs_stepsize=step, steps=steps, random_start=False)

    def run(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _, clipped, _ = attack(fmodel, x, foolbox.criteria.TargetedMisclassification(t), epsilons=step * steps)
        return clipped

    return run


METHODS = ("relabeller", "bim10", "bim20", "foolbox10", "foolbox20")


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="faithful", choices=NUMERICS, help="the engine's numeric mode (default faithful)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--sources", type=Path, default=None,
                    help="folder of <wnid>_<name>.JPEG ImageNet photographs, e.g. ../shared/imagenet-sample "
                         "(default: the scikit-image photos and crops)")
    ap.add_argument("--photos", type=int, default=None, help="how many of --sources' photographs (default --pairs)")
    ap.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    args = ap.parse_args(argv)

    model = load_model("efficientnet_lite0", backend="engine", device=args.device, numerics=args.mode)
    spec = model.input
    device = model.blob_module.device
    module = model.module
    files = None if args.sources is None else [
        str(s.image) for s in photographs(args.sources, model, args.photos or args.pairs)]
    names, photos, targets = make_pairs(args.pairs, args.seed, spec, files)
    step = ALPHA / 255.0 / 255.0  # in [0, 1] image units: 50/255 of a grey level
    # Warm-up (allocation, oneDNN primitives) so the first method timed does not pay for it.
    model.classifier.loss_and_gradient(np.zeros((args.batch,) + spec.shape, np.float32), [0] * args.batch)

    rows = []
    versions = {"torch": torch.__version__}
    for method in args.methods:
        if method == "relabeller":
            row = run_relabeller(model, photos, targets, args.batch, args.device)
        else:
            steps = int(method[-2:])
            try:
                if method.startswith("bim"):
                    import torchattacks

                    versions["torchattacks"] = torchattacks.__version__
                    attack = torchattacks_bim(module, step, steps)
                    label = f"torchattacks BIM-{steps}"
                else:
                    import foolbox

                    versions["foolbox"] = foolbox.__version__
                    attack = foolbox_bim(module, step, steps, device)
                    label = f"foolbox LinfBIM-{steps}"
            except ImportError as e:
                print(f"{method}: skipped ({e}); install the bench extra: pip install -e .[bench]")
                continue
            row = run_attack(label, attack, steps, module, photos, targets, args.batch, device)
        rows.append(row)
        print(f"{row['method']:>22}: {row['success_under_cap']:3d}/{row['pairs']} under cap, "
              f"{row['seconds']:.1f} s", flush=True)

    print()
    print(f"| method | under {CAP} | 8-bit under {CAP} | top-1 any | mean distortion | image-its | seconds | img-it/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['method']} | {r['success_under_cap']}/{r['pairs']} | {r['uint8_success_under_cap']}/{r['pairs']} | "
              f"{r['top1_target_any_distortion']}/{r['pairs']} | {r['mean_distortion']:.5f} | {r['image_iterations']} | "
              f"{r['seconds']:.2f} | {r['image_iterations_per_s']:.1f} |")
    by = {r["method"]: r for r in rows}
    ratio = successes = None
    if "relabeller" in by and "torchattacks BIM-20" in by:
        ratio = by["torchattacks BIM-20"]["seconds"] / by["relabeller"]["seconds"]
        successes = {"relabeller": by["relabeller"]["success_under_cap"],
                     "bim20": by["torchattacks BIM-20"]["success_under_cap"]}
        print(f"\nBIM-20 time / Relabeller time = {ratio:.2f} (goal >= 2.5), successes under the cap: "
              f"Relabeller {successes['relabeller']}, BIM-20 {successes['bim20']} of {args.pairs} "
              f"(goal: the Relabeller's at least BIM-20's)")
    result = {
        "model": "efficientnet_lite0", "backend": "engine", "device": args.device, "mode": args.mode, "batch": args.batch,
        "seed": args.seed, "cap": CAP, "alpha_grey_levels": ALPHA / 255.0, "step_image_units": step,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "versions": versions,
        "pairs": [{"photo": n, "target": t} for n, t in zip(names, targets)],
        "sources": "scikit-image photos and crops" if args.sources is None else str(args.sources),
        "bim20_over_relabeller_time": ratio, "successes_under_cap_relabeller_bim20": successes, "methods": rows, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
