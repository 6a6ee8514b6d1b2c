"""What counts as success: one small object per way of succeeding, as Foolbox 3's criteria.

A goal says which class the loop's cross-entropy follows (its *aim*) and
whether the steps go toward it or away from it, and has one
:meth:`Goal.reached` that the loop, the 8-bit check
(:attr:`RelabelResult.uint8_success <caffe_relabel.relabel.results.RelabelResult.uint8_success>`)
and the saved-file check (:mod:`caffe_relabel.relabel.saved`) all call:

- :class:`TargetClass`: top-1 is the class, with at least ``confidence`` probability;
- :class:`Untargeted`: top-1 is any class but the original, with at least ``confidence``
  probability; the steps ascend the original class's cross-entropy
  (X + alpha * sgn(dL_orig/dX) / 255);
- :class:`LeastLikely`: a :class:`TargetClass` whose class is the original image's least likely one.

Goals whose class depends on the original image (untargeted, least likely)
resolve it from the first forward pass: :attr:`Goal.code` is then
:data:`TOP` or :data:`BOTTOM`, and the loop hands the resolved class back as
``aim`` to :meth:`Goal.reached`.
"""

from __future__ import annotations

import abc
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Union

import numpy as np

from caffe_relabel.errors import ArgumentError

#: Class codes resolved from the original image's first forward: its top-1, its least likely class.
TOP, BOTTOM = -1, -2


@dataclass(frozen=True)
class Goal(abc.ABC):
    """Base of the goals; ``confidence``: the probability the new top-1 must reach (0: top-1 is enough)."""

    confidence: float = 0.0

    #: The goal's name in results, stores and JSON.
    name: ClassVar[str] = "goal"
    #: Whether the steps move away from the aimed class (ascend its cross-entropy) rather than toward it.
    away: ClassVar[bool] = False

    def __post_init__(self) -> None:
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not math.isfinite(c) or not 0 <= c < 1:
            raise ArgumentError(f"expected 0 <= confidence < 1, got {c!r}")

    @property
    @abc.abstractmethod
    def code(self) -> int:
        """The aimed class, or :data:`TOP` / :data:`BOTTOM` until the first forward resolves it."""

    def reached(self, label: int, prob: float, aim: int) -> bool:
        """Whether a top-1 ``label`` with probability ``prob`` meets the goal; ``aim``: the resolved class."""
        return label == aim and prob >= self.confidence


@dataclass(frozen=True)
class TargetClass(Goal):
    """Top-1 is ``target``."""

    target: int = 0
    name: ClassVar[str] = "targeted"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.target, bool) or not isinstance(self.target, numbers.Integral) or self.target < 0:
            raise ArgumentError(f"expected the target as a class index >= 0, got {self.target!r}")

    @property
    def code(self) -> int:
        return int(self.target)


@dataclass(frozen=True)
class Untargeted(Goal):
    """Top-1 is any class but the original."""

    name: ClassVar[str] = "untargeted"
    away: ClassVar[bool] = True

    @property
    def code(self) -> int:
        return TOP

    def reached(self, label: int, prob: float, aim: int) -> bool:
        return label != aim and prob >= self.confidence


@dataclass(frozen=True)
class LeastLikely(Goal):
    """Top-1 is the original image's least likely class."""

    name: ClassVar[str] = "least_likely"

    @property
    def code(self) -> int:
        return BOTTOM


#: The goal names a target may be given as ("least-likely" as the CLI spells it).
NAMED: dict[str, type[Goal]] = {"untargeted": Untargeted, "least_likely": LeastLikely, "least-likely": LeastLikely}

#: What a target may be, for messages.
TARGET_FORMS = "a class (index, WordNet id or name), 'untargeted', 'least_likely' or a Goal"


def to_goal(target: Union[Goal, int, str, Any], resolve: Callable[["int | str"], int], confidence: float) -> Goal:
    """A target as the caller gave it (a Goal, a class index, WordNet id or name, or a goal's name) as a Goal;
    ``resolve`` turns a class given by index or name into an index; ``confidence`` applies to every goal
    not given as an object."""
    if isinstance(target, Goal):
        if isinstance(target, TargetClass):
            resolve(target.target)  # in range for this net
        return target
    if isinstance(target, str) and target.strip().lower() in NAMED:
        return NAMED[target.strip().lower()](confidence=confidence)
    if isinstance(target, (bool, np.bool_)) or not isinstance(target, (numbers.Integral, str)):
        raise ArgumentError(f"expected a target: {TARGET_FORMS}, got {type(target).__name__} {target!r}")
    index = resolve(int(target) if isinstance(target, numbers.Integral) else target)
    return TargetClass(confidence=confidence, target=index)


def target_list(targets: Any, what: str, n: Optional[int] = None) -> list[Any]:
    """Targets as a list of Python ints, strings and Goals: a sequence, a numpy or torch integer array, or
    (with ``n``) one target for all ``n`` samples."""
    if type(targets).__module__.startswith("torch"):
        targets = targets.detach().cpu().numpy()
    if isinstance(targets, np.ndarray):
        if not (np.issubdtype(targets.dtype, np.integer) or targets.dtype.kind == "U"):
            raise ArgumentError(f"expected {what} as integer class indices, got an array of dtype {targets.dtype}")
        if targets.ndim > 1:
            raise ArgumentError(f"expected {what} as a 1-D array, got shape {list(targets.shape)}")
        targets = targets.tolist() if targets.ndim == 1 else [targets.item()] * (n if n is not None else 1)
    elif isinstance(targets, (str, numbers.Integral, Goal)) and n is not None:
        targets = [targets] * n
    elif not isinstance(targets, (list, tuple, range)):
        raise ArgumentError(f"expected {what} as a list, a numpy or torch integer array, or one target, "
                            f"got {type(targets).__name__}")
    out = list(targets)
    if n is not None and len(out) == 1 and n > 1:
        out *= n
    return out
