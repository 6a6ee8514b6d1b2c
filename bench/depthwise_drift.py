"""Drift of the faithful engine's depthwise blocks against real Caffe and float64, both layouts side by side.

    .venv/bin/python bench/depthwise_drift.py [--names mobilenet_v1 mobilenet_v2 efficientnet_lite0]

The faithful CPU engine runs depthwise convolutions by oneDNN on channels-last
tensors and keeps their outputs channels-last through the block, 1 x 1
convolutions included (caffe_relabel/engine/layers/conv.py). This measures,
in one run, that layout against the earlier one (every depthwise output
copied back to NCHW, so the 1 x 1 convolutions take im2col): for MobileNet
v1/v2 (seeded random weights) and EfficientNet-Lite0 (its converted
weights), on eight seeded uniform inputs and four photographs (as the slow
fidelity tests), the cells of bench/README.md: logits max relative error
against pycaffe / median (lowest) sign agreement with pycaffe / mean share
of signs flipped against float64, and pycaffe's own flips. Writes
bench/results/depthwise_drift.json ($BENCH_RESULTS).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import RESULTS, write_json  # noqa: E402
from zoo_architectures import fidelity  # noqa: E402

from caffe_relabel.backends import load_classifier  # noqa: E402
from caffe_relabel.backends.engine import EngineClassifier  # noqa: E402
from caffe_relabel.engine.layers.conv import Conv2d  # noqa: E402
from caffe_relabel.models import testmodels  # noqa: E402
from tests.engine.test_zoo_architectures import TARGETS  # noqa: E402
from tests.engine.test_zoo_fidelity import model_files, photographs  # noqa: E402


def nchw_blocks(engine: EngineClassifier) -> EngineClassifier:
    """The earlier layout: each depthwise output copied to NCHW, so the next 1 x 1 convolution takes im2col."""
    for module in engine.net.layers:
        if isinstance(module, Conv2d) and module.depthwise:
            plain = module.forward
            module.forward = lambda x, plain=plain: tuple(t.contiguous() for t in plain(x))
    return engine


def cells(f: dict, mode: str, logits_error: float) -> str:
    ours = f[mode]
    return (f"{logits_error:.1e} / {np.median(ours['agreement']):.3%} ({min(ours['agreement']):.2%}) / "
            f"{np.mean(ours['off_float64']):.4%}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", nargs="+", default=["mobilenet_v1", "mobilenet_v2", "efficientnet_lite0"])
    ap.add_argument("--out", type=Path, default=RESULTS / "depthwise_drift.json")
    args = ap.parse_args()
    out: dict = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                 "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nets": {}}
    rows = []
    for name in args.names:
        proto, weights = model_files(name)
        engines = {"faithful": EngineClassifier(proto, weights), "nchw": nchw_blocks(EngineClassifier(proto, weights))}
        caffe = load_classifier(proto, weights, backend="pycaffe")
        scale = testmodels.ZOO_INPUT_SCALE.get(name, 1.0)
        shape = engines["faithful"].input_shape
        uniform = (np.random.default_rng(0).uniform(-120, 120, size=(len(TARGETS),) + shape) * scale).astype(np.float32)
        inputs = {"random": (uniform, list(TARGETS)),
                  "photos": ((photographs(shape[1]) * scale).astype(np.float32), [1, 500, 999, 281])}
        out["nets"][name] = {}
        for kind, (x, targets) in inputs.items():
            f = fidelity(engines, caffe, x, targets)
            logits = engines["faithful"].net.logits_name
            want = caffe.blob(x, logits)
            f["nchw_logits_max_rel_error"] = float(np.abs(engines["nchw"].blob(x, logits) - want).max()
                                                   / np.abs(want).max())
            out["nets"][name][kind] = f
            rows.append(f"| {name} | {kind} | {cells(f, 'faithful', f['logits_max_rel_error'])} | "
                        f"{cells(f, 'nchw', f['nchw_logits_max_rel_error'])} | "
                        f"{np.mean(f['caffe_off_float64']):.4%} |")
            print(rows[-1], flush=True)
    write_json(args.out, out)
    print("\n| net | inputs | channels-last blocks | NCHW blocks (before) | pycaffe off float64 |\n| --- | --- | --- | --- | ---: |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
