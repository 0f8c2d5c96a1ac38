"""`edgeprof experiment report OUTDIR`: an experiment's figure and its table against the paper.

Every (method, evaluation mode) is one line: the mean over replicate seeds of each metric at each value of the
varied field, with its 95% interval (`sim.evaluation.metric_interval`): Student-t, clipped to the metric's range
(none from one seed); a rate whose rows carry their trial counts, the binomial interval of all its trials (ratio
estimate; a results.csv written before rows carried counts gets the Student-t one). Trainers are
read in the sweep's modes: `sampled` (every action drawn, as the papers' training curves are), `greedy` and, where
they have a deployment layer, `deployment_drawn`; solvers in one (`solve`). The Markdown table puts each number the
paper's text gives beside the measured one (trainers: the sampled reading first) and their difference; metrics
without a paper number are reported as "trend only". Seed 001's Fig. 6 is read from per-user costs: the share of
users for whom each method is the cheapest, over the methods run on the same episodes. Where the experiment names
`references`, the report adds each method's paired differences to them: on the same episode (seed), in the same
mode, at the same value.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.experiments.definitions import Experiment, get_experiment
from edgeprof.files import atomic_outputs, read_json
from edgeprof.sim.evaluation import metric_interval
from edgeprof.stats import format_interval, mean_interval

PAPER_MODES = ("sampled", "solve", "greedy")  # the reading compared with the paper's numbers, in order


@dataclass(frozen=True)
class Line:
    """One method in one mode: per value of the varied field, each metric's (mean, low, high, n)."""

    method: str
    mode: str
    points: dict[str, dict[str, tuple[float, float | None, float | None, int]]]


def _value_key(text: str) -> str:
    return text or "(one setting)"


def read_results(outdir: Path) -> tuple[Experiment, str, list[dict[str, str]]]:
    """The experiment, the budget and the rows of results.csv in OUTDIR."""
    marker = outdir / "experiment.json"
    if not marker.is_file():
        raise EdgeprofError(f"{outdir} is not an experiment folder (no experiment.json): run one with "
                            "`edgeprof experiment run`")
    record = read_json(marker, "experiment record")
    experiment = get_experiment(record["experiment"])
    path = outdir / "results.csv"
    if not path.is_file():
        raise EdgeprofError(f"{outdir} has no results.csv yet")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise EdgeprofError(f"{path} has no finished runs yet")
    return experiment, record["budget"], rows


def lines(experiment: Experiment, budget: str, rows: list[dict[str, str]],
          metrics: tuple[str, ...] | None = None) -> list[Line]:
    """Each (method, mode) with its points in the order the experiment lists the varied field's values: the
    experiment's metrics, or `metrics` (results.csv's columns)."""
    order = [_value_key("" if experiment.vary is None else json.dumps(value)) for value in experiment.points(budget)]
    grouped: dict[tuple[str, str], dict[str, list[dict[str, str]]]] = defaultdict(
        lambda: {value: [] for value in order})
    for row in rows:
        grouped[(row["method"], row["mode"])].setdefault(_value_key(row["value"]), []).append(row)
    system = _system(experiment)
    result = []
    for (method, mode), by_value in grouped.items():
        points = {}
        for value, group in by_value.items():
            if not group:
                continue
            points[value] = {}
            for metric in metrics or experiment.metrics:
                defined = [row for row in group if row.get(metric) not in (None, "")]
                if defined:
                    count = system.rate_trials.get(metric)
                    trials = None if count is None else [_number(row.get(count)) for row in defined]
                    stats = metric_interval([float(row[metric]) for row in defined], trials,
                                            system.bounded_metrics.get(metric))
                    points[value][metric] = (*stats, len(defined))
        result.append(Line(method, mode, points))
    return result


def paired_differences(rows: list[dict[str, str]], reference: str, metrics: tuple[str, ...]
                       ) -> dict[tuple[str, str, str], dict[str, tuple[float, float | None, float | None, int]]]:
    """Per (method, mode, value) of every method but `reference`: each metric's difference to `reference`'s on the
    same episode (seed), in the same mode, at the same value; mean, 95% interval and number of pairs."""
    theirs = {(row["mode"], row["value"], row["seed"]): row for row in rows if row["method"] == reference}
    pairs: dict[tuple[str, str, str], list[tuple[dict[str, str], dict[str, str]]]] = defaultdict(list)
    for row in rows:
        other = theirs.get((row["mode"], row["value"], row["seed"]))
        if row["method"] != reference and other is not None:
            pairs[(row["method"], row["mode"], _value_key(row["value"]))].append((row, other))
    result = {}
    for key, group in pairs.items():
        result[key] = {}
        for metric in metrics:
            samples = [float(ours[metric]) - float(other[metric]) for ours, other in group
                       if ours.get(metric) not in (None, "") and other.get(metric) not in (None, "")]
            if samples:
                result[key][metric] = (*mean_interval(samples), len(samples))
    return result


