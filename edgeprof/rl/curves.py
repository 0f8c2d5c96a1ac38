"""Training curves of one or more runs (`edgeprof plot`), in the layout of seed 001's Fig. 5.

One panel per quantity, every run a line labelled by its algorithm and seed (the legend in the first panel, as
in the paper): the objective (the cost plus the failure penalty: a failed request costs no energy or privacy, so
the cost alone rewards failures), delay (log scale) with tau-bar drawn as a red dashed line, cost, energy,
privacy cost, success rate, the multiplier and the users' policy entropy. Curves are moving averages over
`smooth` iterations (the authors' plots used 10). With `by_algorithm`, the runs of each algorithm (its seeds)
become one line, their mean, in a band of the 95% Student-t interval over the runs, up to the iteration every
one of them has reached: one line per method, as in Fig. 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output
from edgeprof.rl.hc_mappo_l import RunPaths, TrainConfig, load_run, method_name
from edgeprof.stats import mean_interval

PANELS = (("objective", "(a) objective: cost + failure penalty"), ("delay_s", "(b) delay (s, log scale)"),
          ("cost", "(c) cost  mu1 C_priv + mu2 e"), ("energy_j", "(d) energy (J)"),
          ("privacy_cost", "(e) privacy cost"),
          ("success_rate", "(f) success rate"), ("multiplier", "(g) lambda"), ("user_entropy", "(h) user entropy"))


COLUMNS = tuple(name for name, _ in PANELS)


@dataclass(frozen=True)
class Curve:
    """One line of the plot: `mean[column]` at each of `iteration`, with a band from `low` to `high` when the
    line is the mean of several runs."""

    label: str
    iteration: np.ndarray
    mean: dict[str, np.ndarray]
    low: dict[str, np.ndarray] | None = None
    high: dict[str, np.ndarray] | None = None


def _read_log(rundir: Path):
    import pandas as pd

    config, _, _ = load_run(rundir)
    path = RunPaths(rundir).log
    if not path.is_file():
        raise EdgeprofError(f"{rundir} has no log.csv yet: train it with `edgeprof train`")
    log = pd.read_csv(path)
    if log.empty:
        raise EdgeprofError(f"{path} has no iterations yet")
    missing = [name for name in COLUMNS if name not in log.columns]
    if missing:
        raise EdgeprofError(f"{path} lacks the columns {', '.join(missing)}: is it an edgeprof training log?")
    return config, log


def _smoothed(log, smooth: int) -> dict[str, np.ndarray]:
    return {column: log[column].rolling(smooth, min_periods=1).mean().to_numpy() for column in COLUMNS}


def training_curves(rundirs: list[Path], smooth: int = 10, by_algorithm: bool = False
                    ) -> tuple[list[Curve], list[float]]:
    """The lines to draw for `rundirs` and the delay constraints (tau-bar) their logs record."""
    if smooth < 1:
        raise EdgeprofError(f"smooth must be at least 1 iteration, got {smooth}")
    runs: list[tuple[TrainConfig, object, Path]] = [(*_read_log(Path(rundir)), Path(rundir)) for rundir in rundirs]
    limits = sorted({float(limit) for _, log, _ in runs for limit in log["delay_constraint_s"].dropna().unique()})
    if not by_algorithm:
        return [Curve(f"{method_name(config)}, seed {config.seed} ({rundir.name})", log["iteration"].to_numpy(),
                      _smoothed(log, smooth)) for config, log, rundir in runs], limits
    groups: dict[str, list] = {}
    for config, log, _ in runs:
        groups.setdefault(method_name(config), []).append(log)
    return [_mean_curve(algorithm, logs, smooth) for algorithm, logs in groups.items()], limits


def _mean_curve(algorithm: str, logs: list, smooth: int) -> Curve:
    """The mean of the runs' smoothed curves over the iterations all of them have reached, with a 95% band."""
    reached = min(len(log) for log in logs)
    curves = [_smoothed(log.iloc[:reached], smooth) for log in logs]
    intervals = {column: mean_interval([curve[column] for curve in curves]) for column in COLUMNS}
    iteration = logs[0]["iteration"].to_numpy()[:reached]
    label = f"{algorithm} ({len(logs)} run{'s' if len(logs) > 1 else ''})"
    mean = {column: interval[0] for column, interval in intervals.items()}
    if len(logs) < 2:
        return Curve(label, iteration, mean)
    return Curve(label, iteration, mean, {column: interval[1] for column, interval in intervals.items()},
                 {column: interval[2] for column, interval in intervals.items()})


def plot_training(rundirs: list[Path], path: str | Path, smooth: int = 10, by_algorithm: bool = False) -> None:
    """Draw the curves of `rundirs` into one PNG at `path` (`training_curves` says what is drawn)."""
    curves, limits = training_curves(rundirs, smooth, by_algorithm)
    fig = training_figure(curves, limits, smooth, by_algorithm)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")


def training_figure(curves: list[Curve], limits: list[float], smooth: int, by_algorithm: bool):
    """The Fig. 5 panels of `curves`, a figure outside pyplot (nothing to close, no backend to choose). Delay is
    on a log scale: it falls by two orders of magnitude early in training, and on a linear axis its approach to
    tau-bar would be a flat line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 7), layout="constrained")
    axes = fig.subplots(2, 4, sharex=True)
    for axis, (column, title) in zip(axes.flat, PANELS, strict=True):
        for curve in curves:
            line, = axis.plot(curve.iteration, curve.mean[column], label=curve.label)
            if curve.low is not None and curve.high is not None:
                axis.fill_between(curve.iteration, curve.low[column], curve.high[column], color=line.get_color(),
                                  alpha=0.2, linewidth=0)
        if column == "delay_s":
            _log_scale_around_means(axis, [curve.mean[column] for curve in curves], limits)
            for limit in limits:
                axis.axhline(limit, color="red", linestyle="--", linewidth=1.2, label=f"tau-bar = {limit:g} s")
            axis.legend(fontsize=7, loc="upper right", handles=axis.get_lines()[len(curves):])
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("iteration")
    axes.flat[0].legend(fontsize=8)
    what = "mean over each algorithm's runs, 95% interval shaded, " if by_algorithm else ""
    fig.suptitle(f"training curves ({what}moving average over {smooth} iterations)", fontsize=11)
    return fig


def _log_scale_around_means(axis, means: list[np.ndarray], limits: list[float]) -> None:
    """A log axis spanning the mean lines and tau-bar: a band whose Student-t interval dips below zero (few runs)
    would otherwise stretch the axis down by orders of magnitude."""
    values = np.concatenate([*means, np.asarray(limits, dtype=float)])
    values = values[np.isfinite(values) & (values > 0)]
    axis.set_yscale("log")
    if values.size:
        axis.set_ylim(values.min() / 2, values.max() * 2)
