"""Helpers shared by the benchmarks: device sync, wall time of a call, the matmul
ceiling, a net's multiply-add count, and writing the JSON result."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
# Where the JSON results go: $BENCH_RESULTS (a scratch folder), else bench/results/ (ignored by git).
RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from caffe_relabel.engine import CaffeNet  # noqa: E402


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str) -> float:
    """Wall seconds of one call, including the device work it queued."""
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def median_time(fn: Callable[[], object], device: str, repeats: int, warmup: int = 1) -> float:
    """Median wall seconds over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    return statistics.median(time_call(fn, device) for _ in range(repeats))


def matmul_gflops(device: str, n: int = 4096, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GEMM throughput in ``dtype`` (float32 with TF32 off: the faithful mode's arithmetic)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        seconds = median_time(lambda: a @ b, device, repeats)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    return 2 * n**3 / seconds / 1e9


def flops_per_image(net: CaffeNet) -> float:
    """Forward plus input-gradient FLOPs of the convolutions and inner products (2 x forward)."""
    total = 0.0
    for step, module in zip(net.steps, net.layers):
        weight = getattr(module, "weight", None)
        if weight is None:
            continue
        out = net.blob_shapes[step.tops[0]]
        per_output = int(np.prod(weight.shape[1:])) if step.type == "Convolution" else weight.numel() / weight.shape[0]
        total += 2 * float(np.prod(out[1:])) * per_output
    return 2 * total


def write_json(path: Path, result: dict) -> None:
    """Write a benchmark's result to ``path`` (folders made as needed) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
