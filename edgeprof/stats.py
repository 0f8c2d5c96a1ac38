"""The one interval edgeprof reports: the mean of independent samples (seeds, images, runs) with its two-sided
95% Student-t confidence interval, so that a table, a leakage score and a shaded training curve agree."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def mean_interval(samples: Any) -> tuple[Any, Any, Any]:
    """Mean over the first axis of `samples`, and the low and high ends of its 95% Student-t interval.

    A list of numbers gives three floats; an array of shape (runs, ...) gives three arrays of shape (...), one
    interval per position (a training curve's band). A single sample has no spread to estimate: its interval is
    the mean itself.
    """
    values = np.asarray(samples, dtype=float)
    count = values.shape[0]
    mean = values.mean(axis=0)
    if count < 2:
        return _plain(mean), _plain(mean), _plain(mean)
    from scipy.stats import t

    half = float(t.ppf(0.975, count - 1)) * values.std(axis=0, ddof=1) / math.sqrt(count)
    return _plain(mean), _plain(mean - half), _plain(mean + half)


def _plain(value: np.ndarray) -> Any:
    """A number stays a Python float (JSON, printing); an array stays an array."""
    return float(value) if np.ndim(value) == 0 else value
