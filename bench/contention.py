"""Throughput on a busy machine: quiet vs one core kept busy by another process.

    python bench/contention.py            # engine + pycaffe, batches 1 and 8, 15 s per measurement
    python bench/contention.py --quick    # 3 s per measurement, to try it out

For each configuration a fresh Python process loads the net and counts
image-iterations (forward + input gradient per image) for a fixed time, once
on a quiet machine and once while this script's own CPU hog (a child process
in a busy loop, pinned to CPU 0 unless --no-pin) runs. A fresh process per
measurement because the thread settings under test are read once, when torch
(libgomp) or caffe (OpenBLAS) loads.

Configurations:
- engine: the library's policy (caffe_relabel/threads.py: OMP_WAIT_POLICY=PASSIVE);
- engine-spin: libgomp's own default (GOMP_SPINCOUNT=300000), what ran before;
- engine-1thread: the library's policy with torch.set_num_threads(1);
- pycaffe: the library's policy (OPENBLAS_THREAD_TIMEOUT=4);
- pycaffe-spin: OpenBLAS's default (OPENBLAS_THREAD_TIMEOUT=28).

Prints slowdown = quiet / hogged throughput per configuration and batch
(goal: at most 2.5 for the library's policy); writes bench/results/contention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, write_json  # noqa: E402

# name -> (backend, environment overrides, torch threads or None for the default)
CONFIGS: dict[str, tuple[str, dict[str, str], "int | None"]] = {
    "engine": ("engine", {}, None),
    "engine-spin": ("engine", {"GOMP_SPINCOUNT": "300000"}, None),
    "engine-1thread": ("engine", {}, 1),
    "pycaffe": ("pycaffe", {}, None),
    "pycaffe-spin": ("pycaffe", {"OPENBLAS_THREAD_TIMEOUT": "28"}, None),
}
MODELS = ("bvlc_googlenet", "bvlc_alexnet", "bvlc_reference_caffenet", "efficientnet_lite0")

HOG = "while True: pass"


def worker(backend: str, model: str, batch: int, seconds: float, threads: "int | None") -> dict:
    """Image-iterations per second of one backend, counted for ``seconds`` after a warm-up call."""
    import numpy as np

    from caffe_relabel import load_model

    from caffe_relabel.models import testmodels
    from caffe_relabel.backends import load_classifier

    if model == "efficientnet_lite0":
        clf = load_model(model, backend=backend).classifier
    else:
        clf = load_classifier(*testmodels.random_model(model), backend=backend)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    x = np.random.default_rng(0).uniform(-100, 100, (batch,) + tuple(clf.input_shape)).astype(np.float32)
    t = [1] * batch
    clf.loss_and_gradient(x, t)
    calls = 0
    start = time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        clf.loss_and_gradient(x, t)
        calls += 1
    elapsed = time.perf_counter() - start
    info = {"images_per_s": calls * batch / elapsed, "calls": calls, "seconds": elapsed}
    if backend == "engine":
        import torch

        info["torch_threads"] = torch.get_num_threads()
    info["env"] = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT",
                                                  "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return info


def measure(name: str, model: str, batch: int, seconds: float, timeout: float) -> dict:
    backend, env_over, threads = CONFIGS[name]
    env = {**os.environ, **env_over}
    cmd = [sys.executable, __file__, "--worker", backend, model, str(batch), str(seconds), str(threads or 0)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


class Hog:
    """A child process spinning on one core (CPU 0 when pinned) until stopped."""

    def __init__(self, pin: bool) -> None:
        self.pin = pin
        self.proc: "subprocess.Popen[bytes] | None" = None

    def __enter__(self) -> "Hog":
        self.proc = subprocess.Popen([sys.executable, "-c", HOG])
        if self.pin:
            os.sched_setaffinity(self.proc.pid, {min(os.sched_getaffinity(0))})
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


def main(argv: "list[str] | None" = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s per measurement instead of 15")
    ap.add_argument("--seconds", type=float, default=None, help="seconds counted per measurement")
    ap.add_argument("--model", default="bvlc_googlenet", choices=MODELS)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="let the scheduler place the hog")
    ap.add_argument("--out", type=Path, default=RESULTS / "contention.json")
    ap.add_argument("--worker", nargs=5, metavar=("BACKEND", "MODEL", "BATCH", "SECONDS", "THREADS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        backend, model, batch, seconds, threads = args.worker
        print(json.dumps(worker(backend, model, int(batch), float(seconds), int(threads) or None)))
        return 0

    seconds = args.seconds or (3.0 if args.quick else 15.0)
    # A hogged spin-waiting run can be 40x slower than quiet: allow for it, plus loading the net.
    timeout = 120 + 60 * seconds
    rows: dict[str, dict] = {}
    print(f"{os.cpu_count()} CPUs; hog {'pinned to CPU 0' if args.pin else 'unpinned'}; {seconds:g} s per measurement")
    print("| config | batch | quiet img-it/s | hogged img-it/s | slowdown |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in args.configs:
        for batch in args.batches:
            quiet = measure(name, args.model, batch, seconds, timeout)
            with Hog(args.pin):
                hogged = measure(name, args.model, batch, seconds, timeout)
            row = {"quiet": quiet, "hogged": hogged}
            if "error" in quiet or "error" in hogged:
                print(f"| {name} | {batch} | {quiet.get('error', '')} | {hogged.get('error', '')} | - |", flush=True)
            else:
                row["slowdown"] = quiet["images_per_s"] / hogged["images_per_s"]
                print(f"| {name} | {batch} | {quiet['images_per_s']:.2f} | {hogged['images_per_s']:.2f} | "
                      f"{row['slowdown']:.1f}x |", flush=True)
            rows[f"{name}/{batch}"] = row
    result = {
        "model": args.model, "cpu_count": os.cpu_count(), "hog_pinned": args.pin, "seconds": seconds,
        "configs": {k: {"backend": v[0], "env": v[1], "threads": v[2]} for k, v in CONFIGS.items() if k in args.configs},
        "results": rows, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
