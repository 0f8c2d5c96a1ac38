"""The intervals edgeprof reports, two-sided at 95%, so that a table, a leakage score and a shaded training curve
agree.

- `mean_interval`: the mean of independent samples (seeds, images, runs) with its Student-t interval. One sample
  has no spread to estimate, so it has no interval (None, printed as "n = 1"), never a zero-width one that would
  read as certainty. A metric that cannot leave a range (a delay >= 0) has its interval clipped to that range
  (`bounds`).
- `rate_interval`: a rate (successes out of trials: requests served, tasks completed) from per-sample counts,
  with a Wilson interval at the samples' effective number of trials. It stays inside [0, 1], is never zero-width
  (every sample at 1 still leaves room below), narrows toward the binomial interval of all the trials as the
  seeds agree and widens as far as they disagree. A clipped Student-t interval does none of
  this: three seeds at 1.0 give [1, 1], whatever the number of requests behind them.
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


def rate_interval(successes: Any, trials: Any) -> tuple[float, float, float]:
    """A rate's ratio estimate sum(successes) / sum(trials) over samples (seeds' episodes) and its 95% interval.

    Method: the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it over Wald's, which
    leaves [0, 1], and over Clopper-Pearson's, which is needlessly wide) at an effective number of trials, Korn
    & Graubard's (1998) design-effect approach: the trials of one episode are not independent (a bad channel or
    deployment fails many requests at once), so their number overstates the information, and the seeds' spread
    says by how much. n_eff = p (1 - p) / var(p) with var(p) the ratio estimator's variance over the m samples,
    m / (m - 1) * sum((x_i - p n_i)^2) / N^2 (with equal trials: the per-sample rates' variance over m), scaled
    by (z / t_{m-1})^2 for a spread estimated from m samples (Korn & Graubard's degrees-of-freedom correction:
    without it, three seeds would get a normal quantile for a spread with two degrees of freedom, 2.2 times
    narrower than the Student-t interval it replaces), and at most N (design effect at least 1).

    So where the seeds' disagreement dominates, the interval is about as wide as the Student-t interval of the
    per-seed rates but stays in [0, 1]; where the seeds' rates vary less than binomial noise would make them,
    by the factor (z / t_{m-1})^2 in variance (a fifth for three seeds), it is the plain Wilson interval of
    sum(successes) out of N. With one sample, or samples all at one rate, there is no spread to estimate: the
    Wilson interval at N, which treats the trials as independent; a rate of 0 or 1 gets it too, so the interval
    is never zero-width. `benchmarks/rate_intervals.py` measures its coverage.

    Samples with no trials carry no information and are left out; successes need not be whole numbers.
    Raises ValueError on negative trials, successes outside [0, trials], mismatched lengths or no trials at all.
    """
    from scipy.stats import norm, t

    hits, counts = np.asarray(successes, dtype=float).ravel(), np.asarray(trials, dtype=float).ravel()
    if hits.shape != counts.shape:
        raise ValueError(f"successes and trials differ in length: {hits.size} and {counts.size}")
    if not (np.isfinite(counts).all() and np.isfinite(hits).all()) or (counts < 0).any():
        raise ValueError("trials must be finite and non-negative, successes finite")
    if ((hits < 0) | (hits > counts * (1 + 1e-12))).any():
        raise ValueError("successes must lie in [0, trials] for every sample")
    used = counts > 0
    hits, counts = np.minimum(hits[used], counts[used]), counts[used]
    total = counts.sum()
    if total <= 0:
        raise ValueError("a rate needs at least one trial")
    rate = float(hits.sum() / total)
    z = float(norm.ppf(0.975))
    effective = float(total)
    samples = counts.size
    if samples >= 2 and 0.0 < rate < 1.0:
        variance = samples / (samples - 1) * float(np.sum((hits - rate * counts) ** 2)) / total ** 2
        if variance > 0:
            degrees = (z / float(t.ppf(0.975, samples - 1))) ** 2
            effective = min(effective, rate * (1.0 - rate) / variance * degrees)
    low, high = _wilson(rate, float(effective), z)
    return rate, float(low), float(high)


def _wilson(rate: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson's score interval for a rate observed over `trials` (not necessarily whole) trials. It contains the
    rate and lies in [0, 1]; the clamps only undo rounding (at a rate of 1 the upper end would be 1 - 1e-16)."""
    spread = z * z / trials
    centre = (rate + spread / 2) / (1 + spread)
    half = z / (1 + spread) * math.sqrt(rate * (1 - rate) / trials + spread / (4 * trials))
    return min(max(0.0, centre - half), rate), max(min(1.0, centre + half), rate)


def format_interval(low: float | None, high: float | None, digits: int = 4) -> str:
    """An interval for a table: "low .. high", or "n = 1" when there is none."""
    if low is None or high is None:
        return "n = 1"
    return f"{low:.{digits}g} .. {high:.{digits}g}"


def _plain(value: np.ndarray) -> Any:
    """A number stays a Python float (JSON, printing); an array stays an array."""
    return float(value) if np.ndim(value) == 0 else value
