"""Benchmark: how a trained run's deployment layer covers the service catalogue, greedy against drawn.

For a run of `edgeprof train` (RUNDIR), each evaluation seed's episode runs twice: every layer greedy, and
the deployment drawn as in training with the other layers greedy (`edgeprof evaluate --draw deployment`).
At every deployment decision it records how many services at least one server hosts, the bytes of those no
server hosts, how many services a server picks, and how alike the servers' sets are (mean Jaccard index over
pairs of servers); per episode, the success rate and mean delay. Why: at the paper's size an almost uniform
deployment policy's most probable sequences coincide across servers and leave services unhosted, which a
greedy evaluation charges to the whole method.

    python benchmarks/deployment_coverage.py RUNDIR [--seeds 100,101,102,103,104] [--slots 60] [-o FILE.json]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from reporting import interval, machine, write_result

import edgeprof
from edgeprof.rl.hc_mappo_l import TrainedPolicy
from edgeprof.rl.runs import load_run
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.evaluation import run_episodes
from edgeprof.sim.workload import ServiceTable, load_service_table

RESULTS = Path(__file__).parent / "results"
MODES = {"greedy": (), "deployment_drawn": ("deployment",)}


def mean_jaccard(hosts: np.ndarray) -> float:
    """Mean Jaccard index of the servers' service sets over all pairs of servers; `hosts` (I, J) bool."""
    inter = hosts.T.astype(np.int64) @ hosts.astype(np.int64)  # (J, J) services both host
    sizes = hosts.sum(axis=0)
    union = sizes[:, None] + sizes[None, :] - inter
    pairs = np.triu_indices(hosts.shape[1], k=1)
    return float(np.mean(inter[pairs] / np.maximum(union[pairs], 1)))


class CoverageRecorder:
    """Wraps a `TrainedPolicy`; records each deployment it makes (first environment)."""

    def __init__(self, policy: TrainedPolicy, table: ServiceTable) -> None:
        self.policy, self.table, self.decisions = policy, table, []

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        deployment = self.policy.deploy(system)
        hosts = deployment[0].astype(bool)  # (I, J)
        hosted = hosts.any(axis=1)
        self.decisions.append({"hosted_services": int(hosted.sum()),
                               "unhosted_gb": float(self.table.model_bytes[~hosted].sum() / 1e9),
                               "picks_per_server": float(hosts.sum(axis=0).mean()),
                               "mean_jaccard": mean_jaccard(hosts)})
        return deployment

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        return self.policy.act(system)

    def allocate(self, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.policy.allocate(system, association, z)


def coverage(rundir: Path, seeds: list[int], slots: int) -> dict[str, Any]:
    run = load_run(rundir)
    config, scenario, scenario_name = run.config, run.scenario, run.scenario_name
    table = load_service_table(scenario)
    torch.set_num_threads(1)
    trained = TrainedPolicy.load(rundir, EdgeSystem(scenario, table, num_envs=1, seed=seeds[0]))
    modes = {}
    for mode, layers in MODES.items():
        recorders = []

        def recorded(system: EdgeSystem, seed: int, layers: tuple[str, ...] = layers,
                     recorders: list[CoverageRecorder] = recorders) -> CoverageRecorder:
            recorders.append(CoverageRecorder(trained.drawing(seed, layers) if layers else trained, table))
            return recorders[-1]

        rows = run_episodes(config.algorithm, scenario, table, recorded, slots, seeds)
        episodes = [{"seed": row["seed"], "success_rate": row["success_rate"], "delay_s": row["delay_s"],
                     **{key: float(np.mean([decision[key] for decision in recorder.decisions]))
                        for key in recorder.decisions[0]}}
                    for row, recorder in zip(rows, recorders, strict=True)]
        modes[mode] = {**{key: interval([row[key] for row in episodes]) for key in episodes[0] if key != "seed"},
                       "per_seed": episodes}
        print(f"{mode}: hosted {modes[mode]['hosted_services']['mean']:.1f} of {table.num_services} services, "
              f"jaccard {modes[mode]['mean_jaccard']['mean']:.2f}, success {modes[mode]['success_rate']['mean']:.3f}, "
              f"delay {modes[mode]['delay_s']['mean']:.3g} s", flush=True)
    return {"rundir": str(rundir), "algorithm": config.algorithm, "scenario": scenario_name,
            "num_services": table.num_services, "num_servers": scenario["system.num_servers"],
            "catalogue_gb": float(table.model_bytes.sum() / 1e9), "eval_seeds": seeds, "eval_slots": slots,
            "modes": modes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rundir", type=Path)
    parser.add_argument("--seeds", default="100,101,102,103,104")
    parser.add_argument("--slots", type=int, default=60)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "deployment_coverage.json")
    args = parser.parse_args()
    started = time.perf_counter()
    result = {"benchmark": "deployment_coverage", "edgeprof": edgeprof.__version__, "machine": machine(),
              "coverage": coverage(args.rundir, [int(seed) for seed in args.seeds.split(",")], args.slots)}
    result["wall_s"] = time.perf_counter() - started
    write_result(args.output, result, "coverage")


if __name__ == "__main__":
    main()
