"""The relabelling loop: one batched forward/backward per step, each sample stopping on its own.

Continuous batching: finished samples leave the batch and waiting ones take
their slots, so the cost follows the sum of the iterations, not the maximum.
The array work goes through a :class:`~caffe_relabel.relabel.arrays.LoopArrays`,
success through each sample's :class:`~caffe_relabel.relabel.goals.Goal`;
:class:`~caffe_relabel.relabel.relabeller.Relabeller` makes the slots and turns
what finishes into result records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from caffe_relabel.relabel.arrays import DISTORTION, FINITE, LABEL, LABEL_PROB, LOSS, NEXT_DISTORTION, TARGET, \
    TARGET_PROB, UNCHANGED, LoopArrays
from caffe_relabel.relabel.goals import Goal
from caffe_relabel.relabel.results import StopReason, Trace
from caffe_relabel.relabel.settings import RelabelSettings


@dataclass
class Slot:
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
class Done:
    """A finished sample: its final image stays a loop array; the rest is on the host."""

    slot: Slot
    stop: StopReason
    probs: np.ndarray
    image: Any  # 1 x H x W x C float64 (a loop array)
    distortion: float
    uint8_distortion: float
    uint8_probs: np.ndarray  # the 8-bit image's class probabilities


class Loop:
    """The loop over one network's arrays, with one relabeller's settings."""

    def __init__(self, arrays: LoopArrays, settings: RelabelSettings, trace: bool) -> None:
        self.arrays, self.settings, self.trace = arrays, settings, trace

    def run(self, slots: Iterator[Slot], on_iteration: Optional[Callable[[int], None]]) -> Iterator[Done]:
        """Continuous batching: finished samples leave, waiting ones take their slots."""
        arrays = self.arrays
        active: list[Slot] = []
        # The active samples' batch arrays (rows in ``active``'s order): blobs now, original blobs, original images.
        x = x0 = orig = None
        exhausted = False
        while True:
            joining: list[Slot] = []
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
            finished, stepped, probs, checked8 = self._iterate(active, x, x0)
            if on_iteration is not None:
                on_iteration(len(active))
            if not finished:
                x = stepped
                continue
            rows = [k for k, _ in finished]
            # A finished sample keeps the image it was judged on, not the step after it.
            yield from self._finish([(active[k], stop) for k, stop in finished], arrays.host(arrays.take(probs, rows)),
                                    arrays.take(x, rows), arrays.take(x0, rows), arrays.take(orig, rows),
                                    [checked8.get(k) for k in rows])
            gone = set(rows)
            keep = [k for k in range(len(active)) if k not in gone]
            active = [active[k] for k in keep]
            if keep:
                x, x0, orig = arrays.take(stepped, keep), arrays.take(x0, keep), arrays.take(orig, keep)
            else:
                x = x0 = orig = None

    def _iterate(self, active: list[Slot], x: Any, x0: Any
                 ) -> tuple[list[tuple[int, StopReason]], Any, Any, dict[int, np.ndarray]]:
        """One forward/backward over the active samples: which finish (row, why), the stepped batch, the
        probabilities, and the 8-bit images' probabilities (host) of the rows whose 8-bit check ran."""
        arrays = self.arrays
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
        checked8: dict[int, np.ndarray] = {}
        if self.settings.ensure_uint8 and hit:
            p8 = arrays.forward(arrays.uint8_blobs(arrays.take(x, hit)))
            checked8 = dict(zip(hit, arrays.host(p8)))  # what _finish would compute again for these rows
            top = arrays.top(p8)
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
        return finished, stepped, g.probs, checked8

    def _finish(self, entries: list[tuple[Slot, StopReason]], probs: np.ndarray, x: Any, x0: Any,
                originals: Any, checked8: list[Optional[np.ndarray]]) -> Iterator[Done]:
        """The finished samples' images, distortions and 8-bit probabilities.

        An 8-bit image already classified (``checked8``, the loop's 8-bit check) or equal
        to the blob the last step classified (``probs``) is not run again; the rest go
        through the network in one batch.
        """
        arrays = self.arrays
        p8: list[Optional[np.ndarray]] = list(checked8)
        todo = [j for j, known in enumerate(p8) if known is None]
        if todo:
            xs = arrays.take(x, todo)
            blobs8 = arrays.uint8_blobs(xs)
            same = arrays.host(arrays.xp.all((blobs8 == xs).reshape(len(todo), -1), 1))
            for j, unchanged in zip(todo, same):
                if unchanged:
                    p8[j] = probs[j]
            rest = [i for i, unchanged in enumerate(same) if not unchanged]
            if rest:
                for j, row in zip([todo[i] for i in rest], arrays.host(arrays.forward(arrays.take(blobs8, rest)))):
                    p8[j] = row
        images, dists = arrays.results(x, x0, originals)
        for j, (slot, stop) in enumerate(entries):
            yield Done(slot, stop, probs[j], images[j:j + 1], float(dists[j, 0]), float(dists[j, 1]), p8[j])
