"""One evaluation harness for everything that acts in a system: solvers, heuristics and trained policies.

`run_episodes` plays one seeded episode per seed through the scenario's system (`System.run_episode`) and
returns one row per seed: the label (the `solver` column), the seed, the slots, the system's reported
metrics and the trial counts behind its rates (`System.rate_trials`). The same seed gives every policy the same
episode (nodes, channels and requests are drawn from it, not from the decisions), so rows of two policies with
the same seeds are paired. Each system states its policy protocol beside its episode (seed 001:
`sim.rollout.Policy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.sim.scenario import Scenario
from edgeprof.stats import mean_interval, rate_interval

MakePolicy = Callable[[Any, int], Any]  # (the episode's environment, seed) -> a policy of the system's protocol


def load_workload(scenario: Scenario) -> Any:
    """The scenario's workload, checked against the scenario (`System.check`): every command loads it here."""
    system = scenario.system
    workload = system.load_workload(scenario)
    if system.check is not None:
        system.check(scenario, workload)
    return workload


def parse_seeds(text: str) -> list[int]:
    """Comma-separated non-negative integers (episode seeds)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EdgeprofError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise EdgeprofError("--seeds needs at least one seed")
    outside = [seed for seed in seeds if not 0 <= seed < 2 ** 63]
    if outside:
        raise EdgeprofError(f"--seeds must lie in [0, 2**63), got {outside[0]}")
    return seeds


def run_episodes(label: str, scenario: Scenario, workload: Any, make_policy: MakePolicy, slots: int,
                 seeds: Sequence[int], progress: Callable[[int, int], None] | None = None,
                 extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One episode of `slots` slots per seed with the policy `make_policy(env, seed)`: one row per seed with the
    system's reported metrics and its rates' trial counts, labelled `label`, and the `extra` results the episode
    has (e.g. per-user means)."""
    if slots < 1 or not seeds:
        raise EdgeprofError(f"an evaluation needs at least 1 slot and 1 seed, got {slots} slots and seeds {seeds}")
    system = scenario.system
    rows = []
    for index, seed in enumerate(seeds):
        metrics = system.run_episode(scenario, workload, make_policy, slots, seed)
        rows.append({"solver": label, "seed": seed, "slots": slots, **{key: metrics[key] for key in system.metrics},
                     **{key: metrics[key] for key in system.rate_trials.values()},
                     **{key: metrics[key] for key in extra if key in metrics}})
        if progress:
            progress(index + 1, len(seeds))
    return rows


def summarise(rows: Sequence[dict[str, Any]], metrics: Sequence[str],
              bounds: Mapping[str, tuple[float, float]] | None = None,
              rate_trials: Mapping[str, str] | None = None) -> dict[str, tuple[Any, Any, Any, int]]:
    """Each metric's mean and 95% interval over the rows (seeds) that define it (`metric_interval`: a rate with
    its trial counts in `rate_trials`, `System.rate_trials`, gets a binomial interval; other metrics are clipped
    to their range in `bounds`, `System.bounded_metrics`), and how many rows defined it: a row's None (a mean over
    nothing, e.g. delay per completed task with none completed) is left out; no Student-t interval from one seed
    (`stats.mean_interval`), no mean from none."""
    bounds, rate_trials = bounds or {}, rate_trials or {}
    summary = {}
    for key in metrics:
        defined = [row for row in rows if row.get(key) is not None]
        values = [row[key] for row in defined]
        trials = [row.get(rate_trials[key]) for row in defined] if key in rate_trials else None
        summary[key] = (*metric_interval(values, trials, bounds.get(key)), len(values)) if values \
            else (None, None, None, 0)
    return summary


def metric_interval(values: Sequence[float], trials: Sequence[float | None] | None = None,
                    bounds: tuple[float, float] | None = None) -> tuple[Any, Any, Any]:
    """One metric's estimate and 95% interval over samples (seeds). A rate whose every sample has its number of
    trials (`trials`) gets the binomial interval of all its trials together (`stats.rate_interval`: the ratio
    estimate, which weighs each seed by its trials). Anything else gets the Student-t interval of the mean
    clipped to `bounds` (`stats.mean_interval`); so does a rate from rows that do not all carry its counts (e.g.
    a results.csv written before rows recorded them) or that count no trial at all."""
    if trials is not None and all(count is not None for count in trials) and sum(trials) > 0:
        return rate_interval([value * count for value, count in zip(values, trials, strict=True)], trials)
    return mean_interval(values, bounds)
