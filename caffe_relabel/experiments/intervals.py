"""95% intervals for what the experiments measure: Wilson for rates, a seeded bootstrap for means.

A rate of 10 out of 12 reads as "83.3%" but could be anything from about
55% to 95%; the report prints every number with its interval so a small run
is not mistaken for a disagreement with the paper. Where n >= 2 an interval
is always finite; a mean of one value has none (NaN here, null in JSON).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from caffe_relabel.errors import ArgumentError

#: The coverage of every interval in the report.
CONFIDENCE = 0.95

#: Above this many values the bootstrap's resamples cost more than they tell:
#: the mean is then normal to well within the interval's own error, and
#: mean +- z * standard error is used instead.
BOOTSTRAP_MAX_N = 20_000

#: Bootstrap resamples (scipy's default) and its fixed seed: the same values give the same interval.
RESAMPLES = 9999
SEED = 0


@dataclass(frozen=True)
class Interval:
    """An estimate and its interval; low and high are NaN when nothing (or, for a mean, one value) was measured."""

    value: float
    low: float
    high: float


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ArgumentError(f"expected a confidence between 0 and 1, got {confidence}")
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The Wilson score interval of ``successes`` out of ``n`` (right near 0% and 100%, where the normal one is not)."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ArgumentError(f"expected 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes one bound is exactly 0 or 1; rounding would leave it a hair off.
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == n else centre + half
    return Interval(p, low, high)


def rate(flags: Sequence[bool], confidence: float = CONFIDENCE) -> Interval:
    """The Wilson interval of the fraction of true flags."""
    flags = [bool(f) for f in flags]
    return wilson(sum(flags), len(flags), confidence)


def mean(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = SEED) -> Interval:
    """The mean and its bootstrap (BCa) interval; identical values have a zero-width one, a single value none."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    m = float(v.mean())
    if v.size == 1:
        return Interval(m, math.nan, math.nan)  # one value says nothing of the spread
    if float(v.min()) == float(v.max()):
        return Interval(m, m, m)  # nothing varies: every resample has this mean
    if v.size > BOOTSTRAP_MAX_N:
        return normal(m, float(v.std(ddof=1)), int(v.size), confidence)
    from scipy.stats import bootstrap

    _z(confidence)  # the same range check as the other intervals
    for method in ("BCa", "percentile"):  # BCa degenerates on a few distinct values
        with warnings.catch_warnings():  # it says so with warnings; the percentile interval then takes over
            warnings.simplefilter("ignore")
            ci = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method=method,
                           random_state=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
        if math.isfinite(low) and math.isfinite(high):
            return Interval(m, low, high)
    return normal(m, float(v.std(ddof=1)), int(v.size), confidence)  # values that are not all finite


def normal(m: float, sample_std: float, n: int, confidence: float = CONFIDENCE) -> Interval:
    """mean +- z * standard error: for large n, and for means known only by their moments (an SQL summary)."""
    if n < 2:
        return Interval(m, math.nan, math.nan) if n else Interval(math.nan, math.nan, math.nan)
    half = _z(confidence) * sample_std / math.sqrt(n)
    return Interval(m, m - half, m + half)


def format_rate(i: Interval, n: int) -> str:
    """``83.3% [55.2%, 95.3%] (n=12)``."""
    if n == 0:
        return "n/a (n=0)"
    return f"{i.value:.1%} [{i.low:.1%}, {i.high:.1%}] (n={n})"


def format_mean(i: Interval, n: int, digits: int = 5) -> str:
    """``0.00814 [0.00712, 0.00901] (n=30)``; one value has no interval."""
    if n == 0:
        return "n/a (n=0)"
    if n == 1 or not (math.isfinite(i.low) and math.isfinite(i.high)):
        return f"{i.value:.{digits}f} (n={n}, no interval)"
    return f"{i.value:.{digits}f} [{i.low:.{digits}f}, {i.high:.{digits}f}] (n={n})"
