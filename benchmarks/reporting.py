"""What every benchmark's JSON carries and how it is written: the machine, intervals, provenance (commit, command
line, date), the atomic write."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.stats import mean_interval

REPOSITORY = Path(__file__).resolve().parent.parent


def machine(threads: int = 1) -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": threads}


def header(benchmark: str, threads: int, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The opening fields of a timed benchmark's JSON: its name, the versions, the machine, and the load average
    before (given) and after (now) its work, which says whether its times were taken on a busy machine."""
    import torch

    return {"benchmark": benchmark, "edgeprof_version": edgeprof.__version__, "torch": torch.__version__,
            "machine": machine(threads), "load_average_before": list(load_before),
            "load_average_after": list(os.getloadavg())}


def interval(values: list[float], bounds: tuple[float, float] | None = None) -> dict[str, float | None]:
    """Mean and 95% Student-t interval, as `edgeprof solve` reports a metric (None ends from one sample), clipped to
    `bounds` where a metric cannot leave a range. Rates here are means over runs, without the trial counts that
    give `edgeprof solve`'s rates their binomial interval (`edgeprof.sim.evaluation.metric_interval`)."""
    mean, low, high = mean_interval(values, bounds)
    return {"mean": mean, "ci95_low": low, "ci95_high": high, "n": len(values)}


def provenance() -> dict[str, Any]:
    """What made a result: the commit (with `dirty` when the tree had changes), the command line, the date."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--", "edgeprof")),
            "command": " ".join(shlex.quote(part) for part in ["python", *sys.argv]),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def write_result(path: Path, result: dict[str, Any], headline: str) -> None:
    """Write `result` as JSON (atomically) with its provenance, and print its `headline` part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({**result, "provenance": provenance()}, indent=2) + "\n")
    print(json.dumps(result[headline], indent=2))
    print(f"wrote {path} ({result['wall_s']:.0f} s)")
