"""Fused layer runs (engine/fusion.py) compute exactly what the layers compute, one by one and in real Caffe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caffe_relabel.engine import build_net
from caffe_relabel.netdef.proto.io import parse_net
from tests.engine.harness import run_both

F32 = np.float32


_CONV = """
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 1 } }
"""
# An exact copy (Caffe skips a scale of 1 and a shift of 0): a convolution's own rounding is not the chain's.
_COPY = 'layer { name: "c" type: "Power" bottom: "data" top: "c" }\n'


def _chain(shift: float = 6.0, second_shift: "float | None" = None, slope: float = 0.0, scale: float = -1.0,
           head: str = _CONV) -> str:
    """ReLU, Power(shift - x), ReLU, Power(shift - x), in place where Caffe's converted nets are."""
    second = shift if second_shift is None else second_shift
    return head + f"""
layer {{ name: "r1" type: "ReLU" bottom: "c" top: "c" relu_param {{ negative_slope: {slope} }} }}
layer {{ name: "f1" type: "Power" bottom: "c" top: "f" power_param {{ scale: {scale} shift: {shift} }} }}
layer {{ name: "r2" type: "ReLU" bottom: "f" top: "f" }}
layer {{ name: "f2" type: "Power" bottom: "f" top: "y" power_param {{ scale: -1 shift: {second} }} }}
"""


def _net(body: str, shape: tuple[int, ...] = (1, 1, 4, 16)):
    dims = " ".join(f"dim: {d}" for d in shape)
    text = f'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n{body}'
    weights = {"c": [np.array([[[[1.0]]], [[[-1.0]]]], dtype=F32), np.zeros(2, dtype=F32)]} if _CONV in body else None
    return build_net(parse_net(text), weights, source="test")


def _edges(shift: float) -> np.ndarray:
    """Values where the chain's roundings and masks turn: 0, +-tiny, around s / 2 and s, large, infinite."""
    s = F32(shift)
    tiny = np.finfo(F32).tiny
    values = [0.0, -0.0, tiny, -tiny, 1e-8, 1e-7, 2.5e-7, 3e-7, 1e-3, 0.1, 1.0 / 3, 1.0, s / 2,
              np.nextafter(s / 2, F32(0)), np.nextafter(s / 2, s), np.nextafter(s, F32(0)), s, np.nextafter(s, F32(99)),
              s + 1, 1e30, np.inf, -np.inf, -1.0, -1e30, 2.0, 2.0000002, 3.7, 5.999]
    grid = np.linspace(-1.0, float(s) + 1, 36, dtype=F32)
    return np.concatenate([np.array(values, dtype=F32), grid])[:64].reshape(1, 1, 4, 16)


def _bits(a: torch.Tensor) -> np.ndarray:
    return a.detach().contiguous().numpy().view(np.int32)


def _forward_backward(net, x: np.ndarray, top_diff: np.ndarray, fused: bool) -> tuple[torch.Tensor, torch.Tensor]:
    saved = net.fusions
    if not fused:
        net.fusions = {}
    try:
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        y = net.blobs(xt, ["y"])["y"]
        (g,) = torch.autograd.grad(y, xt, torch.from_numpy(top_diff))
    finally:
        net.fusions = saved
    return y, g


@pytest.mark.parametrize("shift", [6.0, 1.5, 0.1])
def test_the_clamp_chain_is_bit_identical_to_its_four_layers(shift: float) -> None:
    net = _net(_chain(shift))
    assert len(net.fusions) == 1
    x = _edges(shift)
    top_diff = np.random.default_rng(0).normal(size=(1, 2, 4, 16)).astype(F32)
    fused = _forward_backward(net, x, top_diff, fused=True)
    plain = _forward_backward(net, x, top_diff, fused=False)
    np.testing.assert_array_equal(_bits(fused[0]), _bits(plain[0]))
    # The sign of a zero gradient differs (hardtanh's backward writes +0 where the ReLUs wrote -0 or +0);
    # nothing downstream can tell: a sum with a nonzero term ignores it, and sign(+-0) steps by 0.
    np.testing.assert_array_equal(fused[1].numpy(), plain[1].numpy())
    assert (fused[1].numpy() != 0).any() and (fused[1].numpy() == 0).any()


def test_a_nan_passes_the_fused_chain_as_it_passes_the_layers() -> None:
    net = _net(_chain())
    x = np.full((1, 1, 4, 16), np.nan, dtype=F32)
    x[0, 0, 0, :3] = [1.0, -1.0, 7.0]
    top_diff = np.ones((1, 2, 4, 16), dtype=F32)
    fused, plain = (_forward_backward(net, x, top_diff, fused=f) for f in (True, False))
    np.testing.assert_array_equal(fused[0].detach().numpy(), plain[0].detach().numpy())  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(fused[1].numpy(), plain[1].numpy())


def test_the_fused_chain_matches_real_caffe_bit_for_bit() -> None:
    x = np.concatenate([_edges(6.0)[np.isfinite(_edges(6.0))].reshape(1, 1, -1)[:, :, :60],
                        np.random.default_rng(1).normal(3.0, 4.0, (1, 1, 4)).astype(F32)], axis=2).reshape(1, 1, 4, 16)
    assert len(_net(_chain(6.0, head=_COPY)).fusions) == 1
    got = run_both(_chain(6.0, head=_COPY), (1, 1, 4, 16), "y", input_values=x)
    np.testing.assert_array_equal(got.engine_out.view(np.int32), got.caffe_out.view(np.int32))
    np.testing.assert_array_equal(got.engine_grad, got.caffe_grad)


@pytest.mark.parametrize("body", [
    _chain(6.0, second_shift=5.0),  # two different shifts: not a clamp
    _chain(6.0, slope=0.1),  # a leaky ReLU
    _chain(6.0, scale=-2.0),  # not s - x
    _chain(0.0),  # clamp to [0, 0]: not matched (the shift must be positive)
    # The first ReLU's output is read again after the run: fusing would hide it.
    _chain(6.0) + 'layer { name: "e" type: "Eltwise" bottom: "y" bottom: "c" top: "e" }',
], ids=["shifts-differ", "leaky", "scale", "zero-shift", "inner-blob-read"])
def test_runs_that_are_not_the_clamp_chain_are_left_as_layers(body: str) -> None:
    assert _net(body).fusions == {}


def test_asking_for_a_blob_inside_the_run_runs_the_layers() -> None:
    net = _net(_chain())
    x = torch.from_numpy(_edges(6.0))
    got = net.blobs(x, ["c", "f", "y"])
    c = torch.relu(torch.cat([x, -x], dim=1))
    torch.testing.assert_close(got["c"], c, rtol=0, atol=0)  # the in-place ReLU's output, not the convolution's
    torch.testing.assert_close(got["f"], torch.relu(6.0 - c), rtol=0, atol=0)
    torch.testing.assert_close(got["y"], net.blobs(x, ["y"])["y"], rtol=0, atol=0)

