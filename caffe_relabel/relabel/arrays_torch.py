"""The relabelling loop's array work as torch tensors on the engine's device.

Same operations as :class:`~caffe_relabel.relabel.arrays.NumpyArrays`, in the
same precision and order, so results match the numpy loop around the same
engine: the gradient is the engine backend's own (logits with autograd, the
seed dL/dlogits = p - onehot, the net's numerics context; see
backends/engine.py ``loss_and_gradient``), the step is float32, distortions
and images float64. Sums of float64 distortions may differ from numpy's in
the last bit (another summation order); nothing else does.

Per step one small host transfer carries every sample's scalars (label,
target, target probability, flags, distortions); images cross to the host
only when a caller asks for numpy results.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from caffe_relabel.relabel.arrays import BOTTOM, TOP, Gradient, LoopArrays


class TorchArrays(LoopArrays):
    """The loop on an :class:`~caffe_relabel.backends.engine.EngineClassifier`'s device."""

    xp = torch

    def __init__(self, classifier: Any, spec: Any, step: float, low: np.ndarray, high: np.ndarray, clip: bool) -> None:
        super().__init__(classifier, spec, step, low, high, clip)
        self.net = classifier.net
        self.device = self.net.device
        self._run = classifier._run  # the module, or its torch.compile'd form
        self.low_t, self.high_t = self.put(self.low), self.put(self.high)
        self.mean = self.put(self.mean)
        self._tiny = float(np.finfo(np.float32).tiny)

    def put(self, a: Any) -> torch.Tensor:
        if isinstance(a, torch.Tensor):
            return a.to(self.device)
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def host(self, a: torch.Tensor) -> np.ndarray:
        return a.detach().cpu().numpy()

    def concat(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        return parts[0] if len(parts) == 1 else torch.cat(list(parts))

    def take(self, a: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        return a[torch.as_tensor(np.asarray(rows, dtype=np.int64), device=a.device)]

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            probs = self.net.probabilities(logits)
        return probs.reshape(probs.shape[0], -1)

    def gradient(self, x: torch.Tensor, codes: np.ndarray) -> Gradient:
        self.classifier._check_batch(x.shape[0])  # Caffe's size limits, as the backend checks them
        xt = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self._run(xt)
        probs = self._probs(logits.detach())
        t = torch.as_tensor(np.asarray(codes, dtype=np.int64), device=probs.device)
        if (np.asarray(codes) < 0).any():
            t = torch.where(t == TOP, probs.argmax(dim=1), torch.where(t == BOTTOM, probs.argmin(dim=1), t))
        rows = torch.arange(probs.shape[0], device=probs.device)
        picked = probs[rows, t]
        # As softmax_cross_entropy_grad: Caffe clamps at FLT_MIN before the log; float64 for the reported loss.
        loss = -torch.log(torch.clamp(picked.double(), min=self._tiny))
        dlogits = probs.clone()
        dlogits[rows, t] -= 1.0
        with self.net.numeric_context():
            (grad,) = torch.autograd.grad(logits, xt, dlogits.reshape(logits.shape), allow_unused=True)
        if grad is None:  # logits that ignore the input (e.g. a constant Power layer) have no gradient path
            grad = torch.zeros_like(x)
        return Gradient(probs, t, loss, grad.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.classifier._check_batch(x.shape[0])
        with torch.inference_mode():
            return self._probs(self._run(x))

    def step_batch(self, x: torch.Tensor, grad: torch.Tensor, ascend: np.ndarray) -> torch.Tensor:
        sgn = torch.sign(grad)
        if ascend.any():
            sgn[torch.as_tensor(ascend, device=sgn.device)] *= -1
        out = x - float(self.step) * sgn
        if self.clip:
            out = torch.clamp(out, min=self.low_t, max=self.high_t)
        return out

    def _distortion(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d = (a.double() - b.double()) / self.pixel_unit
        return torch.sqrt(torch.sum(d.reshape(d.shape[0], -1) ** 2, dim=1) / (d.shape[2] * d.shape[3]))

    def measure(self, x: torch.Tensor, stepped: torch.Tensor, x0: torch.Tensor, g: Gradient, trace: bool) -> np.ndarray:
        n = x.shape[0]
        rows = torch.arange(n, device=x.device)
        cols = [g.probs.argmax(dim=1), g.targets, g.probs[rows, g.targets],
                torch.isfinite(g.grad.reshape(n, -1)).all(dim=1), self._distortion(stepped, x0),
                (stepped == x).reshape(n, -1).all(dim=1)]
        if trace:
            cols += [g.loss, self._distortion(x, x0)]
        # One transfer (one device sync) for every sample's scalars.
        return torch.stack([c.double() for c in cols], dim=1).cpu().numpy()

    def top(self, probs: torch.Tensor, targets: np.ndarray) -> np.ndarray:
        rows = torch.arange(probs.shape[0], device=probs.device)
        t = torch.as_tensor(np.asarray(targets, dtype=np.int64), device=probs.device)
        return torch.stack([probs.argmax(dim=1).double(), probs[rows, t].double()], dim=1).cpu().numpy()

    def _dense(self, a: torch.Tensor) -> torch.Tensor:
        return a.contiguous()
