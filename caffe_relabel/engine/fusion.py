"""Runs of layers the engine computes as one, bit for bit as the layers would.

Caffe 1.0 has no Clip layer, so ReLU6 is written ReLU, Power(6 - x), ReLU,
Power(6 - x) (EfficientNet-Lite and the MobileNets converted for it): four
layers, four full passes over the activation forward and four backward, which
were 40% of a faithful EfficientNet-Lite0 step. :class:`ClampChain` computes
the same values in three passes and the same gradient in one.

A fusion joins the graph in :data:`FUSIONS`: a matcher that looks at the layer
definitions from one position and returns how many layers it replaces and
the module that computes their last top. The net runs the fused module only
when no blob inside the run is asked for or read elsewhere
(:func:`find_fusions`, ``CaffeNet._run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from caffe_relabel.netdef.proto.caffe_relabel_caffe_pb2 import LayerParameter


class _ClampChainFunction(torch.autograd.Function):
    """y = s - max(s - max(x, 0), 0) in float32, as the four layers compute it.

    Forward: with c = clamp(x, 0, s), y = fl(s - fl(s - c)) equals the chain for
    every x: x <= 0 gives s - s = 0, x >= s gives s - 0 = s, and between them
    both are fl(s - fl(s - x)) (which is x itself only above s / 2, where the
    subtraction is exact). Backward: the two ReLUs pass the gradient where
    x > 0 and where fl(s - x) > 0, i.e. x < s, and the two Powers multiply it
    by -1 each: hardtanh's backward, g where 0 < x < s, else 0.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.shift = float(shift)
        y = torch.clamp(x, 0.0, ctx.shift)
        # shift - y as one pass each, in place: the same rounding as Caffe's scale -1 then add shift.
        torch.sub(shift, y, out=y)
        torch.sub(shift, y, out=y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return torch.ops.aten.hardtanh_backward(grad, x, 0.0, ctx.shift), None


class ClampChain(nn.Module):
    """ReLU, Power(shift - x), ReLU, Power(shift - x) as one module (a ReLU6 when shift is 6)."""

    layout_agnostic = True

    def __init__(self, shift: float, device: torch.device) -> None:
        super().__init__()
        self.shift = shift
        # A 0-dim tensor, so that ``shift - y`` runs as one kernel writing into y.
        self.register_buffer("shift_tensor", torch.tensor(shift, dtype=torch.float32, device=device),
                             persistent=False)

    def extra_repr(self) -> str:
        return f"{self.shift} - max({self.shift} - max(x, 0), 0)"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if x.dtype != torch.float32:  # autocast or a float64 caller: the layers' own arithmetic
            shift = self.shift
            return (shift - torch.relu(shift - torch.relu(x)),)
        return (_ClampChainFunction.apply(x, self.shift_tensor),)


def _is_plain_relu(layer: LayerParameter) -> bool:
    return layer.type == "ReLU" and float(layer.relu_param.negative_slope) == 0.0


def _flip_shift(layer: LayerParameter) -> Optional[float]:
    """The shift s of a Power layer computing s - x (power 1, scale -1), or None."""
    if layer.type != "Power":
        return None
    p = layer.power_param
    shift = float(np.float32(p.shift))
    if float(np.float32(p.power)) != 1.0 or float(np.float32(p.scale)) != -1.0 or not 0.0 < shift < np.inf:
        return None
    return shift


def _chained(layers: Sequence[LayerParameter]) -> bool:
    """Each layer has one bottom, one top, and reads the previous layer's top."""
    if any(len(layer.bottom) != 1 or len(layer.top) != 1 for layer in layers):
        return False
    return all(b.bottom[0] == a.top[0] for a, b in zip(layers, layers[1:]))


def match_clamp_chain(layers: Sequence[LayerParameter], start: int, device: torch.device
                      ) -> Optional[tuple[int, nn.Module]]:
    run = list(layers[start:start + 4])
    if len(run) < 4 or not _chained(run) or not (_is_plain_relu(run[0]) and _is_plain_relu(run[2])):
        return None
    shifts = _flip_shift(run[1]), _flip_shift(run[3])
    if shifts[0] is None or shifts[0] != shifts[1]:
        return None
    return 4, ClampChain(shifts[0], device)


#: Matchers tried at each layer, in order; a new fusion joins here.
FUSIONS: tuple[Callable[[Sequence[LayerParameter], int, torch.device], Optional[tuple[int, nn.Module]]], ...] = (
    match_clamp_chain,
)


@dataclass(frozen=True)
class Fusion:
    """Layers ``start`` .. ``start + span - 1`` computed by ``module``, from the first bottom to the last top."""

    start: int
    span: int
    module: nn.Module
    #: Blobs written inside the run (not its last top): asking for one runs the layers one by one.
    inner: frozenset[str]


def find_fusions(layers: Sequence[LayerParameter], device: torch.device) -> list[Fusion]:
    """The runs of ``layers`` a matcher fuses, not overlapping, whose inner blobs nothing outside reads."""
    found: list[Fusion] = []
    i = 0
    while i < len(layers):
        for match in FUSIONS:
            hit = match(layers, i, device)
            if hit is not None and _private(layers, i, hit[0]):
                span, module = hit
                last_top = layers[i + span - 1].top[0]
                inner = frozenset(t for layer in layers[i:i + span - 1] for t in layer.top) - {last_top}
                found.append(Fusion(i, span, module, inner))
                i += span
                break
        else:
            i += 1
    return found


def _private(layers: Sequence[LayerParameter], start: int, span: int) -> bool:
    """No layer after the run reads a blob written inside it but its last top (in-place layers rewrite names)."""
    written = {t for layer in layers[start:start + span - 1] for t in layer.top} - {layers[start + span - 1].top[0]}
    return not any(b in written for layer in layers[start + span:] for b in layer.bottom)
