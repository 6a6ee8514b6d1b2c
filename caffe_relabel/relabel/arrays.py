"""The array work of the relabelling loop, on the arrays a backend computes with.

:class:`~caffe_relabel.relabel.relabeller.Relabeller` holds the loop's logic (slots,
stopping, continuous batching) once; what it does to whole batches (the
forward/backward, the sign step, clip, distortion, the 8-bit check and the
final images) goes through a :class:`LoopArrays`:

- :class:`NumpyArrays` for any classifier that speaks numpy (pycaffe, which
  computes on the host anyway, and wrappers);
- :class:`caffe_relabel.relabel.arrays_torch.TorchArrays` for the engine: the batch, the
  originals and every per-pixel decision stay as tensors on the engine's
  device, and only per-sample scalars cross to the host, once per step.

Both run the same float32/float64 operations in the same order, so a run
gives the same results through either (see loop_torch's docstring).

Targets go in as host integer codes: a class index, or :data:`TOP` /
:data:`BOTTOM` for "the top-1 / least likely class of this forward" (the
untargeted and least-likely modes resolve their class on the first step).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from caffe_relabel.backends import Classifier
from caffe_relabel.images.preprocess import InputSpec

#: Target codes resolved from the forward they go with.
TOP, BOTTOM = -1, -2

# Columns of :meth:`LoopArrays.measure`'s answer.
LABEL, TARGET, TARGET_PROB, FINITE, NEXT_DISTORTION, UNCHANGED, LOSS, DISTORTION = range(8)


@dataclass(frozen=True)
class Gradient:
    """One forward/backward: probabilities, the targets used, per-sample loss and dL/dX (backend arrays)."""

    probs: Any
    targets: Any
    loss: Any
    grad: Any


class LoopArrays(abc.ABC):
    """Batched array operations of the loop. ``Array`` is numpy's or torch's.

    Images are N x H x W x C float64 in [0, 1] (RGB, or grey), blobs
    N x C x H x W float32 in the network's space, as in
    :mod:`caffe_relabel.images.preprocess`.
    """

    #: numpy, or torch: the module whose functions do the image arithmetic.
    xp: Any

    def __init__(self, classifier: Classifier, spec: InputSpec, step: float, low: np.ndarray, high: np.ndarray,
                 clip: bool) -> None:
        self.classifier, self.spec = classifier, spec
        self.step, self.clip = np.float32(step), clip
        self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)
        self.mean = spec.mean_blob().astype(np.float64)  # a subclass moves it to its device
        self.raw_scale, self.input_scale = float(spec.raw_scale), float(spec.input_scale)
        self.pixel_unit = float(spec.pixel_unit)

    # -- moving data ----------------------------------------------------

    @abc.abstractmethod
    def put(self, a: np.ndarray) -> Any:
        """A host array on the loop's device."""

    @abc.abstractmethod
    def host(self, a: Any) -> np.ndarray:
        """A loop array as a numpy array."""

    @abc.abstractmethod
    def concat(self, parts: Sequence[Any]) -> Any:
        """Arrays joined along the batch axis."""

    @abc.abstractmethod
    def take(self, a: Any, rows: Sequence[int]) -> Any:
        """The rows ``rows`` of a batch, in that order."""

    # -- the network -----------------------------------------------------

    @abc.abstractmethod
    def gradient(self, x: Any, codes: np.ndarray) -> Gradient:
        """Forward and input gradient of the cross-entropy toward each sample's target (code)."""

    @abc.abstractmethod
    def forward(self, x: Any) -> Any:
        """N x K probabilities."""

    # -- the rule --------------------------------------------------------

    @abc.abstractmethod
    def step_batch(self, x: Any, grad: Any, ascend: np.ndarray) -> Any:
        """x - step * sgn(grad), or + where ``ascend`` (untargeted), clipped to the pixel range if asked."""

    @abc.abstractmethod
    def measure(self, x: Any, stepped: Any, x0: Any, g: Gradient, trace: bool) -> np.ndarray:
        """Per-sample scalars on the host, N x 6 (N x 8 with ``trace``), float64:
        label, target, target probability, gradient finite, distortion after the step,
        step moved nothing[, loss, distortion now]."""

    @abc.abstractmethod
    def top(self, probs: Any, targets: np.ndarray) -> np.ndarray:
        """Per-sample (label, probability of the target) on the host, N x 2."""

    # -- images ----------------------------------------------------------
    # One float64 arithmetic for both kinds of array: ``xp``'s functions used
    # here are spelled alike in numpy and torch.

    @abc.abstractmethod
    def _dense(self, a: Any) -> Any:
        """``a`` laid out C-contiguous, as networks and callers take arrays."""

    def _flip(self, a: Any) -> Any:
        return self.xp.flip(a, (1,)) if self.spec.channel_order == "BGR" else a

    def _quantized(self, images: Any) -> Any:
        # to_uint8, batched, back in [0, 1].
        return self.xp.clip(self.xp.round(images * 255.0), 0, 255) / 255.0

    def _blob_images(self, x: Any) -> Any:
        # blob_to_image, batched: float64 N x H x W x C, not clipped.
        chw = (self.xp.asarray(x, dtype=self.xp.float64) / self.input_scale + self.mean) / self.raw_scale
        return self.xp.moveaxis(self._flip(chw), 1, 3)

    def to_blobs(self, images: Any) -> Any:
        """Images to blobs (:func:`~caffe_relabel.images.preprocess.image_to_blob`, batched)."""
        chw = self._flip(self.xp.moveaxis(self.xp.asarray(images, dtype=self.xp.float64), 3, 1))
        return self._dense(self.xp.asarray((chw * self.raw_scale - self.mean) * self.input_scale, dtype=self.xp.float32))

    def uint8_blobs(self, x: Any) -> Any:
        """The blobs of the 8-bit images that ``x`` would be saved as."""
        return self.to_blobs(self._quantized(self._blob_images(x)))

    def results(self, x: Any, x0: Any, originals: Any) -> tuple[Any, np.ndarray]:
        """The relabelled images (the change added to the originals, clipped to [0, 1]) and, on the host,
        N x 2 (distortion, distortion of the 8-bit image)."""
        # The change, added to the user's own image: untouched pixels stay
        # bit-identical rather than picking up float32 round-off.
        images = self._dense(self.xp.clip(originals + (self._blob_images(x) - self._blob_images(x0)), 0.0, 1.0))
        n, pixels = images.shape[0], images.shape[1] * images.shape[2]
        dist = [self.xp.sqrt(self.xp.sum(((a - originals) ** 2).reshape(n, -1), axis=1) / pixels)
                for a in (images, self._quantized(images))]
        return images, self.host(self.xp.stack(dist, axis=1))


