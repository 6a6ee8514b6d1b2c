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

Modes (a target per sample): a class (index, WordNet id or name);
``"untargeted"``, any label but the original: the same rule applied to move
away from the original label, X_{i+1} = X_i + alpha * sgn(dL_orig/dX_i) / 255
(gradient ascent on the original class's cross-entropy), stopping on the
first label change (``confidence`` does not apply); ``"least_likely"``: the
original image's least likely class as the target. Same cap, same 8-bit
check. A result's ``target`` is the class reached for, or for untargeted
runs the original label it moved away from.

The array work runs through :mod:`caffe_relabel.relabel.arrays`: on the host
for pycaffe, as tensors on the engine's device for the engine.

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

import numbers
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from caffe_relabel.backends import Classifier
from caffe_relabel.errors import ArgumentError
from caffe_relabel.relabel.arrays import BOTTOM, DISTORTION, FINITE, LABEL, LOSS, NEXT_DISTORTION, TARGET, TARGET_PROB, TOP, \
    UNCHANGED, LoopArrays, NumpyArrays
from caffe_relabel.models.model import Model, load_model
from caffe_relabel.images.preprocess import ImageLike, InputSpec, fit, load_image, to_uint8
from caffe_relabel.relabel.settings import RelabelSettings


class StopReason(str, Enum):
    """Why a sample stopped. A str, so stores and JSON hold the readable value ("target", ...)."""

    TARGET = "target"
    DISTORTION = "distortion"
    MAX_ITER = "max_iter"
    NON_FINITE = "non_finite"
    STALLED = "stalled"

    def __str__(self) -> str:  # f-strings and print show "target", not "StopReason.TARGET"
        return self.value


class Mode(str, Enum):
    """What counts as success: a chosen class, any other label, or the original's least likely class."""

    TARGETED = "targeted"
    UNTARGETED = "untargeted"
    LEAST_LIKELY = "least_likely"

    def __str__(self) -> str:
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
    mode: Mode = Mode.TARGETED  # untargeted: ``target`` is the original label moved away from
    target_name: Optional[str] = None
    final_name: Optional[str] = None

    def __repr__(self) -> str:
        # Short: the arrays would print thousands of numbers.
        def named(index: int, name: Optional[str]) -> str:
            return f"{index} {name!r}" if name is not None else str(index)

        head = f"mode={self.mode}, " if self.mode != Mode.TARGETED else ""
        return (f"RelabelResult({head}target={named(self.target, self.target_name)}, success={self.success}, "
                f"stop={self.stop}, iterations={self.iterations}, distortion={self.distortion:.3g}, "
                f"final={named(self.final_label, self.final_name)} p={self.final_prob:.3g}, "
                f"uint8_success={self.uint8_success}, image={_shape(self.image)})")

    @property
    def image_uint8(self) -> np.ndarray:
        """The relabelled image as the 8-bit pixels a PNG would hold."""
        return to_uint8(self.image)

    @property
    def uint8_success(self) -> bool:
        """Whether the saved 8-bit image still carries the target: its top-1, with ``confidence`` if asked
        (untargeted: any label but the original)."""
        if self.mode == Mode.UNTARGETED:
            return self.uint8_label != self.target
        return self.uint8_label == self.target and self.uint8_target_prob >= self.confidence

    def summary(self) -> dict[str, Any]:
        """The scalar fields, JSON-ready."""
        return {
            "source": self.source,
            "mode": self.mode.value,
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


def _shape(a: Any) -> str:
    return "x".join(map(str, getattr(a, "shape", ()))) or "?"


@dataclass(frozen=True)
class BatchResult:
    """:meth:`Relabeller.relabel_batch`'s answer; arrays of the input's type (torch: on its device).

    ``images``: the relabelled batch in the input's layout and dtype; ``success``: bool per sample;
    ``iterations``; ``distortions`` (the paper's measure, float64); ``labels``: final top-1;
    ``targets``: the classes aimed at (untargeted: the original label); ``stops``: why each stopped.
    """

    images: Any
    success: Any
    iterations: Any
    distortions: Any
    labels: Any
    targets: Any
    stops: tuple[StopReason, ...]

    def __repr__(self) -> str:
        n = len(self.stops)
        ok = int(sum(bool(v) for v in self.success))
        return (f"BatchResult(n={n}, success={ok}/{n}, images={type(self.images).__name__} {_shape(self.images)}, "
                f"stops={{{', '.join(f'{r}: {self.stops.count(r)}' for r in StopReason if r in self.stops)}}})")




@dataclass
class _Slot:
    """One sample in the loop. ``target`` is a class, or a TOP/BOTTOM code until the first forward."""

    index: int
    source: Optional[str]
    original: Any  # 1 x H x W x C float64 image (a loop array)
    x0: Any  # 1 x C x H x W float32 blob (a loop array)
    mode: Mode
    target: int
    iterations: int = 0
    original_label: int = -1
    original_probs: Any = None  # K probabilities (a loop array)
    trace: Optional[Trace] = None


@dataclass
class _Done:
    """A finished sample: its final image stays a loop array; the rest is on the host."""

    slot: _Slot
    stop: StopReason
    probs: np.ndarray
    image: Any  # 1 x H x W x C float64 (a loop array)
    distortion: float
    uint8_distortion: float
    uint8_label: int
    uint8_target_prob: float


def _loop_arrays(classifier: Classifier, spec: InputSpec, step: float, low: np.ndarray, high: np.ndarray,
                 clip: bool) -> LoopArrays:
    """The torch loop for the engine backend, the numpy loop for every other classifier."""
    if getattr(classifier, "backend_name", None) == "engine" and hasattr(classifier, "net"):
        from caffe_relabel.relabel.arrays_torch import TorchArrays

        return TorchArrays(classifier, spec, step, low, high, clip)
    return NumpyArrays(classifier, spec, step, low, high, clip)


#: The mode strings a target may be ("least-likely" as the CLI spells it).
MODES = {"untargeted": Mode.UNTARGETED, "least_likely": Mode.LEAST_LIKELY, "least-likely": Mode.LEAST_LIKELY}


class Relabeller:
    """Relabel images on one network with the paper's sign-gradient rule.

    ``net``: a zoo model name ("bvlc_googlenet", "digits", ...), a
    :class:`~caffe_relabel.models.model.Model`, or a backend
    (:class:`~caffe_relabel.backends.Classifier`) together with
    ``input_spec`` saying what input it expects.

    A target is a class (index, WordNet id or name) or a mode, ``"untargeted"``
    or ``"least_likely"`` (see the module's docstring).
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
        self._arrays: LoopArrays = _loop_arrays(self.model.classifier, spec, self._step, self._low, self._high,
                                                self.settings.clip)

    # -- public API ------------------------------------------------------

    def run(self, img: ImageLike, target: "int | str") -> RelabelResult:
        """Relabel one image (path or array) to ``target`` (index, WordNet id, name or mode)."""
        return self.run_batch([img], [target])[0]

    def run_batch(
        self,
        images: Sequence[ImageLike],
        targets: "Sequence[int | str] | np.ndarray",
        on_iteration: Optional[Callable[[int], None]] = None,
    ) -> list[RelabelResult]:
        """Relabel ``images[i]`` to ``targets[i]`` for every i, in batches; results in order."""
        if not hasattr(images, "__len__"):
            raise ArgumentError(f"expected a list of images, got {type(images).__name__}")
        if on_iteration is not None and not callable(on_iteration):
            raise ArgumentError(f"expected on_iteration to be callable or None, got {type(on_iteration).__name__}")
        targets = _target_list(targets, "targets")
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
        if on_iteration is not None and not callable(on_iteration):
            raise ArgumentError(f"expected on_iteration to be callable or None, got {type(on_iteration).__name__}")
        slots = (self._new_slot(index, img, target) for index, (img, target) in enumerate(pairs))
        for done in self._loop(slots, on_iteration):
            yield done.slot.index, self._record(done)

    def relabel_batch(self, x: Any, targets: Any, on_iteration: Optional[Callable[[int], None]] = None, *,
                      layout: Optional[str] = None) -> BatchResult:
        """Relabel a batch of images held as one array, as attack libraries take them.

        ``x``: numpy array or torch tensor, N x C x H x W or N x H x W x C,
        floating point in [0, 1], RGB (grey: C = 1) at the network's input size
        (``self.model.input.size``; resizing is the caller's job here).
        ``targets``: one per sample or one for all: class indices (int, numpy
        or torch integer array), names, WordNet ids, or ``"untargeted"`` /
        ``"least_likely"``. Returns a :class:`BatchResult` whose arrays are of
        the input's type, layout, dtype and device. ``layout``: "NCHW" or "NHWC", needed where
        the shape fits both (H = W = channels); None infers it.
        """
        from caffe_relabel.relabel import batch_input

        if on_iteration is not None and not callable(on_iteration):
            raise ArgumentError(f"expected on_iteration to be callable or None, got {type(on_iteration).__name__}")
        batch = batch_input.read_batch(x, self.model.input, layout)
        n = batch.images.shape[0]
        codes = _target_list(targets, "targets", n)
        if len(codes) != n:
            raise ArgumentError(f"expected one target per image (or one for all), got {n} images and {len(codes)} targets")
        arrays = self._arrays
        originals = arrays.put(batch.images)
        x0 = arrays.to_blobs(originals)
        slots = (self._slot(i, None, originals[i:i + 1], x0[i:i + 1], t) for i, t in enumerate(codes))
        done: list[Optional[_Done]] = [None] * n
        for d in self._loop(slots, on_iteration):
            done[d.slot.index] = d
        finished: list[_Done] = done  # type: ignore[assignment]
        images = arrays.concat([d.image for d in finished])
        return BatchResult(
            images=batch.restore(images),
            success=batch.wrap(np.array([d.stop == StopReason.TARGET for d in finished])),
            iterations=batch.wrap(np.array([d.slot.iterations for d in finished], dtype=np.int64)),
            distortions=batch.wrap(np.array([d.distortion for d in finished])),
            labels=batch.wrap(np.array([int(d.probs.argmax()) for d in finished], dtype=np.int64)),
            targets=batch.wrap(np.array([d.slot.target for d in finished], dtype=np.int64)),
            stops=tuple(d.stop for d in finished),
        )

    # -- the loop --------------------------------------------------------

    def _new_slot(self, index: int, img: ImageLike, target: Any) -> _Slot:
        original = self._arrays.put(fit(load_image(img), self.model.input)[None])
        source = str(img) if not isinstance(img, np.ndarray) else None
        return self._slot(index, source, original, self._arrays.to_blobs(original), target)

    def _slot(self, index: int, source: Optional[str], original: Any, x0: Any, target: Any) -> _Slot:
        mode, code = self._parse_target(target)
        return _Slot(index, source, original, x0, mode, code, trace=Trace() if self.trace else None)

    def _parse_target(self, target: Any) -> tuple[Mode, int]:
        if isinstance(target, str) and target.strip().lower() in MODES:
            mode = MODES[target.strip().lower()]
            return mode, TOP if mode == Mode.UNTARGETED else BOTTOM
        if isinstance(target, (bool, np.bool_)) or not isinstance(target, (numbers.Integral, str)):
            raise ArgumentError(f"expected a target class (index, WordNet id or name), 'untargeted' or 'least_likely', "
                                f"got {type(target).__name__} {target!r}")
        return Mode.TARGETED, self.model.resolve(int(target) if isinstance(target, numbers.Integral) else target)

    def _loop(self, slots: Iterator[_Slot], on_iteration: Optional[Callable[[int], None]]) -> Iterator[_Done]:
        """Continuous batching: finished samples leave, waiting ones take their slots."""
        arrays = self._arrays
        active: list[_Slot] = []
        # The active samples' batch arrays (rows in ``active``'s order): blobs now, original blobs, original images.
        x = x0 = orig = None
        exhausted = False
        while True:
            joining: list[_Slot] = []
            while not exhausted and len(active) + len(joining) < self.settings.batch_size:
                try:
                    joining.append(next(slots))
                except StopIteration:
                    exhausted = True
            if joining:
                x = arrays.concat(([] if x is None else [x]) + [s.x0 for s in joining])
                x0 = arrays.concat(([] if x0 is None else [x0]) + [s.x0 for s in joining])
                orig = arrays.concat(([] if orig is None else [orig]) + [s.original for s in joining])
                active += joining
            if not active:
                return
            finished, stepped, probs = self._iterate(active, x, x0)
            if on_iteration is not None:
                on_iteration(len(active))
            if not finished:
                x = stepped
                continue
            rows = [k for k, _ in finished]
            # A finished sample keeps the image it was judged on, not the step after it.
            yield from self._finish([(active[k], stop) for k, stop in finished], arrays.host(arrays.take(probs, rows)),
                                    arrays.take(x, rows), arrays.take(x0, rows), arrays.take(orig, rows))
            gone = set(rows)
            keep = [k for k in range(len(active)) if k not in gone]
            active = [active[k] for k in keep]
            if keep:
                x, x0, orig = arrays.take(stepped, keep), arrays.take(x0, keep), arrays.take(orig, keep)
            else:
                x = x0 = orig = None

    def _iterate(self, active: list[_Slot], x: Any, x0: Any) -> tuple[list[tuple[int, StopReason]], Any, Any]:
        """One forward/backward over the active samples: which finish (row, why), the stepped batch, the probabilities."""
        arrays = self._arrays
        g = arrays.gradient(x, np.array([s.target for s in active], dtype=np.int64))
        stepped = arrays.step_batch(x, g.grad, np.array([s.mode == Mode.UNTARGETED for s in active]))
        m = arrays.measure(x, stepped, x0, g, self.trace)
        for k, slot in enumerate(active):
            if slot.iterations == 0:
                slot.original_label = int(m[k, LABEL])
                slot.target = int(m[k, TARGET])  # the modes' class, resolved by this first forward
                slot.original_probs = arrays.take(g.probs, [k])
            if slot.trace is not None:
                slot.trace.label.append(int(m[k, LABEL]))
                slot.trace.target_prob.append(float(m[k, TARGET_PROB]))
                slot.trace.loss.append(float(m[k, LOSS]))
                slot.trace.distortion.append(float(m[k, DISTORTION]))
        hit = [k for k, s in enumerate(active) if self._carries(s, int(m[k, LABEL]), m[k, TARGET_PROB])]
        if self.settings.ensure_uint8 and hit:
            p8 = arrays.forward(arrays.uint8_blobs(arrays.take(x, hit)))
            top = arrays.top(p8, np.array([active[k].target for k in hit], dtype=np.int64))
            hit = [k for k, (label, prob) in zip(hit, top) if self._carries(active[k], int(label), prob)]
        finished: list[tuple[int, StopReason]] = []
        cap = self.settings.max_distortion
        hits = set(hit)
        for k, slot in enumerate(active):
            if k in hits:
                finished.append((k, StopReason.TARGET))
            elif not m[k, FINITE]:
                finished.append((k, StopReason.NON_FINITE))
            elif slot.iterations >= self.settings.max_iter:
                finished.append((k, StopReason.MAX_ITER))
            elif cap is not None and m[k, NEXT_DISTORTION] > cap:
                finished.append((k, StopReason.DISTORTION))
            elif m[k, UNCHANGED]:
                finished.append((k, StopReason.STALLED))
            else:
                slot.iterations += 1
        return finished, stepped, g.probs

    def _carries(self, slot: _Slot, label: int, target_prob: float) -> bool:
        """Top-1 is the target (with at least ``confidence`` probability, if asked); untargeted: not the original."""
        if slot.mode == Mode.UNTARGETED:
            return label != slot.original_label
        return label == slot.target and target_prob >= self.settings.confidence

    def _finish(self, entries: list[tuple[_Slot, StopReason]], probs: np.ndarray, x: Any, x0: Any,
                originals: Any) -> Iterator[_Done]:
        """The finished samples' images, distortions and 8-bit check, batched."""
        arrays = self._arrays
        p8 = arrays.host(arrays.forward(arrays.uint8_blobs(x)))
        images, dists = arrays.results(x, x0, originals)
        for j, (slot, stop) in enumerate(entries):
            yield _Done(slot, stop, probs[j], images[j:j + 1], float(dists[j, 0]), float(dists[j, 1]),
                        int(p8[j].argmax()), float(p8[j][slot.target]))

    def _record(self, done: _Done) -> RelabelResult:
        arrays, slot, probs = self._arrays, done.slot, done.probs
        label = int(probs.argmax())
        orig_probs = arrays.host(slot.original_probs)[0]
        names = self.model.class_names is not None
        return RelabelResult(
            target=slot.target,
            original_label=slot.original_label,
            original_prob=float(orig_probs[slot.original_label]),
            final_label=label,
            final_prob=float(probs[label]),
            target_prob=float(probs[slot.target]),
            success=done.stop == StopReason.TARGET,
            stop=done.stop,
            iterations=slot.iterations,
            distortion=done.distortion,
            image=arrays.host(done.image)[0],
            original=arrays.host(slot.original)[0],
            probs=probs.copy(),
            original_probs=orig_probs.copy(),
            uint8_label=done.uint8_label,
            uint8_target_prob=done.uint8_target_prob,
            uint8_distortion=done.uint8_distortion,
            source=slot.source,
            trace=slot.trace,
            confidence=self.settings.confidence,
            mode=slot.mode,
            target_name=self.model.class_name(slot.target) if names else None,
            final_name=self.model.class_name(label) if names else None,
        )


def _target_list(targets: Any, what: str, n: Optional[int] = None) -> list[Any]:
    """Targets as a list of Python ints and strings: a sequence, a numpy or torch integer array, or
    (with ``n``) one target for all ``n`` samples."""
    if type(targets).__module__.startswith("torch"):
        targets = targets.detach().cpu().numpy()
    if isinstance(targets, np.ndarray):
        if not (np.issubdtype(targets.dtype, np.integer) or targets.dtype.kind == "U"):
            raise ArgumentError(f"expected {what} as integer class indices, got an array of dtype {targets.dtype}")
        if targets.ndim > 1:
            raise ArgumentError(f"expected {what} as a 1-D array, got shape {list(targets.shape)}")
        targets = targets.tolist() if targets.ndim == 1 else [targets.item()] * (n if n is not None else 1)
    elif isinstance(targets, (str, numbers.Integral)) and n is not None:
        targets = [targets] * n
    elif not isinstance(targets, (list, tuple, range)):
        raise ArgumentError(f"expected {what} as a list, a numpy or torch integer array, or one target, "
                            f"got {type(targets).__name__}")
    out = list(targets)
    if n is not None and len(out) == 1 and n > 1:
        out *= n
    return out
