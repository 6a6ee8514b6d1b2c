"""The engine on a GPU in one short run: fidelity, mode agreement, throughput, a sweep.

    python bench/gpu_check.py --make-references bench/results/gpu_references.npz   # here, with pycaffe on CPU
    python bench/gpu_check.py --references bench/results/gpu_references.npz         # on the GPU machine
    python bench/gpu_check.py --device cpu --quick --references REF.npz --out x.json  # dry run on CPU

Sections, each recorded in the JSON even when it fails (its "error" says why):
- fidelity: engine faithful mode on the device against CPU pycaffe references made
  here (random-weight GoogLeNet: logits relative error, input-gradient sign
  agreement; the regression cases of tests/regression/reference.json: stop
  reasons and iteration counts);
- modes: fast and fast-bf16 against faithful on the device (logits error,
  gradient sign agreement, regression cases that end differently);
- throughput: GoogLeNet image-iterations/s at batches 1, 8, 64, 256 per mode,
  with and without torch.compile, next to float32 and bfloat16 matmul ceilings
  measured in the same run;
- sweep: the Relabeller on EfficientNet-Lite0 over random photo/target pairs
  (2000 on a GPU, a handful on CPU), results per second.
A time budget (--budget-s) keeps the run inside a lease: what does not fit is
recorded as skipped. Writes $OUT/gpu_check.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, flops_per_image, matmul_gflops, median_time, sync, write_json  # noqa: E402

from caffe_relabel import Relabeller, load_model  # noqa: E402

from caffe_relabel.models import testmodels

from caffe_relabel.models import zoo
from caffe_relabel.backends import load_classifier  # noqa: E402
from caffe_relabel.backends.engine import EngineClassifier  # noqa: E402
from caffe_relabel.numerics import NUMERICS  # noqa: E402
from caffe_relabel.models.model import Model  # noqa: E402

REGRESSION_REFERENCE = ROOT / "tests" / "regression" / "reference.json"
NET = "bvlc_googlenet"


def sign_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sign(a) == np.sign(b)))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over max |b|: one number for a whole batch of logits."""
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


# -- references (made here, on CPU pycaffe) ----------------------------------------

def make_references(path: Path, n: int = 4) -> None:
    proto, weights = testmodels.random_model(NET)
    caffe = load_classifier(proto, weights, backend="pycaffe")
    logits_name = EngineClassifier(proto, weights).net.logits_name
    rng = np.random.default_rng(0)
    x = rng.uniform(-120, 120, (n,) + tuple(caffe.input_shape)).astype(np.float32)
    targets = rng.integers(0, caffe.num_classes, n)
    lg = caffe.loss_and_gradient(x, targets)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=x, targets=targets, probs=lg.probs, grad=lg.grad,
                        logits=caffe.blob(x, logits_name), logits_name=logits_name,
                        regression=REGRESSION_REFERENCE.read_text())


# -- the checks ---------------------------------------------------------------------

def regression_runs(device: str, mode: str, quick: bool) -> dict[str, list[dict[str, Any]]]:
    """The regression cases on the engine in one mode: stop and iterations per case.

    quick: the first case of each digits group only (GoogLeNet's logits and
    gradient are still compared by the fidelity section).
    """
    sys.path.insert(0, str(ROOT))
    from tests.regression import cases

    per_group = 1 if quick else None
    out = {}
    for group in cases.GROUPS:
        if quick and group.model != "digits":
            continue
        images, targets, sources = cases.inputs(group)
        images, targets, sources = images[:per_group], targets[:per_group], sources[:per_group]
        if group.model == "digits":
            proto, weights = testmodels.DIGITS_PROTOTXT, testmodels.DIGITS_WEIGHTS
        else:
            proto, weights = testmodels.random_model(group.model)
        spec = zoo.get(group.model)
        model = Model(EngineClassifier(proto, weights, device=device, numerics=mode), spec.input, group.model,
                      zoo.class_names(spec.classes), spec.classes)
        results = Relabeller(model, max_distortion=group.max_distortion, max_iter=group.max_iter,
                             batch_size=group.batch_size).run_batch(images, targets)
        out[group.name] = [{"source": s, "stop": r.stop, "iterations": r.iterations, "final_label": r.final_label}
                           for s, r in zip(sources, results)]
    return out


def compare_runs(runs: dict[str, list[dict]], reference: dict[str, list[dict]]) -> dict[str, Any]:
    cases = differ = 0
    worst = 0
    examples = []
    for group, rows in runs.items():
        ref = {r["source"]: r for r in reference[group]}
        for row in rows:
            want = ref[row["source"]]
            cases += 1
            worst = max(worst, abs(row["iterations"] - want["iterations"]))
            if row["stop"] != want["stop"] or row["iterations"] != want["iterations"]:
                differ += 1
                examples.append({"group": group, "source": row["source"], "got": [row["stop"], row["iterations"]],
                                 "want": [want["stop"], want["iterations"]]})
    return {"cases": cases, "ending_differently": differ, "max_iteration_difference": worst, "examples": examples[:10]}


