"""What every experiment shares: opening a model by name, summary statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from caffe_relabel.models.model import Model, load_model
from caffe_relabel.relabel.settings import RelabelSettings

#: A model given by zoo name, "random:<zoo name>" (seeded random weights), or already loaded.
ModelRef = Union[str, Model]

RANDOM_PREFIX = "random:"

#: The experiments of Sections 3 and 4 iterate until the target label is reached, with no cap.
UNCAPPED = RelabelSettings(max_distortion=None)


def open_model(model: ModelRef, backend: str = "auto") -> Model:
    """A loaded model from a zoo name, ``random:<zoo name>`` or a :class:`Model`."""
    if isinstance(model, Model):
        return model
    if model.startswith(RANDOM_PREFIX):
        from caffe_relabel.models import testmodels
        from caffe_relabel.models import zoo

        name = model[len(RANDOM_PREFIX):]
        prototxt, weights = testmodels.random_model(name)
        spec = zoo.get(name)
        loaded = load_model(prototxt, weights, input_spec=spec.input, backend=backend)
        return Model(loaded.classifier, spec.input, model, loaded.class_names, loaded.label_set)
    return load_model(model, backend=backend)


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
