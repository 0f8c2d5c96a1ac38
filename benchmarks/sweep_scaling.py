"""How fast each backend runs a sweep, and what a run costs on it.

    python benchmarks/sweep_scaling.py [--workers 2] [--seeds 5] [-o FILE.json]

Runs one fixed experiment, seed 001 Fig. 11 at the smoke budget with three solvers (5 tau-bar values x 3
solvers x 5 seeds = 75 runs), on the serial backend, the process pool and local Ray, each into a fresh folder,
and checks that every backend's results.csv is identical. `seconds` is each backend's first sweep in this
process, start-up included (the serial one imports the simulator, the process pool starts its forkserver, Ray
starts a local cluster): what one `edgeprof experiment run` pays. `seconds_again` is a second sweep of the serial
and process backends into fresh folders, with their long-lived parts already up (modules imported and profiles
validated in this process; the forkserver running): what each further sweep of a driver pays. Ray's start-up is
timed apart (an empty `ray.init` and `ray.shutdown`). The per-run overhead of each backend comes from no-op runs
(a function that returns at once), so it measures the backend, not the simulator. The load average is recorded
before and after: the speed-up target (1.8x with 2 workers) only means something on an otherwise idle machine.
Run it from the repository root (its command line is recorded in the result's provenance).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from reporting import machine, write_result

import edgeprof
from edgeprof.experiments.backends import RayBackend, make_backend
from edgeprof.experiments.definitions import get_experiment
from edgeprof.experiments.sweep import plan, run_experiment

RESULTS = Path(__file__).parent / "results"
EXPERIMENT, METHODS = "seed001-fig11", ("greedy", "edge-only", "local-only")
NOOP_RUNS = 100


def noop(config: dict[str, Any], outdir: str) -> dict[str, Any]:
    """A run that does nothing: what is left of its time is the backend's."""
    return {"id": "noop", "status": "done", "seconds": 0.0}


def sweep_seconds(backend_name: str, workers: int, seeds: int, folder: Path) -> float:
    started = time.perf_counter()
    summary = run_experiment(EXPERIMENT, folder, "smoke", range(seeds), METHODS, make_backend(backend_name, workers))
    if summary["failed"] or summary["finished"] != summary["planned"]:
        raise SystemExit(f"{backend_name}: {summary}")
    return time.perf_counter() - started


def noop_overhead(backend_name: str, workers: int) -> float:
    """Seconds per no-op run, start-up excluded: on Ray, a second batch on the cluster the first one warmed; on
    the others, whose workers start with each `map`, the time of a map of 2N runs less that of N runs, over N."""
    configs = [{"n": index} for index in range(2 * NOOP_RUNS)]
    backend = make_backend(backend_name, workers)
    if isinstance(backend, RayBackend):
        ray = backend.start()
        remote = ray.remote(num_cpus=1)(noop)
        ray.get([remote.remote(config, "") for config in configs[:NOOP_RUNS]])  # warm-up
        started = time.perf_counter()
        ray.get([remote.remote(config, "") for config in configs[:NOOP_RUNS]])
        seconds = time.perf_counter() - started
        ray.shutdown()
        return seconds / NOOP_RUNS
    list(backend.map(noop, configs[:workers], ""))  # what starts once per driver (the forkserver)
    seconds = {}
    for count in (NOOP_RUNS, 2 * NOOP_RUNS):
        started = time.perf_counter()
        list(backend.map(noop, configs[:count], ""))
        seconds[count] = time.perf_counter() - started
    return (seconds[2 * NOOP_RUNS] - seconds[NOOP_RUNS]) / NOOP_RUNS


def ray_startup_seconds(workers: int) -> float:
    backend = RayBackend(workers)
    started = time.perf_counter()
    ray = backend.start()
    ray.shutdown()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "sweep_scaling.json")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    runs = len(plan(get_experiment(EXPERIMENT), "smoke", range(args.seeds), METHODS))
    scratch = Path(tempfile.mkdtemp(prefix="sweep-scaling-"))
    try:
        seconds, again, csv_text = {}, {}, {}
        for times, names in ((seconds, ("serial", "process", "ray")), (again, ("serial", "process"))):
            for name in names:
                folder = scratch / f"{len(csv_text)}-{name}"
                times[name] = sweep_seconds(name, args.workers, args.seeds, folder)
                csv_text[folder.name] = (folder / "results.csv").read_text()
                print(f"{name}{' again' if times is again else ''}: {times[name]:.2f} s for {runs} runs", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    overhead = {name: noop_overhead(name, args.workers) for name in ("serial", "process", "ray")}
    summary = {
        "runs": runs, "workers": args.workers, "seconds": seconds,
        "speedup_vs_serial": {name: seconds["serial"] / value for name, value in seconds.items()},
        "seconds_again": again,
        "speedup_again_vs_serial": {name: again["serial"] / value for name, value in again.items()},
        "identical_results_csv": len(set(csv_text.values())) == 1,
        "ray_startup_s": ray_startup_seconds(args.workers),
        "per_run_overhead_ms": {name: 1e3 * value for name, value in overhead.items()},
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "targets": {"speedup_2_workers": 1.8, "ray_overhead_ms": 50},
    }
    result = {"benchmark": "sweep_scaling", "edgeprof": edgeprof.__version__, "machine": machine(),
              "experiment": EXPERIMENT, "methods": METHODS, "seeds": args.seeds, "summary": summary,
              "wall_s": time.perf_counter() - started}
    write_result(args.output, result, "summary")


if __name__ == "__main__":
    main()
