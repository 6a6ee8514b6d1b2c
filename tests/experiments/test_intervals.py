"""The report's intervals against published values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from caffe_relabel.errors import ArgumentError
from caffe_relabel.experiments.common import Stats
from caffe_relabel.experiments.intervals import format_mean, format_rate, mean, normal, rate, wilson


@pytest.mark.parametrize("k, n, low, high", [
    # Wilson score intervals at 95% (Newcombe 1998, Table I; Agresti & Coull 1998).
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 12, 0.5520, 0.9530),
    (81, 263, 0.2553, 0.3662),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_matches_published_intervals(k, n, low, high):
    i = wilson(k, n)
    # Published to 4 decimals.
    assert i.value == pytest.approx(k / n) and i.low == pytest.approx(low, abs=1e-4) and i.high == pytest.approx(high, abs=1e-4)


def test_wilson_refuses_impossible_counts_and_is_nan_for_nothing():
    with pytest.raises(ArgumentError, match="successes <= n"):
        wilson(5, 4)
    assert math.isnan(wilson(0, 0).low)
    assert rate([True, False, True, True]) == wilson(3, 4)
    assert format_rate(wilson(10, 12), 12) == "83.3% [55.2%, 95.3%] (n=12)"


def test_bootstrap_mean_is_seeded_and_near_the_normal_interval():
    x = np.random.default_rng(1).normal(5.0, 2.0, 400)
    a, b = mean(x), mean(x)
    assert a == b  # seeded: the same values give the same interval
    half = 1.96 * x.std(ddof=1) / 20
    # For 400 normal values the bootstrap and t intervals agree to a few percent of their width.
    assert a.low == pytest.approx(x.mean() - half, abs=0.05 * half) and a.high == pytest.approx(x.mean() + half, abs=0.05 * half)


def test_bootstrap_mean_of_constant_values_has_zero_width_and_of_one_value_none():
    assert mean([0.3, 0.3, 0.3]) == mean([0.3, 0.3, 0.3]) and mean([0.3] * 3).low == mean([0.3] * 3).high == pytest.approx(0.3)
    # One value says nothing of the spread (issue 22: n < 2 gives null, not a zero-width interval).
    one = mean([2.0])
    assert one.value == 2.0 and math.isnan(one.low) and math.isnan(one.high) and math.isnan(mean([]).value)
    assert format_mean(one, 1) == "2.00000 (n=1, no interval)"


@pytest.mark.parametrize("values", [[0.1, 0.2], [0.1, 0.1, 0.2], [1e-300, 2e-300], [0.0, 1.0] * 2, [0.1] * 50 + [0.2],
                                    list(range(7)), [5.0, 5.0, 5.0, 5.0, 6.0]])
def test_a_mean_of_two_or_more_values_always_has_a_finite_interval(values):
    i = mean(values)
    assert math.isfinite(i.low) and math.isfinite(i.high) and i.low <= i.value <= i.high
    tol = 1e-12 * max(abs(v) for v in values)  # a bootstrap mean rounds: 0.1 + 0.1 + 0.2 is not 0.4
    assert min(values) - tol <= i.low and i.high <= max(values) + tol


def test_the_normal_interval_from_moments_matches_the_large_sample_one():
    x = np.random.default_rng(2).normal(1.0, 0.5, 30_000)
    assert normal(float(x.mean()), float(x.std(ddof=1)), x.size) == mean(x)
    assert math.isnan(normal(1.0, 0.0, 1).low) and normal(1.0, 0.0, 1).value == 1.0


def test_large_samples_use_the_normal_interval():
    x = np.random.default_rng(0).exponential(1.0, 30_000)
    i = mean(x)
    half = 1.959964 * x.std(ddof=1) / math.sqrt(x.size)
    assert i.low == pytest.approx(x.mean() - half, rel=1e-9) and i.high == pytest.approx(x.mean() + half, rel=1e-9)


def test_stats_carry_the_mean_interval():
    s = Stats.of([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.low < 3.0 < s.high and s.low >= 1.0 and s.high <= 5.0