class NumpyArrays(LoopArrays):
    """The loop on the host, around any numpy classifier."""

    xp = np

    def put(self, a: Any) -> np.ndarray:
        if type(a).__module__.startswith("torch"):  # a tensor batch handed to a numpy classifier
            return a.detach().cpu().numpy()
        return a

    def host(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def concat(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def take(self, a: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        return a[np.asarray(rows, dtype=np.int64)]

    def gradient(self, x: np.ndarray, codes: np.ndarray) -> Gradient:
        targets = np.asarray(codes, dtype=np.int64)
        if (targets < 0).any():
            # The classifier takes its targets up front: one extra forward, on a sample's first step only.
            probs = self.classifier.forward(x)
            targets = np.where(targets == TOP, probs.argmax(axis=1), np.where(targets == BOTTOM, probs.argmin(axis=1), targets))
        lg = self.classifier.loss_and_gradient(x, targets)
        return Gradient(lg.probs, targets, lg.loss, lg.grad)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.classifier.forward(x)

    def step_batch(self, x: np.ndarray, grad: np.ndarray, ascend: np.ndarray) -> np.ndarray:
        sgn = np.sign(grad)
        if ascend.any():
            sgn[ascend] *= -1
        out = x - self.step * sgn
        if self.clip:
            np.clip(out, self.low, self.high, out=out)
        return out

    def _distortion(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # blob_distortion's float64 arithmetic (mean and channel order cancel out).
        d = (a.astype(np.float64) - b.astype(np.float64)) / self.pixel_unit
        return np.sqrt(np.sum(d.reshape(d.shape[0], -1) ** 2, axis=1) / (d.shape[2] * d.shape[3]))

    def measure(self, x: np.ndarray, stepped: np.ndarray, x0: np.ndarray, g: Gradient, trace: bool) -> np.ndarray:
        n = x.shape[0]
        rows = np.arange(n)
        with np.errstate(invalid="ignore"):  # a NaN gradient's step is NaN; that sample stops as non_finite
            cols = [g.probs.argmax(axis=1), g.targets, g.probs[rows, g.targets],
                    np.isfinite(g.grad.reshape(n, -1)).all(axis=1), self._distortion(stepped, x0),
                    (stepped == x).reshape(n, -1).all(axis=1)]
        if trace:
            cols += [g.loss, self._distortion(x, x0)]
        return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)

    def top(self, probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        rows = np.arange(probs.shape[0])
        return np.stack([probs.argmax(axis=1).astype(np.float64), probs[rows, targets].astype(np.float64)], axis=1)

    def _dense(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a)
