"""Power and neuron layers in a real net: their share of the forward, and the gain of their cheap paths.

On the converted EfficientNet-Lite0 (ReLU6 = ReLU -> Power(-x + 6) -> ReLU ->
Power(-x + 6), 32 times per image) the engine is timed side by side in one
run, interleaved repeat by repeat, with two implementations of Power(power 1):

- ``literal``: Caffe's steps as separate tensor ops (``x * scale``, then
  ``+ shift``), what the engine did before;
- ``engine``: the builder's path (one kernel per Power: ``shift - x``).

Both give the same bits (checked here too). For each, the forward and the
forward + input gradient are timed (median of ``--repeats``), and per-layer
hooks give Power's and ReLU's share of the forward.

    python bench/neuron_layers.py                 # batch 8, 5 repeats
    python bench/neuron_layers.py --batch 1 --repeats 9

Writes bench/results/neuron_layers.json and prints the ratios. The machine
may be shared: only ratios measured in one run mean anything.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caffe_relabel.engine import CaffeNet  # noqa: E402
from caffe_relabel.engine.layers.neuron import Elementwise  # noqa: E402
from caffe_relabel.models import zoo
from caffe_relabel.models.model import load_model  # noqa: E402
from caffe_relabel.netdef.proto.io import read_net  # noqa: E402

from common import RESULTS  # noqa: E402


def _literal(scale: float, shift: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def power(x: torch.Tensor) -> torch.Tensor:
        if scale != 1:
            x = x * scale
        if shift != 0:
            x = x + shift
        return x

    return power


def power_modules(net: CaffeNet) -> list[tuple[Elementwise, Callable, Callable]]:
    """(module, its engine function, the literal function) for every Power layer of power 1."""
    params = {layer.name: layer.power_param for layer in read_net(zoo.prototxt_path("efficientnet_lite0")).layer}
    found = []
    for step, module in zip(net.steps, net.layers):
        if step.type == "Power" and params[step.name].power == 1:
            p = params[step.name]
            found.append((module, module.fn, _literal(float(p.scale), float(p.shift))))
    return found


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def layer_shares(net: CaffeNet, x: torch.Tensor) -> dict[str, float]:
    """Seconds per layer type in one forward (hooks around each module)."""
    seconds: dict[str, float] = defaultdict(float)
    starts: dict[int, float] = {}
    handles = []
    for step, module in zip(net.steps, net.layers):
        handles.append(module.register_forward_pre_hook(lambda m, i: starts.__setitem__(id(m), time.perf_counter())))
        handles.append(module.register_forward_hook(
            lambda m, i, o, t=step.type: seconds.__setitem__(t, seconds[t] + time.perf_counter() - starts[id(m)])))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", default="neuron_layers")
    args = parser.parse_args()

    net: CaffeNet = load_model("efficientnet_lite0", backend="engine").classifier.net
    powers = power_modules(net)
    torch.manual_seed(0)
    x = torch.randn(args.batch, *net.input_shape[1:]) * 50

    def use(which: int) -> None:
        for module, engine_fn, literal_fn in powers:
            module.fn = (engine_fn, literal_fn)[which]

    def forward() -> None:
        with torch.no_grad():
            net(x)

    def forward_grad() -> None:
        xt = x.clone().requires_grad_(True)
        logits = net(xt)
        torch.autograd.grad(logits[:, 0].sum(), xt)

    outputs = []
    for which in (0, 1):
        use(which)
        xt = x.clone().requires_grad_(True)
        logits = net(xt)
        outputs.append((logits.detach(), torch.autograd.grad(logits[:, 0].sum(), xt)[0]))
    identical = all(torch.equal(a, b) for a, b in zip(*outputs))

    names = ("engine", "literal")
    times: dict[str, dict[str, list[float]]] = {n: {"forward": [], "forward_grad": []} for n in names}
    shares: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for which, name in enumerate(names):  # warm-up
        use(which)
        forward_grad()
    for _ in range(args.repeats):
        for which, name in enumerate(names):
            use(which)
            times[name]["forward"].append(_timed(forward))
            times[name]["forward_grad"].append(_timed(forward_grad))
            shares[name].append(layer_shares(net, x))
    use(0)

    result: dict[str, object] = {
        "model": "efficientnet_lite0", "batch": args.batch, "repeats": args.repeats,
        "power_layers": len(powers), "identical_logits_and_gradient": identical,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
    }
    for name in names:
        median = {k: statistics.median(v) for k, v in times[name].items()}
        per_type = {t: statistics.median(s.get(t, 0.0) for s in shares[name]) for t in ("Power", "ReLU", "Convolution")}
        total = statistics.median(sum(s.values()) for s in shares[name])
        result[name] = {"forward_s": median["forward"], "forward_grad_s": median["forward_grad"],
                        "layer_s": per_type, "power_share_of_forward": per_type["Power"] / total}
    for key in ("forward_s", "forward_grad_s"):
        result[f"literal_over_engine_{key[:-2]}"] = result["literal"][key] / result["engine"][key]  # type: ignore[index]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
