"""The relabelling loop's array work as torch tensors on a :class:`TensorClassifier`'s device.

The arithmetic is :class:`~caffe_relabel.relabel.arrays.LoopArrays`' own, run on
torch: the same float32 step and float64 images and distortions as the numpy
loop, so results match it around the same engine. The gradient is the
classifier's own (logits with autograd, the seed dL/dlogits = p - onehot of
:func:`~caffe_relabel.backends.base.softmax_cross_entropy_grad`, the net's
numerics). Sums of float64 distortions may differ from numpy's in the last
bit (another summation order); nothing else does.

Per step one small host transfer carries every sample's scalars (label,
target, probabilities, flags, distortions); images cross to the host only
when a caller asks for numpy results.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from caffe_relabel.backends.base import TensorClassifier, softmax_cross_entropy_grad
from caffe_relabel.images.preprocess import InputSpec
from caffe_relabel.relabel.arrays import Gradient, LoopArrays
from caffe_relabel.relabel.goals import BOTTOM, TOP


class TorchArrays(LoopArrays):
    """The loop on a :class:`~caffe_relabel.backends.base.TensorClassifier`'s device."""

    xp = torch

    def __init__(self, classifier: TensorClassifier, spec: InputSpec, step: float, low: np.ndarray,
                 high: np.ndarray, clip: bool) -> None:
        self.device = classifier.torch_device  # before the base class puts its constants there
        super().__init__(classifier, spec, step, low, high, clip)
        self.net: TensorClassifier = classifier

    def put(self, a: Any) -> torch.Tensor:
        if isinstance(a, torch.Tensor):
            return a.to(self.device)
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def host(self, a: torch.Tensor) -> np.ndarray:
        return a.detach().cpu().numpy()

    def concat(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        return parts[0] if len(parts) == 1 else torch.cat(list(parts))

    def gradient(self, x: torch.Tensor, codes: np.ndarray) -> Gradient:
        self.net.check_batch(x.shape[0])  # Caffe's size limits, as the backend checks them
        xt = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.net.logits(xt)
        probs = self.net.probabilities(logits.detach())
        t = self.put(np.asarray(codes, dtype=np.int64))
        if (np.asarray(codes) < 0).any():
            t = torch.where(t == TOP, probs.argmax(dim=1), torch.where(t == BOTTOM, probs.argmin(dim=1), t))
        loss, dlogits = softmax_cross_entropy_grad(probs, t)
        return Gradient(probs, t, loss, self.net.input_gradient(logits, xt, dlogits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net.check_batch(x.shape[0])
        with torch.inference_mode():
            return self.net.probabilities(self.net.logits(x))

    def _dense(self, a: torch.Tensor) -> torch.Tensor:
        return a.contiguous()
