"""The one interval edgeprof reports: the mean of independent samples (seeds, images, runs) with its two-sided
95% Student-t confidence interval, so that a table, a leakage score and a shaded training curve agree.

One sample has no spread to estimate, so it has no interval (None, printed as "n = 1"), never a zero-width one
that would read as certainty. A metric that cannot leave a range (a rate in [0, 1], a delay >= 0) has its
interval clipped to that range (`bounds`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def mean_interval(samples: Any, bounds: tuple[float, float] | None = None) -> tuple[Any, Any, Any]:
    """Mean over the first axis of `samples`, and the low and high ends of its 95% Student-t interval.

    A list of numbers gives three floats; an array of shape (runs, ...) gives three arrays of shape (...), one
    interval per position (a training curve's band). A single sample gives its mean and None for both ends.
    """
    values = np.asarray(samples, dtype=float)
    count = values.shape[0]
    mean = values.mean(axis=0)
    if count < 2:
        return _plain(mean), None, None
    from scipy.stats import t

    half = float(t.ppf(0.975, count - 1)) * values.std(axis=0, ddof=1) / math.sqrt(count)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return _plain(mean), _plain(low), _plain(high)


def format_interval(low: float | None, high: float | None, digits: int = 4) -> str:
    """An interval for a table: "low .. high", or "n = 1" when there is none."""
    if low is None or high is None:
        return "n = 1"
    return f"{low:.{digits}g} .. {high:.{digits}g}"


def _plain(value: np.ndarray) -> Any:
    """A number stays a Python float (JSON, printing); an array stays an array."""
    return float(value) if np.ndim(value) == 0 else value
