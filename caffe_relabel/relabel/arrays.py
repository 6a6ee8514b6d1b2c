"""The array work of the relabelling loop, on the arrays a backend computes with.

:class:`~caffe_relabel.relabel.relabeller.Relabeller` holds the loop's logic (slots,
stopping, continuous batching) once; what it does to whole batches (the
forward/backward, the sign step, clip, distortion, the 8-bit check and the
final images) goes through a :class:`LoopArrays`, written once over ``xp``
(numpy or torch, whose functions used here are spelled alike):

- :class:`NumpyArrays` for any classifier that speaks numpy (pycaffe, which
  computes on the host anyway, and wrappers);
- :class:`caffe_relabel.relabel.arrays_torch.TorchArrays` for a
  :class:`~caffe_relabel.backends.base.TensorClassifier` (the engine): the batch, the
  originals and every per-pixel decision stay as tensors on its device, and
  only per-sample scalars cross to the host, once per step.

The image <-> blob arithmetic, the distortion and the cross-entropy are the
library's own (:mod:`caffe_relabel.images.preprocess`,
:mod:`caffe_relabel.images.distortion`, :mod:`caffe_relabel.backends.base`), run
on ``xp``, so both kinds of array give the same results.

Targets go in as host integer codes (:attr:`Goal.code <caffe_relabel.relabel.goals.Goal.code>`):
a class index, or :data:`~caffe_relabel.relabel.goals.TOP` /
:data:`~caffe_relabel.relabel.goals.BOTTOM` for "the top-1 / least likely class of
this forward", resolved on a sample's first step.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from caffe_relabel.backends import Classifier
from caffe_relabel.images.distortion import blob_distortion, image_distortion
from caffe_relabel.images.preprocess import InputSpec, blobs_to_images, images_to_blobs, quantize
from caffe_relabel.relabel.goals import BOTTOM, TOP

# Columns of :meth:`LoopArrays.measure`'s answer.
LABEL, LABEL_PROB, TARGET, TARGET_PROB, FINITE, NEXT_DISTORTION, UNCHANGED, LOSS, DISTORTION = range(9)


@dataclass(frozen=True)
class Gradient:
    """One forward/backward: probabilities, the targets used, per-sample loss and dL/dX (loop arrays)."""

    probs: Any
    targets: Any
    loss: Any
    grad: Any


class LoopArrays(abc.ABC):
    """Batched array operations of the loop, over ``xp``'s arrays.

    Images are N x H x W x C float64 in [0, 1] (RGB, or grey), blobs
    N x C x H x W float32 in the network's space, as in
    :mod:`caffe_relabel.images.preprocess`.
    """

    #: numpy, or torch: the module whose functions do the arithmetic.
    xp: Any

    def __init__(self, classifier: Classifier, spec: InputSpec, step: float, low: np.ndarray, high: np.ndarray,
                 clip: bool) -> None:
        self.classifier, self.spec = classifier, spec
        self.step, self.clip = float(np.float32(step)), clip
        self.low, self.high = self.put(np.asarray(low, np.float32)), self.put(np.asarray(high, np.float32))
        self.mean = self.put(np.ascontiguousarray(spec.mean_blob(), dtype=np.float64))

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

    def take(self, a: Any, rows: Sequence[int]) -> Any:
        """The rows ``rows`` of a batch, in that order."""
        return a[self.put(np.asarray(rows, dtype=np.int64))]

    @abc.abstractmethod
    def _dense(self, a: Any) -> Any:
        """``a`` laid out C-contiguous, as networks and callers take arrays."""

    # -- the network -----------------------------------------------------

    @abc.abstractmethod
    def gradient(self, x: Any, codes: np.ndarray) -> Gradient:
        """Forward and input gradient of the cross-entropy toward each sample's target (code)."""

    @abc.abstractmethod
    def forward(self, x: Any) -> Any:
        """N x K probabilities."""

    # -- the rule --------------------------------------------------------

    def step_batch(self, x: Any, grad: Any, away: np.ndarray) -> Any:
        """x - step * sgn(grad), or + where ``away`` (the goal moves away from its class), clipped to the
        pixel range if asked."""
        sgn = self.xp.sign(grad)
        if away.any():
            sgn[self.put(away)] *= -1
        out = x - self.step * sgn
        return self.xp.clip(out, self.low, self.high) if self.clip else out

    def measure(self, x: Any, stepped: Any, x0: Any, g: Gradient, trace: bool) -> np.ndarray:
        """Per-sample scalars on the host in one transfer, N x 7 (N x 9 with ``trace``), float64:
        label, its probability, target, target probability, gradient finite, distortion after the step,
        step moved nothing[, loss, distortion now]."""
        xp, n = self.xp, x.shape[0]
        rows = self.put(np.arange(n))
        unit = self.spec.pixel_unit
        with np.errstate(invalid="ignore"):  # a NaN gradient's step is NaN; that sample stops as non_finite
            cols = [xp.argmax(g.probs, 1), xp.amax(g.probs, 1), g.targets, g.probs[rows, g.targets],
                    xp.all(xp.isfinite(g.grad.reshape(n, -1)), 1), blob_distortion(stepped, x0, unit, xp),
                    xp.all((stepped == x).reshape(n, -1), 1)]
            if trace:
                cols += [g.loss, blob_distortion(x, x0, unit, xp)]
            return self.host(xp.stack([xp.asarray(c, dtype=xp.float64) for c in cols], 1))

    def top(self, probs: Any) -> np.ndarray:
        """Per-sample (label, its probability) on the host, N x 2."""
        xp = self.xp
        return self.host(xp.stack([xp.asarray(xp.argmax(probs, 1), dtype=xp.float64),
                                   xp.asarray(xp.amax(probs, 1), dtype=xp.float64)], 1))

    # -- images ----------------------------------------------------------

    def to_blobs(self, images: Any) -> Any:
        """Images to blobs (:func:`~caffe_relabel.images.preprocess.images_to_blobs`)."""
        return self._dense(images_to_blobs(images, self.spec, self.xp, self.mean))

    def uint8_images(self, images: Any) -> Any:
        """Images on the 8-bit grid, as a saved file holds them."""
        return quantize(images, self.xp)

    def uint8_blobs(self, x: Any) -> Any:
        """The blobs of the 8-bit images that ``x`` would be saved as."""
        return self.to_blobs(self.uint8_images(blobs_to_images(x, self.spec, self.xp, self.mean)))

    def results(self, x: Any, x0: Any, originals: Any) -> tuple[Any, np.ndarray]:
        """The relabelled images (the change added to the originals, clipped to [0, 1]) and, on the host,
        N x 2 (distortion, distortion of the 8-bit image)."""
        xp = self.xp
        # The change, added to the user's own image: untouched pixels stay
        # bit-identical rather than picking up float32 round-off.
        change = blobs_to_images(x, self.spec, xp, self.mean) - blobs_to_images(x0, self.spec, xp, self.mean)
        images = self._dense(xp.clip(originals + change, 0.0, 1.0))
        dist = [image_distortion(a, originals, xp) for a in (images, self.uint8_images(images))]
        return images, self.host(xp.stack(dist, 1))


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

    def _dense(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a)
