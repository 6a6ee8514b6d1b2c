"""The engine backend: a Caffe network run by caffe_relabel.engine on PyTorch.

Same contract as the pycaffe backend: the input gradient is backpropagated
from the logits with dL/dlogits = p - onehot (p from the net's own Softmax),
and each sample's loss is its own (the batch loss is a sum), so results do
not depend on the batch size. Only the input gradient is computed: every
parameter has requires_grad False, which is most of why this is faster than
pycaffe, whose backward also computes every weight gradient.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from caffe_relabel.errors import BackendUnavailableError, ModelFormatError
from caffe_relabel.backends.base import LossGradient, TensorClassifier, softmax_cross_entropy_grad

try:
    import torch
except ImportError as e:  # torch is the optional `engine` extra
    raise BackendUnavailableError(f"the engine backend needs torch ({e}); install caffe-relabel[engine]") from None

from caffe_relabel.engine import CaffeNet, load_net
from caffe_relabel.engine.spec import count


class EngineClassifier(TensorClassifier):
    """A classifier run by the Caffe-faithful PyTorch engine.

    device: 'cpu', 'cuda', 'cuda:N' (or 'gpu:N'); numerics: 'faithful', 'fast' or
    'fast-bf16' (see caffe_relabel.engine.device);
    compile: run the network through torch.compile (first calls are slow).
    """

    backend_name = "engine"

    def __init__(self, prototxt: "str | os.PathLike[str]", weights: "Optional[str | os.PathLike[str]]" = None,
                 device: str = "cpu", numerics: str = "faithful", compile: bool = False) -> None:
        self.prototxt = prototxt
        self.weights = weights
        self.device = device
        self.numerics = numerics
        self.net: CaffeNet = load_net(prototxt, weights, device=device, numerics=numerics)
        self._run = torch.compile(self.net) if compile else self.net
        shape = self.net.input_shape
        if len(shape) != 4:
            raise ModelFormatError(f"{prototxt}: expected a N x C x H x W input blob, got shape {list(shape)}")
        self._input_shape: tuple[int, int, int] = (shape[1], shape[2], shape[3])
        self._num_classes = count(self.net.blob_shapes[self.net.scores_name], 1)
        self._net_shapes, self._source = self.net.net_shapes, str(prototxt)

    @property
    def module(self) -> CaffeNet:
        """The network as a torch.nn.Module; ``module(x)`` returns the logits."""
        return self.net

    @property
    def blob_names(self) -> list[str]:
        return self.net.blob_names

    @property
    def torch_device(self) -> torch.device:
        return self.net.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            probs = self.net.probabilities(logits)
        return probs.reshape(probs.shape[0], -1)

    def input_gradient(self, logits: torch.Tensor, x: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
        with self.net.numeric_context():
            (grad,) = torch.autograd.grad(logits, x, seed.reshape(logits.shape), allow_unused=True)
        # A net whose logits ignore the input (e.g. a constant Power layer) has no gradient path.
        return torch.zeros_like(x) if grad is None else grad.contiguous()

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self._check_input(x)).to(self.net.device)

    def forward(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.probabilities(self.logits(self._tensor(x))).cpu().numpy()

    def loss_and_gradient(self, x: np.ndarray, targets: Sequence[int]) -> LossGradient:
        xt = self._tensor(x).requires_grad_(True)
        t = self._check_targets(targets, xt.shape[0])
        with torch.enable_grad():
            logits = self.logits(xt)
        probs = self.probabilities(logits.detach()).cpu().numpy()
        loss, dlogits = softmax_cross_entropy_grad(probs, t)
        grad = self.input_gradient(logits, xt, torch.from_numpy(dlogits).to(logits.device))
        return LossGradient(probs=probs, loss=loss, grad=grad.cpu().numpy())

    def blob(self, x: np.ndarray, name: str) -> np.ndarray:
        self._check_blob_name(name)
        with torch.inference_mode():
            return self.net.blobs(self._tensor(x), [name])[name].float().cpu().numpy().copy()
