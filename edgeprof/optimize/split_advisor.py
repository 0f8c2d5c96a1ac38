"""Where to split one model for one device, one edge server and one link: Neurosurgeon's question.

The costs come from `edgeprof.sim.split` (the one cost formula); this module only compares them: the arg-min
of an objective among the points that meet the constraints, the Pareto front of (latency, device energy,
leakage), and how the best point moves as the uplink rate changes.

Objectives, all minimised:

- `latency`: end-to-end latency (s); `energy`: device energy, compute + radio (J); `privacy`: leakage (SSIM of
  the input an attacker reconstructs from what is uploaded);
- `weighted`: w_latency x latency [s] + w_energy x energy [J] + w_privacy x SSIM, weights per SI unit, as in
  seed 001's cost (eq. 12).

Ties go to the lower latency, then the lower device energy, then the lower z.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output
from edgeprof.sim.split import Link, PointCost, SplitProblem, link_costs
from edgeprof.units import format_bitrate, format_duration, format_energy

REPORT_SCHEMA = "edgeprof.split/1"
OBJECTIVES = ("latency", "energy", "privacy", "weighted")
QUANTITY_FIELDS = {"latency": "latency_s", "energy": "device_energy_j", "privacy": "leakage"}


def _leakage_text(value: float) -> str:
    return f"{value:.3g}"


@dataclass(frozen=True)
class Constraints:
    """Upper limits every chosen point must meet; None means no limit."""

    max_latency_s: float | None = None
    max_energy_j: float | None = None
    max_leakage: float | None = None

    def limits(self) -> list[tuple[str, str, float, Callable[[float], str]]]:
        """(PointCost field, label, limit, formatter) of each limit that is set."""
        table = (("latency_s", "latency", self.max_latency_s, format_duration),
                 ("device_energy_j", "device energy", self.max_energy_j, format_energy),
                 ("leakage", "leakage", self.max_leakage, _leakage_text))
        return [(name, label, limit, fmt) for name, label, limit, fmt in table if limit is not None]


class InfeasibleError(EdgeprofError):
    """No point meets the constraints; `closest` is the point that misses them by the least."""

    def __init__(self, message: str, closest: PointCost) -> None:
        super().__init__(message)
        self.closest = closest


def parse_weights(text: str) -> dict[str, float]:
    """`latency=1,energy=0.5,privacy=2` -> {"latency": 1.0, "energy": 0.5, "privacy": 2.0}."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in QUANTITY_FIELDS:
            raise EdgeprofError(f"weights: cannot read {item.strip()!r} in {text!r}; write e.g. "
                                "latency=1,energy=0.5,privacy=2 (names: latency, energy, privacy)")
        if name in weights:
            raise EdgeprofError(f"weights: {name} is given twice in {text!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise EdgeprofError(f"weights: {value.strip()!r} is not a number in {text!r}") from None
        if not (math.isfinite(weights[name]) and weights[name] >= 0):
            raise EdgeprofError(f"weights: {name} must be a finite number >= 0, got {value.strip()!r}")
    return weights


def objective_weights(objective: str, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """The weight of each quantity in the objective (zero weights dropped); a single objective is a weight of 1."""
    if objective not in OBJECTIVES:
        raise EdgeprofError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if objective != "weighted":
        if weights:
            raise EdgeprofError(f"weights apply to the weighted objective only, not to {objective}")
        return {objective: 1.0}
    if not weights:
        raise EdgeprofError("the weighted objective needs weights, e.g. latency=1,energy=0.5,privacy=2")
    unknown = set(weights) - set(QUANTITY_FIELDS)
    if unknown:
        raise EdgeprofError(f"unknown weight {sorted(unknown)[0]!r}; names: latency, energy, privacy")
    chosen = {name: float(w) for name, w in weights.items() if w != 0}
    if not chosen:
        raise EdgeprofError("the weighted objective needs at least one weight above 0")
    return chosen


def check_available(problem: SplitProblem, weights: Mapping[str, float], constraints: Constraints) -> None:
    """Refuse, with the reason, an objective or limit that needs device energy or leakage the profiles lack."""
    needs = [("energy" in weights, "device energy", "device_energy", "energy objective or weight"),
             (constraints.max_energy_j is not None, "device energy", "device_energy", "energy limit"),
             ("privacy" in weights, "per-point leakage (SSIM)", "leakage", "privacy objective or weight"),
             (constraints.max_leakage is not None, "per-point leakage (SSIM)", "leakage", "leakage limit")]
    for needed, quantity, key, what in needs:
        if needed and key in problem.missing:
            raise EdgeprofError(f"the {what} needs {quantity}, which is unavailable: {problem.missing[key]}")


def objective_value(cost: PointCost, weights: Mapping[str, float]) -> float:
    """Sum of weight x quantity (seconds, joules, SSIM)."""
    return sum(weight * getattr(cost, QUANTITY_FIELDS[name]) for name, weight in weights.items())


def constraint_excess(cost: PointCost, constraints: Constraints) -> dict[str, float]:
    """How far `cost` is over each limit it breaks (field name -> amount in the field's unit)."""
    return {name: getattr(cost, name) - limit for name, _, limit, _ in constraints.limits()
            if getattr(cost, name) > limit}


def _tie_key(cost: PointCost, weights: Mapping[str, float]) -> tuple[float, ...]:
    energy = cost.device_energy_j if cost.device_energy_j is not None else 0.0
    return objective_value(cost, weights), cost.latency_s, energy, cost.z


def _relative_excess(cost: PointCost, constraints: Constraints) -> float:
    """The largest miss of any limit, relative to the limit (absolute where the limit is 0)."""
    worst = 0.0
    for name, _, limit, _ in constraints.limits():
        over = getattr(cost, name) - limit
        worst = max(worst, over / limit if limit > 0 else over)
    return worst


def _infeasible(costs: Sequence[PointCost], constraints: Constraints, where_tried: str = "") -> InfeasibleError:
    closest = min(costs, key=lambda c: (_relative_excess(c, constraints), c.z))
    wanted = " and ".join(f"{label} <= {fmt(limit)}" for _, label, limit, fmt in constraints.limits())
    misses = ", ".join(f"{label} {fmt(getattr(closest, name))} ({fmt(getattr(closest, name) - limit)} over)"
                       for name, label, limit, fmt in constraints.limits() if getattr(closest, name) > limit)
    where = f"after {closest.after}" if closest.after else "the input"
    return InfeasibleError(f"no partition point meets {wanted}{where_tried}; the closest is z={closest.z} ({where}) "
                           f"with {misses}", closest)


def choose_split(costs: Sequence[PointCost], weights: Mapping[str, float],
                 constraints: Constraints = Constraints()) -> PointCost:
    """The point of least objective among those that meet every limit; `InfeasibleError` if none does."""
    feasible = [cost for cost in costs if not constraint_excess(cost, constraints)]
    if not feasible:
        raise _infeasible(costs, constraints)
    return min(feasible, key=lambda cost: _tie_key(cost, weights))


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def non_dominated(vectors: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the vectors no other vector dominates (all <=, one <), all minimised; equal vectors all stay.

    In lexicographic order a dominating vector always comes first, so each vector only needs checking against
    the front found so far (anything dominated by a dropped vector is dominated by the front member that
    dropped it).
    """
    front: list[int] = []
    for index in sorted(range(len(vectors)), key=lambda i: tuple(vectors[i])):
        if not any(_dominates(vectors[kept], vectors[index]) for kept in front):
            front.append(index)
    return sorted(front)


def pareto_dimensions(costs: Sequence[PointCost]) -> list[str]:
    """The quantities of (latency, device energy, leakage) that every point has."""
    return [name for name in QUANTITY_FIELDS.values() if all(getattr(c, name) is not None for c in costs)]


def pareto_front(costs: Sequence[PointCost]) -> list[PointCost]:
    """The points that no other point beats on every available quantity of (latency, device energy, leakage)."""
    dimensions = pareto_dimensions(costs)
    return [costs[i] for i in non_dominated([[getattr(c, name) for name in dimensions] for c in costs])]


@dataclass(frozen=True)
class SplitAdvice:
    """Every point's cost over one link, which points are feasible and Pareto-optimal, and the best one."""

    link: Link
    objective: str
    weights: dict[str, float]
    constraints: Constraints
    costs: list[PointCost]
    best: PointCost
    pareto: list[PointCost]

    @property
    def pareto_z(self) -> list[int]:
        return [cost.z for cost in self.pareto]


def advise(problem: SplitProblem, link: Link, objective: str = "latency", weights: Mapping[str, float] | None = None,
           constraints: Constraints = Constraints()) -> SplitAdvice:
    """The best point for `objective` under `constraints` over `link`, with every point's cost and the Pareto front."""
    chosen = objective_weights(objective, weights)
    check_available(problem, chosen, constraints)
    costs = link_costs(problem, link)
    best = choose_split(costs, chosen, constraints)
    return SplitAdvice(link, objective, chosen, constraints, costs, best, pareto_front(costs))


@dataclass(frozen=True)
class UplinkSweep:
    """The costs and the best point at each uplink rate (None where no point meets the constraints)."""

    objective: str
    weights: dict[str, float]
    constraints: Constraints
    links: list[Link]
    costs: list[list[PointCost]]
    best: list[PointCost | None]


def log_spaced(low: float, high: float, count: int) -> list[float]:
    """`count` rates from `low` to `high`, evenly spaced on a log scale."""
    if count < 2 or not 0 < low < high:
        raise EdgeprofError(f"a sweep needs at least 2 rates and 0 < low < high, got {count} from {low} to {high}")
    return [float(rate) for rate in np.geomspace(low, high, count)]


def sweep_uplink(problem: SplitProblem, uplinks_bps: Sequence[float], link: Link, objective: str = "latency",
                 weights: Mapping[str, float] | None = None, constraints: Constraints = Constraints()) -> UplinkSweep:
    """The best point at each uplink rate; the other link settings (downlink, RTT, tx power) come from `link`.

    A `link.downlink_bps` of None follows the uplink at every rate.
    """
    chosen = objective_weights(objective, weights)
    check_available(problem, chosen, constraints)
    links = [replace(link, uplink_bps=rate) for rate in uplinks_bps]
    all_costs, best = [], []
    for each in links:
        costs = link_costs(problem, each)
        all_costs.append(costs)
        try:
            best.append(choose_split(costs, chosen, constraints))
        except InfeasibleError:
            best.append(None)
    if all(point is None for point in best):
        fastest = max(range(len(links)), key=lambda i: links[i].uplink_bps)
        at = f" at any uplink rate of the sweep (at {format_bitrate(links[fastest].uplink_bps)})"
        raise _infeasible(all_costs[fastest], constraints, at)
    return UplinkSweep(objective, chosen, constraints, links, all_costs, best)


def _link_record(link: Link) -> dict[str, Any]:
    return {"uplink_bps": link.uplink_bps, "downlink_bps": link.result_downlink_bps, "rtt_s": link.rtt_s,
            "tx_power_w": link.tx_power_w}


def _constraints_record(constraints: Constraints) -> dict[str, float | None]:
    return {"max_latency_s": constraints.max_latency_s, "max_energy_j": constraints.max_energy_j,
            "max_leakage": constraints.max_leakage}


def split_report(problem: SplitProblem, advice: SplitAdvice | None = None,
                 sweep: UplinkSweep | None = None) -> dict[str, Any]:
    """The JSON document of `edgeprof split` (`edgeprof.split/1`): SI units, keys name the unit."""
    from edgeprof import __version__

    doc: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "edgeprof_version": __version__,
        "model": problem.model,
        "batch": problem.batch,
        "basis": problem.basis,
        "unavailable": problem.missing,
        "notes": list(problem.notes),
    }
    if advice is not None:
        pareto = set(advice.pareto_z)
        points = []
        for cost in advice.costs:
            row = cost.as_dict()
            row["objective"] = objective_value(cost, advice.weights)
            row["feasible"] = not constraint_excess(cost, advice.constraints)
            row["pareto"] = cost.z in pareto
            points.append(row)
        doc["advice"] = {
            "link": _link_record(advice.link),
            "objective": {"name": advice.objective, "weights": advice.weights},
            "constraints": _constraints_record(advice.constraints),
            "best": advice.best.as_dict(),
            "pareto_front": {"dimensions": pareto_dimensions(advice.costs), "z": advice.pareto_z},
            "points": points,
        }
    if sweep is not None:
        doc["sweep"] = {
            "objective": {"name": sweep.objective, "weights": sweep.weights},
            "constraints": _constraints_record(sweep.constraints),
            "links": [_link_record(link) for link in sweep.links],
            "best": [None if best is None else best.as_dict() for best in sweep.best],
            "strategies": [{"z": cost.z, "after": cost.after,
                            "latency_s": [costs[cost.z].latency_s for costs in sweep.costs]}
                           for cost in sweep.costs[0]],
        }
    return doc


def _title(problem: SplitProblem) -> str:
    model = problem.model
    shape = "x".join(map(str, model["input_shape"]))
    return f"{model['name']} ({shape}, {model['dtype']}, batch {problem.batch})"


def _point_label(cost: PointCost) -> str:
    return f"z={cost.z} ({cost.after or 'input'})"


def save_png(figure: Any, path: str | Path) -> None:
    """Write a matplotlib figure as a PNG to `path`, which may be the temporary file of `atomic_outputs`."""
    figure.savefig(path, dpi=150, format="png")


def plot_sweep(problem: SplitProblem, sweep: UplinkSweep, path: str | Path, note: str = "") -> None:
    """`sweep_figure` written to `path` as a PNG, atomically."""
    with atomic_output(path) as tmp:
        save_png(sweep_figure(problem, sweep, note), tmp)


def sweep_figure(problem: SplitProblem, sweep: UplinkSweep, note: str = "") -> Any:
    """Latency of every split point against the uplink rate, with the best point annotated; `note` is added to
    the title (e.g. how the edge profile was made). A figure outside pyplot: nothing to close."""
    import matplotlib
    from matplotlib.figure import Figure

    rates_mbps = [link.uplink_bps / 1e6 for link in sweep.links]
    ever_best = sorted({best.z for best in sweep.best if best is not None})
    colors = matplotlib.colormaps["tab10"]
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    axis = fig.subplots()
    others_labelled = False
    for z, cost in enumerate(sweep.costs[0]):
        latency_ms = [costs[z].latency_s * 1e3 for costs in sweep.costs]
        if z in ever_best:
            axis.plot(rates_mbps, latency_ms, "-", lw=1.6, color=colors(ever_best.index(z) % 10),
                      label=_point_label(cost))
        else:
            axis.plot(rates_mbps, latency_ms, "-", lw=0.7, color="0.75",
                      label=None if others_labelled else "other split points")
            others_labelled = True
    best_ms = [np.nan if best is None else best.latency_s * 1e3 for best in sweep.best]
    axis.plot(rates_mbps, best_ms, "o", color="black", markersize=3.5, label=f"best ({sweep.objective})")
    start = 0
    for index in range(1, len(sweep.best) + 1):
        if index < len(sweep.best) and _same_best(sweep.best[index], sweep.best[start]):
            continue
        if sweep.best[start] is not None:
            middle = (start + index - 1) // 2
            axis.annotate(_point_label(sweep.best[start]), (rates_mbps[middle], best_ms[middle]), xytext=(0, -14),
                          textcoords="offset points", ha="center", fontsize=8, fontweight="bold")
        start = index
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("uplink rate (Mbit/s, log scale)")
    axis.set_ylabel("end-to-end latency (ms, log scale)")
    link = sweep.links[0]
    downlink = "= uplink" if link.downlink_bps is None else format_bitrate(link.downlink_bps)
    axis.set_title(f"{_title(problem)}: where to split\ndevice: {problem.basis['device_latency']}, edge: "
                   f"{problem.basis['edge_latency']}{note}; downlink {downlink}, RTT {format_duration(link.rtt_s)}",
                   fontsize=9)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=7, loc="upper right")
    return fig


def _same_best(a: PointCost | None, b: PointCost | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.z == b.z)


def advice_figure(problem: SplitProblem, advice: SplitAdvice) -> Any:
    """Every point's latency as stacked parts (device, upload, RTT, edge, download), the best point marked."""
    from matplotlib.figure import Figure

    z = [cost.z for cost in advice.costs]
    fig = Figure(figsize=(max(6.0, 0.3 * len(z) + 2.5), 4.5), layout="constrained")
    axis = fig.subplots()
    bottom = np.zeros(len(z))
    for name, label in (("device_s", "device"), ("upload_s", "upload"), ("rtt_s", "RTT"), ("edge_s", "edge"),
                        ("download_s", "download")):
        part = np.array([getattr(cost, name) * 1e3 for cost in advice.costs])
        axis.bar(z, part, bottom=bottom, label=label, width=0.8)
        bottom += part
    best = advice.best
    axis.annotate(f"best ({advice.objective}): z={best.z}", (best.z, best.latency_s * 1e3), xytext=(0, 12),
                  textcoords="offset points", ha="center", fontsize=8, fontweight="bold",
                  arrowprops={"arrowstyle": "->"})
    axis.set_xlabel("partition point z (layers on the device)")
    axis.set_ylabel("end-to-end latency (ms)")
    if len(z) <= 40:
        axis.set_xticks(z, ["input"] + [cost.after or "" for cost in advice.costs[1:]], rotation=75, fontsize=7)
    link = advice.link
    axis.set_title(f"{_title(problem)}: uplink {format_bitrate(link.uplink_bps)}, downlink "
                   f"{format_bitrate(link.result_downlink_bps)}, RTT {format_duration(link.rtt_s)}", fontsize=9)
    axis.legend(fontsize=7, loc="upper left")
    axis.grid(alpha=0.3, axis="y")
    return fig
