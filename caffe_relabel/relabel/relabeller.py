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

Goals (one per sample, :mod:`caffe_relabel.relabel.goals`): a class (index,
WordNet id or name, or :class:`~caffe_relabel.relabel.goals.TargetClass`);
``"untargeted"``, any label but the original: the same rule applied to move
away from the original label, X_{i+1} = X_i + alpha * sgn(dL_orig/dX_i) / 255
(gradient ascent on the original class's cross-entropy), stopping on the
first label change whose probability reaches ``confidence``;
``"least_likely"``: the original image's least likely class as the target.
Same cap, same 8-bit check, one ``Goal.reached`` for all of them. A result
names the goal and the original label separately (``target`` is None for an
untargeted goal).

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

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from caffe_relabel.backends import Classifier
from caffe_relabel.backends.base import TensorClassifier
from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import ImageLike, InputSpec, fit, load_image
from caffe_relabel.models.model import Model, load_model
from caffe_relabel.relabel.arrays import DISTORTION, FINITE, LABEL, LABEL_PROB, LOSS, NEXT_DISTORTION, TARGET, \
    TARGET_PROB, UNCHANGED, LoopArrays, NumpyArrays
from caffe_relabel.relabel.goals import Goal, target_list, to_goal
from caffe_relabel.relabel.results import BatchResult, RelabelResult, StopReason, Trace
from caffe_relabel.relabel.settings import RelabelSettings


@dataclass
class _Slot:
    """One sample in the loop. ``aim`` is the goal's class, or a TOP/BOTTOM code until the first forward."""

    index: int
    source: Optional[str]
    original: Any  # 1 x H x W x C float64 image (a loop array)
    x0: Any  # 1 x C x H x W float32 blob (a loop array)
    goal: Goal
    aim: int
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
    uint8_probs: np.ndarray  # the 8-bit image's class probabilities


def _loop_arrays(classifier: Classifier, spec: InputSpec, step: float, low: np.ndarray, high: np.ndarray,
                 clip: bool) -> LoopArrays:
    """Tensors on the device for a classifier that computes with torch, the numpy loop for every other."""
    if isinstance(classifier, TensorClassifier):
        from caffe_relabel.relabel.arrays_torch import TorchArrays

        return TorchArrays(classifier, spec, step, low, high, clip)
    return NumpyArrays(classifier, spec, step, low, high, clip)


class Relabeller:
    """Relabel images on one network with the paper's sign-gradient rule.

    ``net``: a zoo model name ("bvlc_googlenet", "digits", ...), a
    :class:`~caffe_relabel.models.model.Model`, or a backend
    (:class:`~caffe_relabel.backends.Classifier`) together with
    ``input_spec`` saying what input it expects.

    A target is a class (index, WordNet id or name), a goal's name,
    ``"untargeted"`` or ``"least_likely"``, or a :class:`~caffe_relabel.relabel.goals.Goal`
    (see the module's docstring). ``relabeller(images, targets)`` is the
    torchattacks-shaped call: :meth:`__call__`.
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

    def run(self, img: ImageLike, target: "int | str | Goal") -> RelabelResult:
        """Relabel one image (path or array) to ``target`` (index, WordNet id, name, goal name or Goal)."""
        return self.run_batch([img], [target])[0]

    def run_batch(
        self,
        images: Sequence[ImageLike],
        targets: "Sequence[int | str | Goal] | np.ndarray",
        on_iteration: Optional[Callable[[int], None]] = None,
    ) -> list[RelabelResult]:
        """Relabel ``images[i]`` to ``targets[i]`` for every i, in batches; results in order."""
        if not hasattr(images, "__len__"):
            raise ArgumentError(f"expected a list of images, got {type(images).__name__}")
        targets = target_list(targets, "targets")
        if len(images) != len(targets):
            raise ArgumentError(f"expected one target per image, got {len(images)} images and {len(targets)} targets")
        out: list[Optional[RelabelResult]] = [None] * len(images)
        for i, result in self.iter_results(zip(images, targets), on_iteration=on_iteration):
            out[i] = result
        return out  # type: ignore[return-value]

    def iter_results(
        self,
        pairs: Iterable[tuple[ImageLike, "int | str | Goal"]],
        on_iteration: Optional[Callable[[int], None]] = None,
    ) -> Iterator[tuple[int, RelabelResult]]:
        """Relabel (image, target) pairs lazily; yields (index, result) as each finishes.

        Images are loaded only when a batch slot frees up, so a sweep over
        millions of pairs holds at most ``batch_size`` of them in memory.
        ``on_iteration(n)`` is told after each batched forward/backward how many samples it held.
        """
        slots = (self._new_slot(index, img, target) for index, (img, target) in enumerate(pairs))
        for done in self._loop(slots, on_iteration):
            yield done.slot.index, self._record(done)

    def relabel_batch(self, x: Any, targets: Any, on_iteration: Optional[Callable[[int], None]] = None) -> BatchResult:
        """Relabel a batch of images held as one array, as attack libraries take them.

        ``x``: numpy array or torch tensor, N x C x H x W or N x H x W x C,
        floating point in [0, 1], RGB (grey: C = 1) at the network's input size
        (``self.model.input.size``; resizing is the caller's job here).
        ``targets``: one per sample or one for all: class indices (int, numpy
        or torch integer array), names, WordNet ids, goal names or Goals.
        Returns a :class:`~caffe_relabel.relabel.results.BatchResult` with
        everything :meth:`run` gives, batched, its arrays of the input's type,
        layout, dtype and device. With ``ensure_uint8`` the images are the
        8-bit ones (on the 1/255 grid), the ones that met the goal.
        """
        from caffe_relabel.relabel import batch_input

        batch = batch_input.read_batch(x, self.model.input)
        n = batch.images.shape[0]
        codes = target_list(targets, "targets", n)
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
        uint8_images = arrays.uint8_images(images)
        records = [self._record(d) for d in finished]

        def column(name: str, dtype: Any) -> Any:
            return batch.wrap(np.array([getattr(r, name) for r in records], dtype=dtype))

        return BatchResult(
            images=batch.restore(uint8_images if self.settings.ensure_uint8 else images),
            uint8_images=batch.restore(uint8_images),
            goals=tuple(r.goal.name for r in records),
            targets=batch.wrap(np.array([-1 if r.target is None else r.target for r in records], dtype=np.int64)),
            original_labels=column("original_label", np.int64),
            labels=column("final_label", np.int64),
            probs=column("final_prob", np.float64),
            target_probs=column("target_prob", np.float64),
            success=column("success", bool),
            stops=tuple(r.stop for r in records),
            iterations=column("iterations", np.int64),
            distortions=column("distortion", np.float64),
            uint8_labels=column("uint8_label", np.int64),
            uint8_success=column("uint8_success", bool),
            uint8_distortions=column("uint8_distortion", np.float64),
            traces=tuple(r.trace for r in records) if self.trace else None,  # type: ignore[misc]
        )

    def __call__(self, images: Any, labels_or_targets: Any) -> Any:
        """The torchattacks shape, ``adv = relabeller(images, targets)``: the relabelled batch, of the input's
        type, device, dtype and layout (see :meth:`relabel_batch`, which also says how each sample ended)."""
        return self.relabel_batch(images, labels_or_targets).images

    # -- the loop --------------------------------------------------------

    def _new_slot(self, index: int, img: ImageLike, target: Any) -> _Slot:
        original = self._arrays.put(fit(load_image(img), self.model.input)[None])
        source = str(img) if not isinstance(img, np.ndarray) else None
        return self._slot(index, source, original, self._arrays.to_blobs(original), target)

    def _slot(self, index: int, source: Optional[str], original: Any, x0: Any, target: Any) -> _Slot:
        goal = to_goal(target, self.model.resolve, self.settings.confidence)
        return _Slot(index, source, original, x0, goal, goal.code, trace=Trace() if self.trace else None)

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
        g = arrays.gradient(x, np.array([s.aim for s in active], dtype=np.int64))
        stepped = arrays.step_batch(x, g.grad, np.array([s.goal.away for s in active]))
        m = arrays.measure(x, stepped, x0, g, self.trace)
        for k, slot in enumerate(active):
            if slot.iterations == 0:
                slot.original_label = int(m[k, LABEL])
                slot.aim = int(m[k, TARGET])  # a goal's class that depends on the image, resolved by this forward
                slot.original_probs = arrays.take(g.probs, [k])
            if slot.trace is not None:
                slot.trace.label.append(int(m[k, LABEL]))
                slot.trace.target_prob.append(float(m[k, TARGET_PROB]))
                slot.trace.loss.append(float(m[k, LOSS]))
                slot.trace.distortion.append(float(m[k, DISTORTION]))
        hit = [k for k, s in enumerate(active) if s.goal.reached(int(m[k, LABEL]), m[k, LABEL_PROB], s.aim)]
        if self.settings.ensure_uint8 and hit:
            top = arrays.top(arrays.forward(arrays.uint8_blobs(arrays.take(x, hit))))
            hit = [k for k, (label, prob) in zip(hit, top) if active[k].goal.reached(int(label), prob, active[k].aim)]
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

    def _finish(self, entries: list[tuple[_Slot, StopReason]], probs: np.ndarray, x: Any, x0: Any,
                originals: Any) -> Iterator[_Done]:
        """The finished samples' images, distortions and 8-bit check, batched."""
        arrays = self._arrays
        p8 = arrays.host(arrays.forward(arrays.uint8_blobs(x)))
        images, dists = arrays.results(x, x0, originals)
        for j, (slot, stop) in enumerate(entries):
            yield _Done(slot, stop, probs[j], images[j:j + 1], float(dists[j, 0]), float(dists[j, 1]), p8[j])

    def _record(self, done: _Done) -> RelabelResult:
        arrays, slot, probs = self._arrays, done.slot, done.probs
        label, label8 = int(probs.argmax()), int(done.uint8_probs.argmax())
        orig_probs = arrays.host(slot.original_probs)[0]
        names = self.model.class_names is not None
        target = None if slot.goal.away else slot.aim
        return RelabelResult(
            goal=slot.goal,
            target=target,
            original_label=slot.original_label,
            original_prob=float(orig_probs[slot.original_label]),
            final_label=label,
            final_prob=float(probs[label]),
            target_prob=float(probs[slot.aim]),
            success=done.stop == StopReason.TARGET,
            stop=done.stop,
            iterations=slot.iterations,
            distortion=done.distortion,
            image=arrays.host(done.image)[0],
            original=arrays.host(slot.original)[0],
            probs=probs.copy(),
            original_probs=orig_probs.copy(),
            uint8_label=label8,
            uint8_prob=float(done.uint8_probs[label8]),
            uint8_target_prob=float(done.uint8_probs[slot.aim]),
            uint8_distortion=done.uint8_distortion,
            source=slot.source,
            trace=slot.trace,
            target_name=self.model.class_name(target) if names and target is not None else None,
            final_name=self.model.class_name(label) if names else None,
        )
