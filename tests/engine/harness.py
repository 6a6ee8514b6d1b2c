"""Run one small net through real Caffe and through the engine, side by side.

Caffe's parameters are filled from a seeded generator and saved as a
caffemodel, so both sides read the same bytes; the input gradient is seeded
with the same random top diff on both sides.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from caffe_relabel.backends.pycaffe import import_caffe
from caffe_relabel.engine import build_net
from caffe_relabel.netdef.proto.io import parse_net


@dataclass
class SideBySide:
    caffe_out: np.ndarray
    engine_out: np.ndarray
    caffe_grad: np.ndarray
    engine_grad: np.ndarray


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|: scale-free, and well defined where want has zeros."""
    scale = float(np.abs(want).max())
    return float(np.abs(got - want).max()) / (scale if scale > 0 else 1.0)


def run_both(prototxt: str, input_shape: tuple[int, ...], output: str, seed: int = 0,
             input_values: "np.ndarray | None" = None, gradient: bool = True) -> SideBySide:
    """``gradient=False`` for forward-only layers: Caffe aborts the process in their backward
    (the gradients are then zeros on both sides, not compared)."""
    caffe = import_caffe()
    caffe.set_mode_cpu()
    text = "force_backward: true\n" + f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {" ".join(f"dim: {d}" for d in input_shape)} }} }} }}\n' + prototxt
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        proto_path = Path(tmp, "net.prototxt")
        proto_path.write_text(text)
        net = caffe.Net(str(proto_path), caffe.TEST)
        for name, blobs in net.params.items():
            # BatchNorm's variance and scale factor must be positive.
            positive = net.layer_dict[name].type == "BatchNorm"
            for b in blobs:
                values = rng.normal(0.0, 0.5, size=b.data.shape)
                b.data[...] = np.abs(values) + 0.5 if positive else values
        weights = Path(tmp, "net.caffemodel")
        net.save(str(weights))
        x = input_values if input_values is not None else rng.normal(0.0, 2.0, size=input_shape).astype(np.float32)
        net.blobs["data"].data[...] = x
        net.forward()
        caffe_out = net.blobs[output].data.copy()
        top_diff = rng.normal(0.0, 1.0, size=caffe_out.shape).astype(np.float32)
        for blob in net.blobs.values():
            blob.diff[...] = 0
        net.blobs[output].diff[...] = top_diff
        if gradient:
            last = list(net._layer_names).index(_producer(net, output))
            net._backward(last, 0)
        caffe_grad = net.blobs["data"].diff.copy()
        engine = build_net(parse_net(text), str(weights), source="test")
    xt = torch.from_numpy(np.array(x, dtype=np.float32)).requires_grad_(True)
    out = engine.blobs(xt, [output])[output]
    if out.requires_grad and gradient:
        (grad,) = torch.autograd.grad(out, xt, torch.from_numpy(top_diff).reshape(out.shape))
    else:
        grad = torch.zeros_like(xt)
    return SideBySide(caffe_out, out.detach().contiguous().numpy(), caffe_grad, grad.contiguous().numpy())


def _producer(net: object, blob: str) -> str:
    names = list(net._layer_names)  # type: ignore[attr-defined]
    return [n for n in names if blob in net.top_names[n]][-1]  # type: ignore[attr-defined]

