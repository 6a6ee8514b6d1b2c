"""The relabelling's plain result records: one image (:class:`RelabelResult`), one batch (:class:`BatchResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

import numpy as np

from caffe_relabel.images.preprocess import to_uint8
from caffe_relabel.relabel.goals import Goal, TargetClass


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
    """One relabelling: what went in, what came out, and how.

    ``goal`` is what success meant; ``target`` the class reached for (None
    for an untargeted goal, which has none); ``target_prob`` the final
    probability of the class the loop followed (untargeted: the original's).
    """

    goal: Goal
    target: Optional[int]
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
    uint8_prob: float  # and with what probability
    uint8_target_prob: float
    uint8_distortion: float
    source: Optional[str] = None
    trace: Optional[Trace] = None
    target_name: Optional[str] = None
    final_name: Optional[str] = None

    def __repr__(self) -> str:
        # Short: the arrays would print thousands of numbers.
        def named(index: Optional[int], name: Optional[str]) -> str:
            return f"{index} {name!r}" if name is not None else str(index)

        head = "" if isinstance(self.goal, TargetClass) else f"goal={self.goal.name}, "
        aim = f"target={named(self.target, self.target_name)}" if self.target is not None \
            else f"original={self.original_label}"
        return (f"RelabelResult({head}{aim}, success={self.success}, "
                f"stop={self.stop}, iterations={self.iterations}, distortion={self.distortion:.3g}, "
                f"final={named(self.final_label, self.final_name)} p={self.final_prob:.3g}, "
                f"uint8_success={self.uint8_success}, image={shape_text(self.image)})")

    @property
    def aim(self) -> int:
        """The class the loop's cross-entropy followed: the target, or (untargeted) the original label."""
        return self.original_label if self.target is None else self.target

    @property
    def confidence(self) -> float:
        """The probability success asked of the new top-1 (0: top-1 is enough)."""
        return self.goal.confidence

    @property
    def image_uint8(self) -> np.ndarray:
        """The relabelled image as the 8-bit pixels a PNG would hold."""
        return to_uint8(self.image)

    @property
    def uint8_success(self) -> bool:
        """Whether the saved 8-bit image still meets the goal (the same rule as the loop's)."""
        return self.goal.reached(self.uint8_label, self.uint8_prob, self.aim)

    def summary(self) -> dict[str, Any]:
        """The scalar fields, JSON-ready."""
        return {
            "source": self.source,
            "goal": self.goal.name,
            "confidence": self.goal.confidence,
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
            "uint8_prob": self.uint8_prob,
            "uint8_target_prob": self.uint8_target_prob,
            "uint8_success": self.uint8_success,
            "uint8_distortion": self.uint8_distortion,
        }


def shape_text(a: Any) -> str:
    """An array's shape as ``3x224x224``, for short reprs."""
    return "x".join(map(str, getattr(a, "shape", ()))) or "?"


@dataclass(frozen=True)
class BatchResult:
    """:meth:`Relabeller.relabel_batch`'s answer: what :meth:`Relabeller.run` gives, batched.

    Arrays are of the input's type (torch: on its device); ``images`` and
    ``uint8_images`` in the input's layout and dtype (``uint8_images``: the
    8-bit pixels on the 1/255 grid, as floats). Per sample: ``goals`` (the
    goal names), ``targets`` (the class aimed at, -1 for an untargeted goal),
    ``original_labels``, ``labels`` and ``probs`` (final top-1 and its
    probability), ``target_probs``, ``success``, ``stops``, ``iterations``,
    ``distortions``; the 8-bit image's ``uint8_labels``, ``uint8_success``
    and ``uint8_distortions``; ``traces`` (None unless asked).
    """

    images: Any
    uint8_images: Any
    goals: tuple[str, ...]
    targets: Any
    original_labels: Any
    labels: Any
    probs: Any
    target_probs: Any
    success: Any
    stops: tuple[StopReason, ...]
    iterations: Any
    distortions: Any
    uint8_labels: Any
    uint8_success: Any
    uint8_distortions: Any
    traces: Optional[tuple[Trace, ...]] = None

    def __repr__(self) -> str:
        n = len(self.stops)
        ok = int(sum(bool(v) for v in self.success))
        return (f"BatchResult(n={n}, success={ok}/{n}, images={type(self.images).__name__} {shape_text(self.images)}, "
                f"stops={{{', '.join(f'{r}: {self.stops.count(r)}' for r in StopReason if r in self.stops)}}})")
