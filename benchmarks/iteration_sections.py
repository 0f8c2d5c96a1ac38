"""Benchmark: where a paper-size HC-MAPPO-L iteration spends its CPU seconds, section by section, on one thread.

Times paper-size iterations (200 slots, one environment, after one warm-up iteration) with `time.process_time`
counters around the trainer's parts: collection (the deployment draw, the users' picks, the allocation, the
simulator's step, the rewards, the end-of-rollout scoring in `_bootstrap`) and each layer's update (and the
forward pass of its losses, the rest being backward passes and optimiser steps). CPU seconds, not wall: the
machine is shared. `--baseline DIR` (a checkout of another commit) times that code too, in a second process
afterwards, with DIR first on PYTHONPATH; it must have the methods wrapped here (`SECTIONS`: main since issue 26
has them, 3e4005b has no `_bootstrap`).

    python benchmarks/iteration_sections.py [--iterations 3] [--baseline DIR] -o RESULT.json
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE"})

import argparse
import functools
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

# (owner module, class or None, method): the section each wrapped call's CPU seconds go to
SECTIONS = {
    "collect": ("edgeprof.rl.hc_mappo_l", "Trainer", "collect"),
    "collect.deployment_draw": ("edgeprof.rl.hc_mappo_l", "Trainer", "_deploy"),
    "collect.user_picks": ("edgeprof.rl.hc_mappo_l", "Trainer", "_act"),
    "collect.allocation": ("edgeprof.rl.hc_mappo_l", "Trainer", "_allocate"),
    "collect.simulator_step": ("edgeprof.sim.env", "EdgeSystem", "step"),
    "collect.scoring": ("edgeprof.rl.hc_mappo_l", "Trainer", "_bootstrap"),
    "update": ("edgeprof.rl.hc_mappo_l", "Trainer", "update"),
    "update.user.loss_forward": ("edgeprof.rl.hc_mappo_l", "Trainer", "_user_loss"),
    "update.deployment.loss_forward": ("edgeprof.rl.hc_mappo_l", "Trainer", "_deployment_loss"),
    "update.allocation.loss_forward": ("edgeprof.rl.hc_mappo_l", "Trainer", "_allocation_loss"),
}


def time_sections(iterations: int) -> dict[str, Any]:
    """Mean CPU seconds per iteration, in total and per section, of the edgeprof first on PYTHONPATH."""
    import importlib

    import torch
    from iteration_timing import PAPER_SLOTS

    from edgeprof.rl.hc_mappo_l import Trainer, make_config
    from edgeprof.sim.scenario import load_scenario
    from edgeprof.sim.workload import load_service_table

    spent: dict[str, float] = defaultdict(float)

    def counted(section: str, method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent[section] += time.process_time() - started
        return wrapper

    for section, (module, owner, name) in SECTIONS.items():
        holder = getattr(importlib.import_module(module), owner)
        setattr(holder, name, counted(section, getattr(holder, name)))
    layer_of = {"user": "update.user", "deployment": "update.deployment", "allocation": "update.allocation"}
    optimise = Trainer._optimise

    def optimise_layer(self: Any, layer: str, *args: Any, **kwargs: Any) -> Any:
        return counted(layer_of[layer], optimise)(self, layer, *args, **kwargs)

    Trainer._optimise = optimise_layer
    scenario = load_scenario("paper", [])
    trainer = Trainer(make_config("hc-mappo-l", slots_per_iteration=PAPER_SLOTS, num_envs=1, threads=1), scenario,
                      load_service_table(scenario))
    trainer.run_iteration()  # warm-up
    spent.clear()
    started = time.process_time()
    for _ in range(iterations):
        trainer.run_iteration()
    total = time.process_time() - started
    return {"torch": torch.__version__, "iterations": iterations, "cpu_seconds_per_iteration": total / iterations,
            "sections": {section: spent[section] / iterations for section in sorted(spent)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit, timed afterwards")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_sections(args.iterations)))
        return
    from hc_mappo_l import code_version, git
    from reporting import machine, write_result

    started = time.perf_counter()
    load_before = os.getloadavg()
    result: dict[str, Any] = {"benchmark": "iteration_sections", "machine": machine(),
                              "ours": {"code": code_version(), **time_sections(args.iterations)}}
    if args.baseline:
        command = [sys.executable, __file__, "--child", "--iterations", str(args.iterations), "-o", "-"]
        output = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(args.baseline)}, check=True,
                                capture_output=True, text=True).stdout
        result["baseline"] = {"code": git("-C", str(args.baseline), "rev-parse", "--short", "HEAD"),
                              **json.loads(output.strip().splitlines()[-1])}
    result.update(load_average_before=load_before, load_average_after=os.getloadavg(),
                  wall_s=time.perf_counter() - started)
    write_result(args.output, result, "ours")


if __name__ == "__main__":
    main()
