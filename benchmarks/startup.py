"""Start-up time of a cheap command, this checkout against another one, side by side on the same machine.

    python benchmarks/startup.py --baseline /path/to/other/checkout [--repeats 15] [-o FILE.json]

Runs `edgeprof solve --scenario small --solver greedy --slots 1` (one slot of a heuristic on the small preset:
almost all of its time is imports and loading the scenario) from each checkout in turn, alternating so that
both see the same load, and records every wall time, their medians, and whether torch and cvxpy were
imported. The same Python runs both; each checkout is put first on `sys.path`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from reporting import machine, write_result

import edgeprof

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
COMMAND = ["solve", "--scenario", "small", "--solver", "greedy", "--slots", "1", "--seeds", "0", "-q"]
PROBE = ("import json, sys\nfrom edgeprof.cli import main\nsys.argv = ['edgeprof', *json.loads(sys.argv[1])]\n"
         "try:\n    main()\nexcept SystemExit as stop:\n    code = stop.code\n"
         "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, 'cvxpy': 'cvxpy' in sys.modules}))")


def commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def run_once(checkout: Path) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(COMMAND)], capture_output=True, text=True,
                            env=env, cwd=checkout, check=True)
    seconds = time.perf_counter() - started
    status = json.loads(result.stdout.strip().splitlines()[-1])
    if status["code"] not in (0, None):
        raise SystemExit(f"{checkout}: the command failed with {status['code']}: {result.stderr.strip()}")
    return seconds, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of edgeprof")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "startup.json")
    args = parser.parse_args()
    started = time.perf_counter()
    checkouts = {"baseline": args.baseline.resolve(), "this": REPOSITORY}
    for checkout in checkouts.values():
        run_once(checkout)  # warm the file cache
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    status = {}
    for _ in range(args.repeats):
        for name, checkout in checkouts.items():
            seconds, status[name] = run_once(checkout)
            times[name].append(seconds)
    summary = {name: {"commit": commit(checkout), "median_s": statistics.median(times[name]),
                      "min_s": min(times[name]), "imports_torch": status[name]["torch"],
                      "imports_cvxpy": status[name]["cvxpy"]} for name, checkout in checkouts.items()}
    summary["speedup"] = summary["baseline"]["median_s"] / summary["this"]["median_s"]
    result = {"benchmark": "startup", "edgeprof": edgeprof.__version__, "machine": machine(),
              "command": "edgeprof " + " ".join(COMMAND), "repeats": args.repeats,
              "load_average": os.getloadavg(), "summary": summary, "seconds": times,
              "wall_s": time.perf_counter() - started}
    write_result(args.output, result, "summary")


if __name__ == "__main__":
    main()