def net_outputs(clf: EngineClassifier, ref: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    x, t = ref["x"][:n], ref["targets"][:n]
    return clf.blob(x, str(ref["logits_name"])), clf.loss_and_gradient(x, t).grad


def fidelity(args: argparse.Namespace, ref: Any, state: dict) -> dict[str, Any]:
    proto, weights = testmodels.random_model(NET)
    logits, grad = net_outputs(EngineClassifier(proto, weights, device=args.device, numerics="faithful"), ref, args.n)
    state["faithful"] = (logits, grad)
    runs = regression_runs(args.device, "faithful", args.quick)
    state["faithful_runs"] = runs
    return {
        "inputs": int(min(args.n, len(ref["x"]))),
        "logits_relative_error": relative_error(logits, ref["logits"][: args.n]),
        "grad_sign_agreement": sign_agreement(grad, ref["grad"][: args.n]),
        "regression_vs_pycaffe": compare_runs(runs, json.loads(str(ref["regression"]))["groups"]),
    }


def modes(args: argparse.Namespace, ref: Any, state: dict) -> dict[str, Any]:
    proto, weights = testmodels.random_model(NET)
    base_logits, base_grad = state["faithful"]
    out = {}
    for mode in NUMERICS[1:]:
        logits, grad = net_outputs(EngineClassifier(proto, weights, device=args.device, numerics=mode), ref, args.n)
        out[mode] = {
            "logits_relative_error_vs_faithful": relative_error(logits, base_logits),
            "grad_sign_agreement_vs_faithful": sign_agreement(grad, base_grad),
            "regression_vs_faithful": compare_runs(regression_runs(args.device, mode, args.quick), state["faithful_runs"]),
        }
    return out


def throughput(args: argparse.Namespace, ref: Any, state: dict) -> dict[str, Any]:
    proto, weights = testmodels.random_model(NET)
    flops = None
    ceilings = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        gflops = matmul_gflops(args.device, n=args.matmul_n, dtype=dtype)
        ceilings[name] = {"matmul_gflops": gflops}
    rows: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    for compiled in args.compile:
        for mode in NUMERICS:
            key = f"{mode}{'+compile' if compiled else ''}"
            if time.perf_counter() > state["deadline"]:
                rows[key] = {"skipped": "time budget"}
                continue
            clf = EngineClassifier(proto, weights, device=args.device, numerics=mode, compile=compiled)
            flops = flops or flops_per_image(clf.net)
            row = {}
            for batch in args.batches:
                if time.perf_counter() > state["deadline"]:
                    row[str(batch)] = {"skipped": "time budget"}
                    continue
                x = rng.uniform(-120, 120, (batch,) + tuple(clf.input_shape)).astype(np.float32)
                t = rng.integers(0, clf.num_classes, batch)
                start = time.perf_counter()
                clf.loss_and_gradient(x, t)  # warm-up: cuDNN autotuning, compilation
                sync(args.device)
                warm = time.perf_counter() - start
                seconds = median_time(lambda: clf.loss_and_gradient(x, t), args.device, args.repeats, warmup=1 if compiled else 0)
                row[str(batch)] = {"images_per_s": batch / seconds, "seconds": seconds, "first_call_s": warm}
            rows[key] = row
            del clf
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    for c in ceilings.values():
        c["ceiling_images_per_s"] = c["matmul_gflops"] * 1e9 / flops if flops else None
    return {"model": NET, "gflop_per_image_iteration": (flops or 0) / 1e9, "ceilings": ceilings, "runs": rows}


def sweep(args: argparse.Namespace, ref: Any, state: dict) -> dict[str, Any]:
    from peers import make_pairs

    model = load_model("efficientnet_lite0", backend="engine", device=args.device)
    _, photos, targets = make_pairs(args.pairs, 0, model.input)
    relabeller = Relabeller(model, max_iter=args.max_iter, batch_size=args.sweep_batch)
    done = successes = image_iterations = 0
    start = time.perf_counter()
    for _, r in relabeller.iter_results(zip(photos, targets)):
        done += 1
        successes += r.success
        image_iterations += r.iterations + 1
        if time.perf_counter() > state["deadline"]:
            break
    seconds = time.perf_counter() - start
    return {"model": "efficientnet_lite0", "batch": args.sweep_batch, "planned": args.pairs, "done": done,
            "successes": successes, "image_iterations": image_iterations, "seconds": seconds,
            "results_per_s": done / seconds, "image_iterations_per_s": image_iterations / seconds,
            "stopped_by_budget": done < args.pairs}


SECTIONS: dict[str, Callable[[argparse.Namespace, Any, dict], dict[str, Any]]] = {
    "fidelity": fidelity, "modes": modes, "sweep": sweep, "throughput": throughput,
}


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make-references", type=Path, metavar="OUT.npz", help="write the pycaffe references and stop")
    ap.add_argument("--references", type=Path, default=RESULTS / "gpu_references.npz")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of every section")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting new work after this many seconds")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default $OUT/gpu_check.json)")
    args = ap.parse_args(argv)
    if args.make_references:
        make_references(args.make_references)
        print(f"wrote {args.make_references}")
        return 0

    gpu = args.device.startswith("cuda")
    args.n = 1 if args.quick else 4  # reference inputs compared
    args.batches = [1] if args.quick else [1, 8, 64, 256] if gpu else [1, 8]
    args.compile = [False] if args.quick else [False, True]
    args.repeats = 1 if args.quick else 5
    args.matmul_n = 512 if args.quick else 8192 if gpu else 2048
    args.pairs = 1 if args.quick else 2000 if gpu else 8
    args.max_iter = 1 if args.quick else 1000
    args.sweep_batch = 1 if args.quick else 128 if gpu else 8
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else RESULTS) / "gpu_check.json"

    state: dict[str, Any] = {"deadline": time.perf_counter() + args.budget_s}
    result: dict[str, Any] = {
        "device": args.device, "gpu": torch.cuda.get_device_name() if gpu and torch.cuda.is_available() else None,
        "torch": torch.__version__, "cuda": torch.version.cuda, "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "quick": args.quick, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    ref = np.load(args.references)
    for name, section in SECTIONS.items():
        start = time.perf_counter()
        try:
            result[name] = section(args, ref, state)
        except Exception as e:  # one broken section must not cost the lease the others
            result[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=5)}
        result[name]["section_seconds"] = time.perf_counter() - start
        print(f"{name}: {json.dumps(result[name])[:600]}", flush=True)
    write_json(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