def _system(experiment: Experiment) -> Any:
    from edgeprof.sim.systems import get_system

    return get_system(experiment.system)


def _number(text: str | None) -> float | None:
    """A results.csv cell as a number; None where it is empty or the column is missing."""
    return None if text in (None, "") else float(text)


def lowest_cost_shares(outdir: Path, metric: str = "cost") -> dict[str, float]:
    """Per method (trainers sampled, solvers as they are), the share of users whose `metric` is lowest with it,
    over every episode (value and seed) that every method ran."""
    per_episode: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(dict)
    for metrics_path in sorted((outdir / "runs").glob("*/metrics.json")):
        config = read_json(metrics_path.parent / "config.json", "run config")
        for row in read_json(metrics_path, "run metrics")["rows"]:
            if row["mode"] in ("sampled", "solve") and "per_user" in row:
                key = (json.dumps(config["value"]), config["seed"])
                per_episode[key][config["method"]["name"]] = row["per_user"][metric]
    methods = sorted({name for episode in per_episode.values() for name in episode})
    wins = dict.fromkeys(methods, 0.0)
    users = 0
    for episode in per_episode.values():
        if set(episode) != set(methods):
            continue
        for costs in zip(*(episode[name] for name in methods), strict=True):
            best = min(costs)
            winners = [name for name, cost in zip(methods, costs, strict=True) if cost == best]
            for name in winners:
                wins[name] += 1 / len(winners)
            users += 1
    if not users:
        return {}
    return {name: count / users for name, count in wins.items()}


def _measured(experiment: Experiment, found: list[Line], shares: dict[str, float], number: Any
              ) -> tuple[str, tuple[float, float | None, float | None, int] | None]:
    if number.metric == "lowest_cost_share":
        return "sampled", (shares[number.method], None, None, 1) if number.method in shares else None
    wanted = _value_key("" if number.value is None else json.dumps(number.value))
    for mode in PAPER_MODES:
        for line in found:
            if line.method != number.method or line.mode != mode:
                continue
            values = [wanted] if number.value is not None else list(line.points)
            stats = [line.points[value][number.metric] for value in values
                     if number.metric in line.points.get(value, {})]
            if stats:
                if len(stats) == 1:
                    return mode, stats[0]
                means = [s[0] for s in stats]
                return mode, (sum(means) / len(means), None, None, len(means))
    return "", None


def _cell(stats: tuple[float, float | None, float | None, int] | None) -> str:
    return f"{stats[0]:.4g} ({format_interval(stats[1], stats[2], 3)})" if stats else ""


