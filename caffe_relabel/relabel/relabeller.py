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

import os
from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from caffe_relabel.backends import Classifier
from caffe_relabel.backends.base import TensorClassifier
from caffe_relabel.errors import ArgumentError
from caffe_relabel.images.preprocess import ImageLike, InputSpec, fit, load_image
from caffe_relabel.models.model import Model, load_model
from caffe_relabel.relabel.arrays import LoopArrays, NumpyArrays
from caffe_relabel.relabel.loop import Done, Loop, Slot
from caffe_relabel.relabel.goals import Goal, target_list, to_goal
from caffe_relabel.relabel.results import BatchResult, RelabelResult, StopReason, Trace
from caffe_relabel.relabel.settings import RelabelSettings


#: Decoded, resized sources kept for the pairs that follow (a few images: 1.2 MB each at 224 x 224).
_RECENT_SOURCES = 4


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
        # whatever the transform (raw scale, mean, input scale); the loop arrays hold them as float32.
        low, high = spec.blob_bounds()
        step = self.settings.alpha / 255.0 * spec.grey_level
        self._recent: "OrderedDict[tuple, np.ndarray]" = OrderedDict()  # see _fitted
        self._arrays: LoopArrays = _loop_arrays(self.model.classifier, spec, step, low, high, self.settings.clip)
        self._loop = Loop(self._arrays, self.settings, self.trace)

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
        if on_iteration is not None and not callable(on_iteration):
            raise ArgumentError(f"expected on_iteration to be callable or None, got {type(on_iteration).__name__}")
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
        if on_iteration is not None and not callable(on_iteration):
            raise ArgumentError(f"expected on_iteration to be callable or None, got {type(on_iteration).__name__}")
        slots = (self._new_slot(index, img, target) for index, (img, target) in enumerate(pairs))
        for done in self._loop.run(slots, on_iteration):
            yield done.slot.index, self._record(done)

    def relabel_batch(self, x: Any, targets: Any, on_iteration: Optional[Callable[[int], None]] = None, *,
                      layout: Optional[str] = None) -> BatchResult:
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
        ``layout``: "NCHW" or "NHWC", needed where the shape fits both
        (H = W = channels); None infers it.
        """
        from caffe_relabel.relabel import batch_input

        if on_iteration is not None and not callable(on_iteration):
            raise ArgumentError(f"expected on_iteration to be callable or None, got {type(on_iteration).__name__}")
        batch = batch_input.read_batch(x, self.model.input, layout)
        n = batch.images.shape[0]
        codes = target_list(targets, "targets", n)
        if len(codes) != n:
            raise ArgumentError(f"expected one target per image (or one for all), got {n} images and {len(codes)} targets")
        arrays = self._arrays
        originals = arrays.put(batch.images)
        x0 = arrays.to_blobs(originals)
        slots = (self._slot(i, None, originals[i:i + 1], x0[i:i + 1], t) for i, t in enumerate(codes))
        done: list[Optional[Done]] = [None] * n
        for d in self._loop.run(slots, on_iteration):
            done[d.slot.index] = d
        finished: list[Done] = done  # type: ignore[assignment]
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

    def _new_slot(self, index: int, img: ImageLike, target: Any) -> Slot:
        original = self._arrays.put(self._fitted(img)[None])
        source = str(img) if not isinstance(img, np.ndarray) else None
        return self._slot(index, source, original, self._arrays.to_blobs(original), target)

    def _fitted(self, img: ImageLike) -> np.ndarray:
        """The image at the input size. A file is decoded and resized once while its pairs come in a row
        (a sweep gives each source's targets together), not once per pair: the few latest are kept,
        keyed by path, size and modification time, and each use gets its own copy."""
        if not isinstance(img, (str, os.PathLike)):
            return fit(load_image(img), self.model.input)
        try:
            st = os.stat(img)
            key: Optional[tuple] = (os.fspath(img), st.st_size, st.st_mtime_ns)
        except (OSError, ValueError):  # load_image says what is wrong with the path
            key = None
        if key is None or key not in self._recent:
            image = fit(load_image(img), self.model.input)
            if key is None:
                return image
            self._recent[key] = image
            while len(self._recent) > _RECENT_SOURCES:
                self._recent.popitem(last=False)
        self._recent.move_to_end(key)
        return self._recent[key].copy()

    def _slot(self, index: int, source: Optional[str], original: Any, x0: Any, target: Any) -> Slot:
        goal = to_goal(target, self.model.resolve, self.settings.confidence)
        return Slot(index, source, original, x0, goal, goal.code, trace=Trace() if self.trace else None)

    def _record(self, done: Done) -> RelabelResult:
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
