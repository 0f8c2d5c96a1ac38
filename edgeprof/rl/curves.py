"""Training curves of one or more runs (`edgeprof plot`), in the layout each trainer declares (`Panel`s).

One panel per quantity, every run a line labelled by its algorithm and seed (the legend in the first panel, as
in the papers); a panel may have a log scale and a limit drawn as a red dashed line (seed 001's Fig. 5: delay
on a log scale with tau-bar). Curves are moving averages over `smooth` iterations (seed 001's authors used 10).
With `by_algorithm`, the runs of each algorithm (its seeds) become one line, their mean, in a band of the 95%
Student-t interval over the runs, up to the iteration every one of them has reached: one line per method.
Runs drawn together must share their panels (the first run's trainer names them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output, read_text
from edgeprof.rl.runs import Run, load_run
from edgeprof.rl.trainers import Panel
from edgeprof.stats import mean_interval


@dataclass(frozen=True)
class Curve:
    """One line of the plot: `mean[column]` at each of `iteration`, with a band from `low` to `high` when the
    line is the mean of several runs."""

    label: str
    iteration: np.ndarray
    mean: dict[str, np.ndarray]
    low: dict[str, np.ndarray] | None = None
    high: dict[str, np.ndarray] | None = None


def _read_log(run: Run, panels: tuple[Panel, ...]):
    import pandas as pd

    path = run.paths.log
    if not path.is_file():
        raise EdgeprofError(f"{run.path} has no log.csv yet: train it with `edgeprof train`")
    try:
        log = pd.read_csv(io.StringIO(read_text(path, "training log")))
    except ValueError as error:  # a damaged table: pandas' ParserError and EmptyDataError are ValueErrors
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise EdgeprofError(f"{path} is not a readable training log ({reason}): is it the right run?") from None
    if log.empty:
        raise EdgeprofError(f"{path} has no iterations yet")
    missing = [panel.column for panel in panels if panel.column not in log.columns]
    if missing:
        raise EdgeprofError(f"{path} lacks the columns {', '.join(missing)}: runs drawn together must log the same "
                            "quantities")
    return log


def _smoothed(log, smooth: int, panels: tuple[Panel, ...]) -> dict[str, np.ndarray]:
    return {panel.column: log[panel.column].rolling(smooth, min_periods=1).mean().to_numpy() for panel in panels}


def training_curves(rundirs: list[Path], smooth: int = 10, by_algorithm: bool = False
                    ) -> tuple[tuple[Panel, ...], list[Curve], dict[str, list[float]]]:
    """The panels, the lines to draw for `rundirs` and, per panel with a limit, the limits their logs record."""
    if smooth < 1:
        raise EdgeprofError(f"smooth must be at least 1 iteration, got {smooth}")
    runs = [load_run(rundir) for rundir in rundirs]
    panels = runs[0].trainer.panels
    logs = [_read_log(run, panels) for run in runs]
    limits = {panel.column: sorted({float(limit) for log in logs if panel.limit_column in log.columns
                                    for limit in log[panel.limit_column].dropna().unique()})
              for panel in panels if panel.limit_column}
    if not by_algorithm:
        return panels, [Curve(f"{run.algorithm}, seed {run.config.seed} ({run.path.name})",
                              log["iteration"].to_numpy(), _smoothed(log, smooth, panels))
                        for run, log in zip(runs, logs, strict=True)], limits
    groups: dict[str, list] = {}
    for run, log in zip(runs, logs, strict=True):
        groups.setdefault(run.algorithm, []).append(log)
    return panels, [_mean_curve(algorithm, group, smooth, panels) for algorithm, group in groups.items()], limits


def _mean_curve(algorithm: str, logs: list, smooth: int, panels: tuple[Panel, ...]) -> Curve:
    """The mean of the runs' smoothed curves over the iterations all of them have reached, with a 95% band."""
    reached = min(len(log) for log in logs)
    curves = [_smoothed(log.iloc[:reached], smooth, panels) for log in logs]
    intervals = {panel.column: mean_interval([curve[panel.column] for curve in curves]) for panel in panels}
    iteration = logs[0]["iteration"].to_numpy()[:reached]
    label = f"{algorithm} ({len(logs)} run{'s' if len(logs) > 1 else ''})"
    mean = {column: interval[0] for column, interval in intervals.items()}
    if len(logs) < 2:
        return Curve(label, iteration, mean)
    return Curve(label, iteration, mean, {column: interval[1] for column, interval in intervals.items()},
                 {column: interval[2] for column, interval in intervals.items()})


def plot_training(rundirs: list[Path], path: str | Path, smooth: int = 10, by_algorithm: bool = False) -> None:
    """Draw the curves of `rundirs` into one PNG at `path` (`training_curves` says what is drawn)."""
    panels, curves, limits = training_curves(rundirs, smooth, by_algorithm)
    fig = training_figure(panels, curves, limits, smooth, by_algorithm)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")


def training_figure(panels: tuple[Panel, ...], curves: list[Curve], limits: dict[str, list[float]], smooth: int,
                    by_algorithm: bool):
    """The panels of `curves` in two rows, a figure outside pyplot (nothing to close, no backend to choose).
    A log-scale panel spans its mean lines and limits (seed 001's delay falls by two orders of magnitude early
    in training; on a linear axis its approach to tau-bar would be a flat line)."""
    from matplotlib.figure import Figure

    columns = -(-len(panels) // 2)
    fig = Figure(figsize=(4 * columns, 7), layout="constrained")
    axes = fig.subplots(2, columns, sharex=True, squeeze=False)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    for axis, panel in zip(axes.flat, panels, strict=False):
        column = panel.column
        for curve in curves:
            line, = axis.plot(curve.iteration, curve.mean[column], label=curve.label)
            if curve.low is not None and curve.high is not None:
                axis.fill_between(curve.iteration, curve.low[column], curve.high[column], color=line.get_color(),
                                  alpha=0.2, linewidth=0)
        panel_limits = limits.get(column, [])
        if panel.log_scale:
            _log_scale_around_means(axis, [curve.mean[column] for curve in curves], panel_limits)
        for limit in panel_limits:
            axis.axhline(limit, color="red", linestyle="--", linewidth=1.2, label=f"{panel.limit_label} = {limit:g}")
        if panel_limits:
            axis.legend(fontsize=7, loc="upper right", handles=axis.get_lines()[len(curves):])
        axis.set_title(panel.title, fontsize=10)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("iteration")
    axes.flat[0].legend(fontsize=8)
    what = "mean over each algorithm's runs, 95% interval shaded, " if by_algorithm else ""
    fig.suptitle(f"training curves ({what}moving average over {smooth} iterations)", fontsize=11)
    return fig


def _log_scale_around_means(axis, means: list[np.ndarray], limits: list[float]) -> None:
    """A log axis spanning the mean lines and limits: a band whose Student-t interval dips below zero (few runs)
    would otherwise stretch the axis down by orders of magnitude."""
    values = np.concatenate([*means, np.asarray(limits, dtype=float)])
    values = values[np.isfinite(values) & (values > 0)]
    axis.set_yscale("log")
    if values.size:
        axis.set_ylim(values.min() / 2, values.max() * 2)
