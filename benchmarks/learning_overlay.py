"""Benchmark: did a code change leave learning unchanged? Training runs of an old and a new commit, overlaid.

Takes pairs of run folders (`edgeprof train` output of the same algorithm, scenario and seed, one trained on each
commit), draws them into one figure with `edgeprof.rl.curves.plot_training`, and writes per pair the means over
the last `--tail` iterations of the logged quantities, new minus old, and the mean seconds per iteration. Issue 26
asks for hc-mappo-l at the paper's size, 200 iterations, 2 seeds, on 3e4005b and after the speed restructuring.

Runs trained before the per-request deadline existed lack `system.request_deadline_s` in their config; the
figure is drawn from copies whose config says 1e12 (the value that turns it off, which is how that code behaved).

    python benchmarks/learning_overlay.py --pair OLD_RUN NEW_RUN [--pair ...] [--tail 20] -o RESULT.json
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from reporting import machine, write_result

import edgeprof
from edgeprof.rl.curves import plot_training

QUANTITIES = ("delay_s", "cost", "energy_j", "privacy_cost", "success_rate", "multiplier", "user_entropy",
              "deployment_entropy", "allocation_entropy")
DEADLINE_OFF_S = 1e12


def tail_means(rundir: Path, tail: int) -> dict[str, Any]:
    """Means of QUANTITIES over the last `tail` logged iterations, and the run's mean seconds per iteration."""
    with (rundir / "log.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    last = rows[-tail:]
    means = {name: sum(float(row[name]) for row in last) / len(last) for name in QUANTITIES if name in rows[0]}
    return {"iterations": len(rows), "tail_means": means,
            "seconds_per_iteration": sum(float(row["seconds"]) for row in rows) / len(rows)}


def drawable_copy(rundir: Path, into: Path) -> Path:
    """The run's config and log in `into`, its config given the deadline field (off) if it predates it."""
    copy = into / rundir.name
    copy.mkdir()
    shutil.copy(rundir / "log.csv", copy / "log.csv")
    record = json.loads((rundir / "config.json").read_text(encoding="utf-8"))
    record["scenario"]["system"].setdefault("request_deadline_s", DEADLINE_OFF_S)
    (copy / "config.json").write_text(json.dumps(record), encoding="utf-8")
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", nargs=2, action="append", type=Path, required=True, metavar=("OLD", "NEW"))
    parser.add_argument("--tail", type=int, default=20, help="iterations averaged at the end of each run")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    pairs = []
    for old, new in args.pair:
        before, after = tail_means(old, args.tail), tail_means(new, args.tail)
        pairs.append({"old": str(old), "new": str(new), "old_run": before, "new_run": after,
                      "new_minus_old": {name: after["tail_means"][name] - value
                                        for name, value in before["tail_means"].items()
                                        if name in after["tail_means"]}})
    with tempfile.TemporaryDirectory(prefix="edgeprof-overlay-") as folder:
        copies = [drawable_copy(run, Path(folder)) for pair in args.pair for run in pair]
        plot_training(copies, args.output.with_suffix(".png"))
    result = {"benchmark": "learning_overlay", "edgeprof": edgeprof.__version__, "machine": machine(),
              "tail": args.tail, "pairs": pairs, "wall_s": time.perf_counter() - started}
    write_result(args.output, result, "pairs")


if __name__ == "__main__":
    main()