def markdown(experiment: Experiment, found: list[Line], shares: dict[str, float], figure: str,
             differences: dict[str, dict[tuple[str, str, str], dict[str, Any]]] | None = None) -> str:
    out = [f"# {experiment.reference}: {experiment.title}", "",
           f"Experiment `{experiment.name}`, system `{experiment.system}`."
           + (f" Varied: `{experiment.vary}`." if experiment.vary else ""), ""]
    if experiment.notes:
        out += [experiment.notes, ""]
    out += [f"![{experiment.name}]({figure})", "", "## Against the paper's numbers", "",
            "| method | metric | at | paper | measured (mode) | difference |", "|---|---|---|---|---|---|"]
    for number in experiment.paper_numbers:
        mode, stats = _measured(experiment, found, shares, number)
        at = "every value" if number.value is None and experiment.vary else (
            json.dumps(number.value) if number.value is not None else "")
        if stats is None:
            out.append(f"| {number.method} | {number.metric} | {at} | {number.number:g} | not run | |")
            continue
        mean, low, high, n = stats
        interval = "" if low is None else f", {format_interval(low, high)}"
        difference = f"{(mean - number.number) / abs(number.number):+.0%}" if number.number else ""
        note = f" ({number.note})" if number.note else ""
        out.append(f"| {number.method} | {number.metric}{note} | {at} | {number.number:g} | {mean:.4g}{interval} "
                   f"({mode}, n = {n}) | {difference} |")
    if not experiment.paper_numbers:
        out.append("| | | | trend only: the text gives no number | | |")
    out += ["", "## Measured (mean and 95% interval over seeds)", ""]
    header = ["method", "mode", "value", *experiment.metrics]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in sorted(found, key=lambda item: (item.method, item.mode)):
        for value, metrics in line.points.items():
            cells = [_cell(metrics.get(metric)) for metric in experiment.metrics]
            out.append(f"| {line.method} | {line.mode} | {value} | " + " | ".join(cells) + " |")
    for reference, paired in (differences or {}).items():
        out += ["", f"## Minus {reference}'s (same seed, mode and value; mean and 95% interval over seeds)", "",
                "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for (method, mode, value), metrics in sorted(paired.items()):
            cells = [_cell(metrics.get(metric)) for metric in experiment.metrics]
            out.append(f"| {method} | {mode} | {value} | " + " | ".join(cells) + " |")
        if not paired:
            out.append(f"| {reference} was not run, or no method shares its episodes | | |")
    if shares:
        out += ["", "## Share of users for whom each method is the cheapest (trainers sampled)", "",
                "| method | share |", "|---|---|"]
        out += [f"| {name} | {share:.2f} |" for name, share in sorted(shares.items(), key=lambda item: -item[1])]
    return "\n".join(out) + "\n"


PANELS_PER_ROW = 4


def draw(experiment: Experiment, found: list[Line]):
    """One panel per metric, at most `PANELS_PER_ROW` a row, 95% intervals as error bars: each line's mean against
    the varied field's values, or, for a one-setting experiment, one bar per line."""
    from matplotlib.figure import Figure

    metrics = experiment.metrics
    columns = min(len(metrics), PANELS_PER_ROW)
    rows = -(-len(metrics) // columns)
    fig = Figure(figsize=(4.4 * columns, 3.8 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    ordered = sorted(found, key=lambda item: (item.method, item.mode))
    values = list(dict.fromkeys(value for line in ordered for value in line.points))
    for axis, metric in zip(axes, metrics, strict=False):
        if experiment.vary is None:
            _bars(axis, ordered, values[0], metric)
        else:
            _lines(axis, ordered, values, metric)
        axis.set_title(metric, fontsize=10)
        axis.grid(alpha=0.3, axis="y" if experiment.vary is None else "both")
        if metric == "delay_s" and experiment.system == "dpa":
            axis.set_yscale("log")
    for axis in axes[len(metrics):]:
        axis.set_visible(False)
    if experiment.vary is not None:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"{experiment.reference}: {experiment.title} (mean over seeds, 95% interval)", fontsize=11)
    return fig


def _errors(stats: tuple[float, float | None, float | None, int]) -> tuple[float, float]:
    mean, low, high, _ = stats
    return 0.0 if low is None else mean - low, 0.0 if high is None else high - mean


def _lines(axis: Any, ordered: list[Line], values: list[str], metric: str) -> None:
    for line in ordered:
        xs, means, errors = [], [], [[], []]
        for position, value in enumerate(values):
            stats = line.points.get(value, {}).get(metric)
            if stats is None:
                continue
            xs.append(position)
            means.append(stats[0])
            below, above = _errors(stats)
            errors[0].append(below)
            errors[1].append(above)
        axis.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=f"{line.method} ({line.mode})")
    axis.set_xticks(range(len(values)), values, rotation=30, fontsize=8)


def _bars(axis: Any, ordered: list[Line], value: str, metric: str) -> None:
    shown = [(f"{line.method} ({line.mode})", line.points[value][metric]) for line in ordered
             if metric in line.points.get(value, {})]
    errors = [_errors(stats) for _, stats in shown]
    axis.bar(range(len(shown)), [stats[0] for _, stats in shown],
             yerr=[[e[0] for e in errors], [e[1] for e in errors]], capsize=3, color="tab:blue", alpha=0.8)
    axis.set_xticks(range(len(shown)), [label for label, _ in shown], rotation=60, ha="right", fontsize=7)


def report_experiment(outdir: str | Path) -> tuple[Path, Path]:
    """Write OUTDIR/report.md and OUTDIR/report.png (both or neither); return their paths."""
    outdir = Path(outdir)
    experiment, budget, rows = read_results(outdir)
    found = lines(experiment, budget, rows)
    shares = lowest_cost_shares(outdir) if any(n.metric == "lowest_cost_share" for n in experiment.paper_numbers) \
        else {}
    differences = {reference: paired_differences(rows, reference, experiment.metrics)
                   for reference in experiment.references}
    markdown_path, figure_path = outdir / "report.md", outdir / "report.png"
    with atomic_outputs(markdown_path, figure_path) as (text_tmp, figure_tmp):
        text_tmp.write_text(markdown(experiment, found, shares, figure_path.name, differences), encoding="utf-8")
        draw(experiment, found).savefig(figure_tmp, dpi=130, format="png")
    return markdown_path, figure_path
