"""Seconds per paper-size HC-MAPPO-L iteration, with whatever edgeprof is first on PYTHONPATH.

Kept apart from `hc_mappo_l.py` so that `hc_mappo_l.py --baseline DIR` can run it on another commit's code: it
imports only what every version of the trainer has (`load_scenario`, `load_service_table`, `make_config`,
`Trainer.run_iteration`). Run as a script, it prints `time_iterations`'s result as one line of JSON for the
arguments given as one JSON list: [overrides, envs, iterations, threads].
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE"})

import json
import sys
import time
from typing import Any

from edgeprof.rl.hc_mappo_l import Trainer, make_config
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.workload import load_service_table

PAPER_SLOTS = 200  # seed 001's slots per iteration


def time_iterations(overrides: list[str], envs: int, iterations: int, threads: int) -> dict[str, Any]:
    """Wall and CPU seconds of `iterations` paper-size iterations after a warm-up one."""
    scenario = load_scenario("paper", overrides)
    table = load_service_table(scenario)
    config = make_config("hc-mappo-l", slots_per_iteration=PAPER_SLOTS, num_envs=envs, threads=threads)
    trainer = Trainer(config, scenario, table)
    trainer.run_iteration()  # warm-up: first calls allocate and compile
    wall, cpu = [], []
    for _ in range(iterations):
        started = time.process_time()
        wall.append(trainer.run_iteration()["seconds"])
        cpu.append(time.process_time() - started)
        print(f"throughput ({threads} thread(s)): iteration {len(wall)}: {wall[-1]:.1f} s", file=sys.stderr,
              flush=True)
    return {"seconds_per_iteration": wall, "cpu_seconds_per_iteration": cpu}


if __name__ == "__main__":
    print(json.dumps(time_iterations(*json.loads(sys.argv[1]))))
