"""The one interface every classifier backend meets.

A backend works in the network's own input space (the blob the data layer
receives, e.g. BGR, 0..255, mean-subtracted, N x C x H x W float32); turning
images into that space is :mod:`caffe_relabel.images.preprocess`'s job.
"""

from __future__ import annotations

import abc
import difflib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from caffe_relabel.errors import BackendUnavailableError, CaffeRelabelError
from caffe_relabel.netdef.netcheck import NetShapes, check_batch


@dataclass(frozen=True)
class LossGradient:
    """One forward and backward pass over a batch.

    probs: N x K class probabilities; loss: N per-sample softmax
    cross-entropy toward the targets; grad: dL/dX, same shape as the input.
    Each sample's loss and gradient are its own (the batch loss is a sum,
    not a mean), so results do not depend on the batch size, up to BLAS
    rounding: on some CPUs (OpenBLAS's Zen kernel, MKL on AMD) the GEMMs
    round a sample's row by its place in the batch, as Caffe's do.
    """

    probs: np.ndarray
    loss: np.ndarray
    grad: np.ndarray


class Classifier(abc.ABC):
    """A Caffe image classifier seen from its input blob."""

    #: Short name of the implementation ("pycaffe", "engine").
    backend_name: str = "abstract"
    # Set by each implementation's constructor.
    _input_shape: tuple[int, int, int]
    _num_classes: int
    _net_shapes: NetShapes  # the static check's result, at the declared batch
    _source: str  # the definition's path, for messages

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """C, H, W of one input sample."""
        return self._input_shape

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return self._num_classes

    @property
    def module(self) -> Any:
        """The network as a torch.nn.Module, for backends that run on torch (engine)."""
        raise BackendUnavailableError(
            f"the {self.backend_name} backend has no torch module; load the model with backend='engine' for one"
        )

    @property
    @abc.abstractmethod
    def blob_names(self) -> list[str]:
        """Names of the intermediate blobs :meth:`blob` can return."""

    @abc.abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """N x K class probabilities for an N x C x H x W input."""

    @abc.abstractmethod
    def loss_and_gradient(self, x: np.ndarray, targets: Sequence[int]) -> LossGradient:
        """Probabilities, per-sample cross-entropy toward ``targets`` and dL/dX."""

    @abc.abstractmethod
    def blob(self, x: np.ndarray, name: str) -> np.ndarray:
        """The named intermediate blob after a forward pass over ``x``."""

    # Shared argument checks, so every backend rejects bad input the same way.

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape):
            raise CaffeRelabelError(
                f"expected input of shape N x {' x '.join(map(str, self.input_shape))}, got {list(x.shape)}"
            )
        if x.shape[0] == 0:
            raise CaffeRelabelError("expected at least one input sample, got an empty batch")
        self._check_batch(x.shape[0])
        if not np.issubdtype(x.dtype, np.floating):
            raise CaffeRelabelError(f"expected a floating-point input blob, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        # NaN would come out as NaN probabilities with an arbitrary top label.
        if not np.isfinite(x).all():
            raise CaffeRelabelError("expected finite input values, got NaN or infinite ones")
        return x

    def _check_batch(self, n: int) -> None:
        # Before any copy of x and before the backend reshapes: Caffe aborts on a blob over
        # INT_MAX values, and either backend would allocate whatever the batch asks for.
        ok = self.__dict__.setdefault("_batches_checked", set())
        # A subclass not built from a checked definition (a caller's own classifier) has no shapes to check.
        if n not in ok and getattr(self, "_net_shapes", None) is not None:
            check_batch(self._net_shapes, n, self._source)
            ok.add(n)

    def _check_targets(self, targets: Sequence[int], n: int) -> np.ndarray:
        t = np.asarray(targets).reshape(-1)
        if t.size == 1 and n > 1:
            t = np.repeat(t, n)
        if t.size != n:
            raise CaffeRelabelError(f"expected {n} targets (one per sample), got {t.size}")
        if not np.issubdtype(t.dtype, np.integer):
            raise CaffeRelabelError(f"expected integer class indices as targets, got dtype {t.dtype}")
        bad = t[(t < 0) | (t >= self.num_classes)]
        if bad.size:
            raise CaffeRelabelError(f"expected target classes in 0..{self.num_classes - 1}, got {int(bad[0])}")
        return t.astype(np.int64)

    def _check_blob_name(self, name: str) -> None:
        if name not in self.blob_names:
            close = difflib.get_close_matches(name, self.blob_names, n=5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise CaffeRelabelError(f"no blob named {name!r} in this network{hint}")


def softmax_cross_entropy_grad(probs: Any, targets: Any) -> tuple[Any, Any]:
    """Per-sample loss -log p[target] and dL/dlogits = p - onehot, as Caffe's SoftmaxWithLoss.

    ``probs`` and ``targets``: numpy arrays, or torch tensors on one device (the relabelling loop's
    on the engine's device); the answer is of the same kind.
    """
    on_torch = not isinstance(probs, np.ndarray)
    xp: Any = np
    if on_torch:
        import torch as xp

    rows = xp.arange(probs.shape[0])
    if on_torch:
        rows = rows.to(probs.device)
    picked = probs[rows, targets]
    # Caffe's SoftmaxWithLoss clamps at FLT_MIN before the log.
    # (float64 log: the loss is reported, never fed back, so keep its digits).
    loss = -xp.log(xp.clip(xp.asarray(picked, dtype=xp.float64), float(np.finfo(np.float32).tiny), None))
    dlogits = probs.clone() if on_torch else probs.copy()
    dlogits[rows, targets] -= 1.0
    return loss, dlogits


class TensorClassifier(Classifier):
    """A classifier that computes with torch tensors on a device (the engine).

    The relabelling loop keeps its batches on :attr:`torch_device` and calls these
    directly, so images cross to the host only when a caller asks for numpy.
    """

    @property
    @abc.abstractmethod
    def torch_device(self) -> Any:
        """The torch device the network runs on."""

    @abc.abstractmethod
    def logits(self, x: Any) -> Any:
        """Logits of an N x C x H x W tensor on :attr:`torch_device` (differentiable)."""

    @abc.abstractmethod
    def probabilities(self, logits: Any) -> Any:
        """N x K probabilities of :meth:`logits`' answer (the net's own Softmax), not differentiable."""

    @abc.abstractmethod
    def input_gradient(self, logits: Any, x: Any, seed: Any) -> Any:
        """dL/dx for dL/dlogits = ``seed``, in the net's numerics (zeros where the logits ignore x)."""

    def check_batch(self, n: int) -> None:
        """Refuse a batch of ``n`` samples that Caffe could not hold, before anything is allocated."""
        self._check_batch(n)
