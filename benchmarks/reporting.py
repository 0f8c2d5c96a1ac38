"""What every benchmark's JSON carries and how it is written: the machine, intervals, the atomic write."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from edgeprof.files import write_text_atomic
from edgeprof.stats import mean_interval


def machine(threads: int = 1) -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "threads": threads}


def interval(values: list[float]) -> dict[str, float | None]:
    """Mean and 95% Student-t interval, as `edgeprof solve` reports them (None ends from one sample)."""
    mean, low, high = mean_interval(values)
    return {"mean": mean, "ci95_low": low, "ci95_high": high, "n": len(values)}


def write_result(path: Path, result: dict[str, Any], headline: str) -> None:
    """Write `result` as JSON (atomically) and print its `headline` part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result[headline], indent=2))
    print(f"wrote {path} ({result['wall_s']:.0f} s)")
