"""Training curves of one or more runs (`edgeprof plot`), in the layout of seed 001's Fig. 5.

One panel per quantity, every run a line labelled by its algorithm and seed (the legend in the first panel, as
in the paper): the objective (the cost plus the failure penalty: a failed request costs no energy or privacy, so
the cost alone rewards failures), delay with tau-bar drawn as a red dashed line, cost, energy, privacy cost,
success rate, the multiplier and the users' policy entropy. Curves are moving averages over `smooth` iterations
(the authors' plots used 10).
"""

from __future__ import annotations

from pathlib import Path

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output
from edgeprof.rl.hc_mappo_l import RunPaths, load_run

PANELS = (("objective", "(a) objective: cost + failure penalty"), ("delay_s", "(b) delay (s)"),
          ("cost", "(c) cost  mu1 C_priv + mu2 e"), ("energy_j", "(d) energy (J)"),
          ("privacy_cost", "(e) privacy cost"),
          ("success_rate", "(f) success rate"), ("multiplier", "(g) lambda"), ("user_entropy", "(h) user entropy"))


def _read_log(rundir: Path):
    import pandas as pd

    config, _, _ = load_run(rundir)
    path = RunPaths(rundir).log
    if not path.is_file():
        raise EdgeprofError(f"{rundir} has no log.csv yet: train it with `edgeprof train`")
    log = pd.read_csv(path)
    if log.empty:
        raise EdgeprofError(f"{path} has no iterations yet")
    missing = [name for name, _ in PANELS if name not in log.columns]
    if missing:
        raise EdgeprofError(f"{path} lacks the columns {', '.join(missing)}: is it an edgeprof training log?")
    return f"{config.algorithm}, seed {config.seed} ({rundir.name})", log


def plot_training(rundirs: list[Path], path: str | Path, smooth: int = 10) -> None:
    """Draw the curves of `rundirs` into one PNG at `path`."""
    if smooth < 1:
        raise EdgeprofError(f"smooth must be at least 1 iteration, got {smooth}")
    runs = [_read_log(Path(rundir)) for rundir in rundirs]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7), layout="constrained", sharex=True)
    for axis, (column, title) in zip(axes.flat, PANELS, strict=True):
        for label, log in runs:
            axis.plot(log["iteration"], log[column].rolling(smooth, min_periods=1).mean(), label=label)
        if column == "delay_s":
            limits = {float(limit) for _, log in runs for limit in log["delay_constraint_s"].dropna().unique()}
            for limit in sorted(limits):
                axis.axhline(limit, color="red", linestyle="--", linewidth=1.2, label=f"tau-bar = {limit:g} s")
            axis.legend(fontsize=7, loc="upper right", handles=axis.get_lines()[len(runs):])
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("iteration")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"training curves (moving average over {smooth} iterations)", fontsize=11)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
