"""Benchmark: HC-MAPPO-L's training throughput, and the five learning methods next to the optimizers.

Part 1, throughput (always): the paper scenario (J = 10, K = 50, I = 45), `--throughput-envs` environments
(default 1: seed 001's budget is 200 slots of one system per iteration) of 200 slots per iteration, one
thread; `--throughput-iterations` iterations timed after one warm-up iteration. Reports environment steps
(slots x environments) per second, seconds per iteration, and the wall time of seed 001's budget (1000
iterations x 200 slots) projected from the measured seconds per iteration. Target: under 30 min.

Part 2, comparison (`--compare`): each of the five algorithms trained for `--iterations` iterations on each
seed of `--seeds` (a separate run per seed), then evaluated greedily on `--eval-seeds` episodes of
`--eval-slots` slots; the optimizers run on the same evaluation episodes. Mean and 95% interval over the
training seeds, next to seed 001's Fig. 5 values (paper scenario, 1000 iterations): delays HC-MAPPO-L 2.74 s,
HC-IPPO-L 2.65, Heuristic-MAPPO-L 2.94, H-MAPPO 4.38, H-IPPO 4.76; HC-MAPPO-L cost 131.35, energy 14.87 J,
privacy 10.09 (its cost and privacy units are not ours: compare orderings and the constraint, not values).

Profiles: the shipped ones, or with --synthetic-leakage real static workloads and the stand-in leakage of
`synthetic_profiles.py`; the JSON says which.

    python benchmarks/hc_mappo_l.py [--synthetic-leakage] [--throughput-envs 1] [--throughput-iterations 3]
        [--compare --scenario small --envs 8 --iterations 100 --seeds 0,1,2,3,4 --eval-seeds 100,...]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from reporting import interval, machine, write_result
from synthetic_profiles import SOURCE, profiles_override

import edgeprof
from edgeprof.optimize.solve import REPORTED, run_solver
from edgeprof.rl.hc_mappo_l import ALGORITHMS, Trainer, evaluate_run, make_config, train
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.workload import load_service_table

RESULTS = Path(__file__).parent / "results"
PAPER_ITERATIONS, PAPER_SLOTS = 1000, 200
TARGET_MINUTES = 30
SEED_001_DELAY_S = {"hc-mappo-l": 2.74, "hc-ippo-l": 2.65, "heuristic-mappo-l": 2.94, "h-mappo": 4.38,
                    "h-ippo": 4.76}
OPTIMIZERS = ("primal-dual", "greedy", "edge-only", "local-only", "random")


def throughput(overrides: list[str], envs: int, iterations: int) -> dict[str, Any]:
    scenario = load_scenario("paper", overrides)
    table = load_service_table(scenario)
    trainer = Trainer(make_config("hc-mappo-l", slots_per_iteration=PAPER_SLOTS, num_envs=envs), scenario, table)
    trainer.run_iteration()  # warm-up: first calls allocate and compile
    seconds = []
    for _ in range(iterations):
        seconds.append(trainer.run_iteration()["seconds"])
        print(f"throughput: iteration {len(seconds)}: {seconds[-1]:.1f} s", flush=True)
    per_iteration = sum(seconds) / len(seconds)
    steps = PAPER_SLOTS * envs
    projected = PAPER_ITERATIONS * per_iteration / 60
    return {"envs": envs, "slots_per_iteration": PAPER_SLOTS, "timed_iterations": iterations,
            "seconds_per_iteration": seconds, "env_steps_per_s": steps / per_iteration,
            "user_decisions_per_s": steps * scenario["system.num_users"] / per_iteration,
            "paper_budget_minutes_projected": projected, "target_minutes": TARGET_MINUTES,
            "meets_target": projected <= TARGET_MINUTES}


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {key: interval([row[key] for row in rows]) for key in REPORTED}


def compare(args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    scenario = load_scenario(args.scenario, overrides)
    table = load_service_table(scenario)
    eval_seeds = [int(seed) for seed in args.eval_seeds.split(",")]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgeprof-bench-runs-") as runs:
        for algorithm in ALGORITHMS:
            per_seed = []
            for seed in (int(s) for s in args.seeds.split(",")):
                rundir = Path(runs) / f"{algorithm}-{seed}"
                config = make_config(algorithm, iterations=args.iterations, seed=seed, num_envs=args.envs,
                                     slots_per_iteration=args.slots)
                started = time.perf_counter()
                train(config, scenario, table, rundir, scenario_name=args.scenario)
                trained_s = time.perf_counter() - started
                rows = evaluate_run(rundir, args.eval_slots, eval_seeds)
                per_seed.append({**{key: sum(row[key] for row in rows) / len(rows) for key in REPORTED},
                                 "seed": seed, "train_seconds": trained_s})
                print(f"compare: {algorithm} seed {seed}: delay {per_seed[-1]['delay_s']:.3g} s, cost "
                      f"{per_seed[-1]['cost']:.4g} ({trained_s:.0f} s)", flush=True)
            results[algorithm] = {**summary(per_seed), "per_seed": per_seed,
                                  "seed_001_delay_s": SEED_001_DELAY_S[algorithm],
                                  "meets_delay_constraint": summary(per_seed)["delay_s"]["mean"]
                                  <= scenario["system.delay_constraint_s"]}
    for name in OPTIMIZERS:
        rows = run_solver(name, scenario, table, args.eval_slots, eval_seeds)
        results[name] = {**summary(rows), "meets_delay_constraint": summary(rows)["delay_s"]["mean"]
                         <= scenario["system.delay_constraint_s"]}
        print(f"compare: {name}: delay {results[name]['delay_s']['mean']:.3g} s, cost "
              f"{results[name]['cost']['mean']:.4g}", flush=True)
    return {"scenario": args.scenario, "iterations": args.iterations, "slots_per_iteration": args.slots,
            "envs": args.envs, "training_seeds": args.seeds, "eval_seeds": eval_seeds, "eval_slots": args.eval_slots,
            "delay_constraint_s": scenario["system.delay_constraint_s"], "methods": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-leakage", action="store_true", help="static workloads, stand-in leakage")
    parser.add_argument("--throughput-envs", type=int, default=1)
    parser.add_argument("--throughput-iterations", type=int, default=3)
    parser.add_argument("--envs", type=int, default=8, help="environments per iteration in the comparison")
    parser.add_argument("--compare", action="store_true", help="also train and compare the five algorithms")
    parser.add_argument("--scenario", default="small", help="scenario of the comparison")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--slots", type=int, default=PAPER_SLOTS)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--eval-seeds", default=",".join(str(seed) for seed in range(100, 110)))
    parser.add_argument("--eval-slots", type=int, default=100)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "hc_mappo_l.json")
    args = parser.parse_args()
    paper_overrides: list[str] = []
    compare_overrides: list[str] = []
    if args.synthetic_leakage:
        directory = Path(tempfile.mkdtemp(prefix="edgeprof-synthetic-"))
        paper_overrides = [profiles_override(load_scenario("paper")["services.models"], directory)]
        if args.compare:
            compare_overrides = [profiles_override(load_scenario(args.scenario)["services.models"], directory)]
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "hc_mappo_l",
        "edgeprof": edgeprof.__version__,
        "machine": machine(),
        "profiles": SOURCE if args.synthetic_leakage else "shipped (edgeprof/data/profiles)",
        "throughput": throughput(paper_overrides, args.throughput_envs, args.throughput_iterations),
    }
    if args.compare:
        result["comparison"] = compare(args, compare_overrides)
    result["wall_s"] = time.perf_counter() - started
    write_result(args.output, result, "throughput")


if __name__ == "__main__":
    main()
