"""Benchmark: how often each 95% interval for a rate covers the true rate, and how wide it is, over seeds.

Why: issue 28 replaced the Student-t interval of per-seed rates (clipped to [0, 1]) by `edgeprof.stats.rate_interval`,
a Wilson interval at Korn & Graubard's effective number of trials with their degrees-of-freedom correction. This
simulates what that choice is for: m seeds, each an episode of n requests whose success probability is the true
rate `mu` plus a seed-to-seed difference (a beta distribution with standard deviation `sd`; 0: pure binomial
noise), and counts how often each interval holds `mu`. Compared:

- `student_t_clipped`: edgeprof's interval before issue 28 (`stats.mean_interval(rates, (0, 1))`);
- `wilson_kg`: `stats.rate_interval`, edgeprof's interval since;
- `wilson_kg_no_df`: the same without the degrees-of-freedom correction (n_eff = p (1 - p) / var, at most N);
- `wilson_pooled`: the Wilson interval of all N = m n requests as if independent, blind to the seeds' spread.

    python benchmarks/rate_intervals.py [--repeats 2000] [-o benchmarks/results/rate_intervals.json]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from reporting import machine, write_result

from edgeprof.stats import _wilson, mean_interval, rate_interval

RESULTS = Path(__file__).parent / "results"
Z = 1.959963984540054
# (true rate, seed-to-seed standard deviation): pure binomial noise, and seeds that differ
SETTINGS = ((0.85, 0.0), (0.85, 0.1), (0.98, 0.0), (0.98, 0.01))
SEEDS = (3, 5, 10)
REQUESTS = (24, 600)  # `experiment run` smoke (4 slots x 6 users); `edgeprof solve --scenario small` (100 x 6)


def without_df_correction(successes: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    total = trials.sum()
    rate = successes.sum() / total
    variance = len(trials) / (len(trials) - 1) * np.sum((successes - rate * trials) ** 2) / total ** 2
    effective = total if variance == 0 or rate in (0.0, 1.0) else min(total, rate * (1 - rate) / variance)
    return _wilson(float(rate), float(effective), Z)


def intervals(successes: np.ndarray, trials: np.ndarray) -> dict[str, tuple[float, float]]:
    _, t_low, t_high = mean_interval(successes / trials, (0.0, 1.0))
    return {"student_t_clipped": (t_low, t_high), "wilson_kg": rate_interval(successes, trials)[1:],
            "wilson_kg_no_df": without_df_correction(successes, trials),
            "wilson_pooled": _wilson(float(successes.sum() / trials.sum()), float(trials.sum()), Z)}


def simulate(mu: float, sd: float, seeds: int, requests: int, repeats: int, rng: np.random.Generator
             ) -> dict[str, Any]:
    trials = np.full(seeds, float(requests))
    covered: dict[str, int] = {}
    widths: dict[str, float] = {}
    for _ in range(repeats):
        if sd > 0:
            concentration = mu * (1 - mu) / sd ** 2 - 1
            chances = rng.beta(mu * concentration, (1 - mu) * concentration, size=seeds)
        else:
            chances = np.full(seeds, mu)
        successes = rng.binomial(requests, chances).astype(float)
        for name, (low, high) in intervals(successes, trials).items():
            covered[name] = covered.get(name, 0) + (low <= mu <= high)
            widths[name] = widths.get(name, 0.0) + (high - low)
    return {"mu": mu, "seed_sd": sd, "seeds": seeds, "requests_per_seed": requests,
            "coverage": {name: count / repeats for name, count in covered.items()},
            "mean_width": {name: total / repeats for name, total in widths.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000, help="simulated experiments per setting")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "rate_intervals.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    rows = [simulate(mu, sd, seeds, requests, args.repeats, rng)
            for (mu, sd), seeds, requests in itertools.product(SETTINGS, SEEDS, REQUESTS)]
    methods = list(rows[0]["coverage"])
    # the Monte-Carlo standard error of a coverage near 0.95 from `repeats` experiments
    error = math.sqrt(0.95 * 0.05 / args.repeats)
    summary = {name: {"lowest_coverage": min(row["coverage"][name] for row in rows),
                      "mean_coverage": float(np.mean([row["coverage"][name] for row in rows]))}
               for name in methods}
    write_result(args.output, {"repeats": args.repeats, "coverage_standard_error": error, "machine": machine(),
                               "wall_s": time.perf_counter() - start, "summary": summary, "settings": rows},
                 "summary")


if __name__ == "__main__":
    main()
