"""The relabelling settings as one frozen record, checked when it is made.

A :class:`RelabelSettings` holds everything that changes what the loop in
:mod:`caffe_relabel.relabel.relabeller` computes, so a Relabeller is built from one, an
experiment passes one on, and a sweep store records one whole and compares
it on resume and merge. How the model is loaded (backend, device) and how
experiments pick their pairs (seed) are not part of it: they do not change
a relabelling's outcome.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from caffe_relabel.errors import ArgumentError

#: alpha is in 1/255 of a grey level, so 255 * 255 moves a pixel across the whole 0..255 range in one step.
MAX_ALPHA = 255.0 * 255.0
#: Iterations and batch sizes are stored in SQLite and handed to Caffe as C ints.
MAX_COUNT = 2**31 - 1


def _number(name: str, value: Any) -> float:
    # bool is an int to Python, but alpha=True is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"expected {name} to be a number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ArgumentError(f"expected a finite {name}, got {value!r}")
    return out


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"expected {name} to be an integer, got {type(value).__name__} {value!r}")
    out = int(value)
    if not low <= out <= MAX_COUNT:
        raise ArgumentError(f"expected {low} <= {name} <= {MAX_COUNT}, got {out}")
    return out


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"expected {name} to be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


@dataclass(frozen=True)
class RelabelSettings:
    """How to relabel: the paper's rule with its step, cap and stopping conditions.

    ``alpha``: each step moves a pixel channel by alpha/255 of a grey level (the paper: 50).
    ``max_distortion``: the cap on the RMS distortion; None for no cap (the paper: 0.01 in its sweep).
    ``max_iter``: steps before giving up. ``batch_size``: samples relabelled together.
    ``ensure_uint8``: success also needs the saved 8-bit image to carry the target.
    ``confidence``: success also needs the target's probability to reach it (0: top-1 is enough).
    ``clip``: keep pixels inside 0..255.
    """

    alpha: float = 50.0
    max_distortion: Optional[float] = 0.01
    max_iter: int = 1000
    batch_size: int = 8
    ensure_uint8: bool = False
    confidence: float = 0.0
    clip: bool = True

    def __post_init__(self) -> None:
        alpha = _number("alpha", self.alpha)
        if not 0.0 < alpha <= MAX_ALPHA:
            raise ArgumentError(f"expected 0 < alpha <= {MAX_ALPHA:g} (one step across the whole range), got {alpha:g}")
        cap = self.max_distortion
        if cap is not None:
            cap = _number("max_distortion", cap)
            if not cap > 0.0:
                raise ArgumentError(f"expected max_distortion > 0, or None for no cap, got {cap:g}")
        confidence = _number("confidence", self.confidence)
        if not 0.0 <= confidence < 1.0:
            raise ArgumentError(f"expected 0 <= confidence < 1, got {confidence:g}")
        # Normalised to plain Python values: records compare equal and store as JSON whatever came in.
        normal = dict(
            alpha=alpha,
            max_distortion=cap,
            max_iter=_count("max_iter", self.max_iter, 0),
            batch_size=_count("batch_size", self.batch_size, 1),
            ensure_uint8=_flag("ensure_uint8", self.ensure_uint8),
            confidence=confidence,
            clip=_flag("clip", self.clip),
        )
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> "RelabelSettings":
        """A copy with some settings changed (checked like a new record)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ArgumentError(f"unknown relabelling setting {unknown[0]!r}; expected one of {', '.join(self.names())}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name, JSON-ready."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RelabelSettings":
        """The record of :meth:`as_dict`; unknown or missing names are an ArgumentError."""
        names = set(cls.names())
        if set(values) != names:
            odd = sorted(set(values) ^ names)
            raise ArgumentError(f"expected the settings {', '.join(sorted(names))}; {odd[0]!r} is missing or unknown")
        return cls(**values)

    @staticmethod
    def names() -> list[str]:
        return [f.name for f in dataclasses.fields(RelabelSettings)]
