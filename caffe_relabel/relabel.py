"""The paper's relabelling: sign-gradient steps toward a target label.

In the network's own input space (BGR, 0..255, mean-subtracted),

    X_{i+1} = X_i - alpha * sgn(dL/dX_i) / 255,    L = softmax cross-entropy to the target,

with alpha = 50 in the paper, so each step moves every pixel channel by
50/255 of a grey level, or not at all where the gradient is exactly zero.
On a net with another input transform (``InputSpec.raw_scale``,
``input_scale``) the step is alpha/255 of ``InputSpec.grey_level`` blob
units: still 50/255 of a grey level, and the distortion is still measured
on [0, 1] pixels.
Each sample stops on its own: with success as soon as its top-1 label is
the target; as a failure when the next step would take its distortion past
the cap, after ``max_iter`` steps, or on a non-finite gradient. With
``confidence`` > 0 success also needs the target's probability to reach it
(the paper's Figure 2 shows confident relabellings; it does not say when it
stopped). Finished
samples leave the batch and waiting ones take their slots (continuous
batching), so the cost follows the sum of the iterations, not the maximum.

Defined edge cases:
- a target equal to the current label succeeds at once, with 0 iterations;
- pixels are kept between black and white (``clip=True``): a step that would leave
  the range stops at the bound, so a saturated pixel may not move at all;
- a zero gradient element moves nothing (sgn(0) = 0); a sample whose whole
  gradient is zero cannot move and stops as ``stalled``;
- a NaN or infinite gradient stops the sample as ``non_finite`` (failed),
  returning the last finite image;
- NaN or infinite input is refused, never relabelled: a pixel in an image
  (ImageFormatError), a value in a blob handed to a backend
  (CaffeRelabelError), a weight in a caffemodel (ModelFormatError, when the
  model loads).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from .backends import Classifier
from .distortion import blob_distortion, distortion
from .errors import ArgumentError
from .model import Model, load_model
from .preprocess import ImageLike, InputSpec, blob_to_image, fit, image_to_blob, load_image, to_uint8
from .settings import RelabelSettings


class StopReason(str, Enum):
    """Why a sample stopped. A str, so stores and JSON hold the readable value ("target", ...)."""

    TARGET = "target"
    DISTORTION = "distortion"
    MAX_ITER = "max_iter"
    NON_FINITE = "non_finite"
    STALLED = "stalled"

    def __str__(self) -> str:  # f-strings and print show "target", not "StopReason.TARGET"
        return self.value


@dataclass
class Trace:
    """Per-iteration record (iteration 0 is the original image)."""

    label: list[int] = field(default_factory=list)
    target_prob: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    distortion: list[float] = field(default_factory=list)


@dataclass
class RelabelResult:
    """One relabelling: what went in, what came out, and how."""

    target: int
    original_label: int
    original_prob: float
    final_label: int
    final_prob: float
    target_prob: float
    success: bool
    stop: StopReason
    iterations: int
    distortion: float
    image: np.ndarray  # H x W x C float64 in [0, 1], the relabelled image
    original: np.ndarray  # the input at network size, same layout
    probs: np.ndarray  # final class probabilities
    original_probs: np.ndarray
    uint8_label: int  # what the 8-bit (saved) image is classified as
    uint8_target_prob: float
    uint8_distortion: float
    source: Optional[str] = None
    trace: Optional[Trace] = None
    confidence: float = 0.0  # the target probability success asked for (0: top-1 is enough)

    @property
    def image_uint8(self) -> np.ndarray:
        """The relabelled image as the 8-bit pixels a PNG would hold."""
        return to_uint8(self.image)

    @property
    def uint8_success(self) -> bool:
        """Whether the saved 8-bit image still carries the target: its top-1, with ``confidence`` if asked."""
        return self.uint8_label == self.target and self.uint8_target_prob >= self.confidence

    def summary(self) -> dict[str, Any]:
        """The scalar fields, JSON-ready."""
        return {
            "source": self.source,
            "target": self.target,
            "original_label": self.original_label,
            "original_prob": self.original_prob,
            "final_label": self.final_label,
            "final_prob": self.final_prob,
            "target_prob": self.target_prob,
            "success": self.success,
            "stop": self.stop.value,
            "iterations": self.iterations,
            "distortion": self.distortion,
            "uint8_label": self.uint8_label,
            "uint8_target_prob": self.uint8_target_prob,
            "uint8_success": self.uint8_success,
            "uint8_distortion": self.uint8_distortion,
        }


@dataclass
class _Slot:
    index: int
    source: Optional[str]
    original: np.ndarray
    x0: np.ndarray
    x: np.ndarray
    target: int
    iterations: int = 0
    original_label: int = -1
    original_probs: Optional[np.ndarray] = None
    trace: Optional[Trace] = None


class Relabeller:
    """Relabel images on one network with the paper's sign-gradient rule.

    ``net``: a zoo model name ("bvlc_googlenet", "digits", ...), a
    :class:`~caffe_relabel.model.Model`, or a backend
    (:class:`~caffe_relabel.backends.Classifier`) together with
    ``input_spec`` saying what input it expects.
    """

    def __init__(
        self,
        net: Union[str, Model, Classifier],
        settings: Optional[RelabelSettings] = None,
        *,
        trace: bool = False,
        backend: str = "auto",
        device: str = "cpu",
        input_spec: Optional[InputSpec] = None,
        **options: Any,
    ) -> None:
        """``settings`` (default :class:`RelabelSettings`'s), with any of its fields overridden by keyword:
        ``Relabeller(net, alpha=30, max_distortion=None)``."""
        if settings is None:
            settings = RelabelSettings()
        elif not isinstance(settings, RelabelSettings):
            raise ArgumentError(f"expected settings to be a RelabelSettings, got {type(settings).__name__}")
        self.settings = settings.replace(**options) if options else settings
        if not isinstance(trace, (bool, np.bool_)):
            raise ArgumentError(f"expected trace to be True or False, got {type(trace).__name__} {trace!r}")
        self.trace = bool(trace)
        if isinstance(net, Classifier):
            if input_spec is None:
                raise ArgumentError("a backend needs input_spec=InputSpec(size=..., mean=..., channel_order=...)")
            net = Model(net, input_spec)
        elif not isinstance(net, (str, Model)):
            raise ArgumentError(f"expected net to be a model name, a Model or a Classifier, got {type(net).__name__}")
        self.model = net if isinstance(net, Model) else load_model(net, backend=backend, device=device)
        spec = self.model.input
        # Blob bounds of black and white pixels, and a step of alpha/255 of a grey level,
        # whatever the transform (raw scale, mean, input scale).
        low, high = spec.blob_bounds()
        self._low = low.astype(np.float32)
        self._high = high.astype(np.float32)
        self._step = np.float32(self.settings.alpha / 255.0 * spec.grey_level)

    # -- public API ------------------------------------------------------

    def run(self, img: ImageLike, target: "int | str") -> RelabelResult:
        """Relabel one image (path or array) to ``target`` (index, WordNet id or name)."""
        return self.run_batch([img], [target])[0]

    def run_batch(
        self,
        images: Sequence[ImageLike],
        targets: Sequence["int | str"],
        on_iteration: Optional[Callable[[int], None]] = None,
    ) -> list[RelabelResult]:
        """Relabel ``images[i]`` to ``targets[i]`` for every i, in batches; results in order."""
        if len(images) != len(targets):
            raise ArgumentError(f"expected one target per image, got {len(images)} images and {len(targets)} targets")
        out: list[Optional[RelabelResult]] = [None] * len(images)
        for i, result in self.iter_results(zip(images, targets), on_iteration=on_iteration):
            out[i] = result
        return out  # type: ignore[return-value]

    def iter_results(
        self,
        pairs: Iterable[tuple[ImageLike, "int | str"]],
        on_iteration: Optional[Callable[[int], None]] = None,
    ) -> Iterator[tuple[int, RelabelResult]]:
        """Relabel (image, target) pairs lazily; yields (index, result) as each finishes.

        Images are loaded only when a batch slot frees up, so a sweep over
        millions of pairs holds at most ``batch_size`` of them in memory.
        ``on_iteration(n)`` is told after each batched forward/backward how many samples it held.
        """
        pending = enumerate(pairs)
        active: list[_Slot] = []
        done: deque[tuple[int, RelabelResult]] = deque()
        exhausted = False
        while True:
            while not exhausted and len(active) < self.settings.batch_size:
                try:
                    index, (img, target) = next(pending)
                except StopIteration:
                    exhausted = True
                    break
                active.append(self._new_slot(index, img, target))
            if not active:
                return
            stepped = len(active)
            active = self._iterate(active, done)
            if on_iteration is not None:
                on_iteration(stepped)
            while done:
                yield done.popleft()

    # -- the loop --------------------------------------------------------

    def _new_slot(self, index: int, img: ImageLike, target: "int | str") -> _Slot:
        spec = self.model.input
        original = fit(load_image(img), spec)
        x0 = image_to_blob(original, spec)
        source = str(img) if not isinstance(img, np.ndarray) else None
        return _Slot(index, source, original, x0, x0.copy(), self.model.resolve(target),
                     trace=Trace() if self.trace else None)

    def _iterate(self, active: list[_Slot], done: deque) -> list[_Slot]:
        """One forward/backward over the active samples; step or finish each."""
        x = np.stack([s.x for s in active])
        targets = np.array([s.target for s in active], dtype=np.int64)
        lg = self.model.classifier.loss_and_gradient(x, targets)
        labels = lg.probs.argmax(axis=1)
        finished: list[tuple[_Slot, StopReason, np.ndarray]] = []
        stepping: list[int] = []
        hit = [k for k, s in enumerate(active) if self._carries(lg.probs[k], s.target)]
        uint8_ok = self._uint8_labels([active[k] for k in hit]) if (self.settings.ensure_uint8 and hit) else None
        for k, slot in enumerate(active):
            probs = lg.probs[k]
            if slot.iterations == 0:
                slot.original_label = int(labels[k])
                slot.original_probs = probs.copy()
            if slot.trace is not None:
                slot.trace.label.append(int(labels[k]))
                slot.trace.target_prob.append(float(probs[slot.target]))
                slot.trace.loss.append(float(lg.loss[k]))
                slot.trace.distortion.append(float(blob_distortion(slot.x[None], slot.x0[None], self.model.input.pixel_unit)[0]))
            if k in hit and (uint8_ok is None or uint8_ok[hit.index(k)]):
                finished.append((slot, StopReason.TARGET, probs))
            elif not np.all(np.isfinite(lg.grad[k])):
                finished.append((slot, StopReason.NON_FINITE, probs))
            elif slot.iterations >= self.settings.max_iter:
                finished.append((slot, StopReason.MAX_ITER, probs))
            else:
                stepping.append(k)
        if stepping:
            grads = lg.grad[stepping]
            xs = x[stepping] - self._step * np.sign(grads)
            if self.settings.clip:
                np.clip(xs, self._low, self._high, out=xs)
            x0s = np.stack([active[k].x0 for k in stepping])
            dists = blob_distortion(xs, x0s, self.model.input.pixel_unit)
            for j, k in enumerate(stepping):
                slot = active[k]
                cap = self.settings.max_distortion
                if cap is not None and dists[j] > cap:
                    finished.append((slot, StopReason.DISTORTION, lg.probs[k]))
                elif np.array_equal(xs[j], slot.x):
                    finished.append((slot, StopReason.STALLED, lg.probs[k]))
                else:
                    slot.x = xs[j]
                    slot.iterations += 1
        if finished:
            self._finish(finished, done)
        gone = {id(s) for s, _, _ in finished}
        return [s for s in active if id(s) not in gone]

    def _carries(self, probs: np.ndarray, target: int) -> bool:
        """Top-1 is the target (with at least ``confidence`` probability, if asked)."""
        return int(probs.argmax()) == target and probs[target] >= self.settings.confidence

    def _uint8_labels(self, slots: list[_Slot]) -> list[bool]:
        """Whether each slot's 8-bit image carries its target."""
        blobs = np.stack([self._uint8_blob(s.x) for s in slots])
        probs = self.model.classifier.forward(blobs)
        return [self._carries(p, s.target) for p, s in zip(probs, slots)]

    def _uint8_blob(self, x: np.ndarray) -> np.ndarray:
        spec = self.model.input
        return image_to_blob(to_uint8(blob_to_image(x, spec)) / 255.0, spec)

    def _finish(self, finished: list[tuple[_Slot, StopReason, np.ndarray]], done: deque) -> None:
        spec = self.model.input
        u8 = np.stack([self._uint8_blob(s.x) for s, _, _ in finished])
        u8_probs = self.model.classifier.forward(u8)
        for (slot, stop, probs), p8 in zip(finished, u8_probs):
            # The change, added to the user's own image: untouched pixels stay
            # bit-identical rather than picking up float32 round-off.
            delta = blob_to_image(slot.x, spec) - blob_to_image(slot.x0, spec)
            image = np.clip(slot.original + delta, 0.0, 1.0)
            label = int(probs.argmax())
            orig_probs = slot.original_probs if slot.original_probs is not None else probs
            result = RelabelResult(
                target=slot.target,
                original_label=slot.original_label,
                original_prob=float(orig_probs[slot.original_label]),
                final_label=label,
                final_prob=float(probs[label]),
                target_prob=float(probs[slot.target]),
                success=stop == StopReason.TARGET,
                stop=stop,
                iterations=slot.iterations,
                distortion=distortion(image, slot.original),
                image=image,
                original=slot.original,
                probs=probs.copy(),
                original_probs=orig_probs.copy(),
                uint8_label=int(p8.argmax()),
                uint8_target_prob=float(p8[slot.target]),
                uint8_distortion=distortion(to_uint8(image) / 255.0, slot.original),
                source=slot.source,
                trace=slot.trace,
                confidence=self.settings.confidence,
            )
            done.append((slot.index, result))
