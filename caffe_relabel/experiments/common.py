"""What every experiment shares: opening a model by name, summary statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from caffe_relabel.models.model import Model, load_model
from caffe_relabel.models.options import ModelOptions
from caffe_relabel.relabel.settings import RelabelSettings

#: A model given by zoo name, "random:<zoo name>" (seeded random weights), by its options, or already loaded.
ModelRef = Union[str, ModelOptions, Model]

#: The experiments of Sections 3 and 4 iterate until the target label is reached, with no cap.
UNCAPPED = RelabelSettings(max_distortion=None)


def open_model(model: ModelRef, backend: str = "auto") -> Model:
    """A loaded model from a zoo name or ``random:<zoo name>`` (on ``backend``), ModelOptions, or a :class:`Model`."""
    if isinstance(model, Model):
        return model
    if isinstance(model, ModelOptions):
        return load_model(model)
    return load_model(ModelOptions(model=model, backend=backend))


@dataclass(frozen=True)
class Stats:
    """Mean and spread of a list of numbers, and the mean's 95% bootstrap interval (NaN when empty)."""

    n: int
    mean: float
    std: float
    min: float
    max: float
    low: float = math.nan  # the mean's 95% interval (intervals.mean)
    high: float = math.nan

    @classmethod
    def of(cls, values: Sequence[float]) -> "Stats":
        from caffe_relabel.experiments.intervals import mean

        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        ci = mean(v)
        return cls(int(v.size), float(v.mean()), float(v.std()), float(v.min()), float(v.max()), ci.low, ci.high)


def top_k(probs: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` most probable classes as (index, probability), best first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in order]


def entropy(probs: np.ndarray) -> float:
    """Shannon entropy in nats: the paper's "uncertainty" of a label."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-30, 1.0)
    return float(-(p * np.log(p)).sum())
