"""Benchmark: seed 002's Table 1 and Fig. 4 on the `foci` system, the oracle's cost, and the paper-size budget.

Part 1, Table 1 and Fig. 4: the learners IQL, AMFQ, FOCI and the ablations FOCI-OFR (OFR only) and FOCI-COA (COA
only) each trained on every seed of `--seeds` (a run per seed, one thread), `--episodes` episodes of `--slots`
steps, with `--hparam` settings for every run; then every method evaluated greedily, and the solvers ALP and NSG
run, on the same evaluation episode per seed (seed 1000 + training seed, `--eval-slots` steps, paired). Mean
and 95% interval over the seeds beside the paper's Table 1 (which reports mJ, and a reward whose units cannot
be reconstructed: ours is the SI QoS cost -R = E[J] + D[s] + C, lower is better), with D_st violation rates;
the acceptance checks (FOCI's max latency below NSG's per seed, its switch cost below IQL's mean) and the
paper's claims as ratios (max latency and max energy vs NSG, switch cost vs IQL).

Part 2, the fairness oracle: at the paper's size (`foci` preset, 240 devices, 11 edges) NSG's decisions over
`--oracle-steps` steps; every edge-step's oracle timed (IPLS + min-risk rounding, and the exact greedy) in ms,
and the rounding gap (min-risk over exact worst cost, minus 1).

Part 3, the paper's budget: a FOCI training episode of `--paper-steps` steps at the paper's size timed (CPU) with
the settings of part 1, after a first such episode that fills the replay; the projected time of a 1-h episode (240 steps) and of 300 episodes (epsilon 0.99^300 = 0.05).

Runs live in `--runs DIR` (default: benchmarks/results/foci_runs, not committed): stop at any time and run the
same command again; unfinished runs resume from their last checkpoint to the numbers of an uninterrupted run.

    python benchmarks/foci.py [--scenario foci-small] [--set section.field=value] [--seeds 0,1,2,3,4] [--episodes 75] [--slots 240]
        [--hparam epsilon_decay=0.96 --hparam update_every=4] [--eval-slots 240] [--runs DIR] [-o PATH]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from reporting import interval, machine, write_result

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.optimize import fairness
from edgeprof.optimize.foci import Neurosurgeon
from edgeprof.optimize.solve import run_solver
from edgeprof.rl.foci import Trainer, make_config, parse_hyperparameters
from edgeprof.rl.runs import RunPaths, evaluate_run, train
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.foci import FociEnv
from edgeprof.sim.scenario import load_scenario

RESULTS = Path(__file__).parent / "results"
LEARNERS = ("iql", "amfq", "foci", "foci-ofr", "foci-coa")
TABLE_METHODS = ("alp", "nsg", "iql", "amfq", "foci")
ABLATION = ("nsg", "foci-ofr", "foci-coa", "foci")
# Table 1 (ALP, NSG, IQL, AMFQ, FOCI): avg/max latency ms, avg/max energy mJ, avg switch cost, avg/max reward
PAPER = {
    "alp": {"latency_ms": 34.20, "max_latency_ms": 39.51, "energy_mj": 60.24, "max_energy_mj": 71.44,
            "switches": None, "reward": 1.248, "max_reward": 1.417},
    "nsg": {"latency_ms": 32.77, "max_latency_ms": 62.72, "energy_mj": 22.16, "max_energy_mj": 62.55,
            "switches": 2.88, "reward": 1.157, "max_reward": 2.193},
    "iql": {"latency_ms": 27.83, "max_latency_ms": 30.08, "energy_mj": 23.95, "max_energy_mj": 38.48,
            "switches": 3.06, "reward": 0.988, "max_reward": 1.065},
    "amfq": {"latency_ms": 27.33, "max_latency_ms": 27.96, "energy_mj": 25.87, "max_energy_mj": 35.16,
             "switches": 3.35, "reward": 0.971, "max_reward": 0.997},
    "foci": {"latency_ms": 26.82, "max_latency_ms": 27.20, "energy_mj": 24.50, "max_energy_mj": 33.50,
             "switches": 1.52, "reward": 0.953, "max_reward": 0.973},
}
ROWS = (("latency_ms", "avg latency (ms)", "latency_ms"), ("max_latency_ms", "max latency (ms)", "max_latency_ms"),
        ("energy_mj", "avg energy (mJ)", "energy_mj"), ("max_energy_mj", "max energy (mJ)", "max_energy_mj"),
        ("switches_per_hour", "switches per device-hour", "switches"),
        ("qos_cost", "avg QoS cost -R (SI; paper: reward)", "reward"),
        ("max_qos_cost", "max QoS cost -R (SI; paper: reward)", "max_reward"),
        ("worst_device_latency_ms", "worst device's mean latency (ms)", None),
        ("violation_rate", "D_st violation rate", None), ("offload_rate", "offload rate", None))


def eval_seed(seed: int) -> int:
    return 1000 + seed


def finished(rundir: Path, iterations: int) -> bool:
    paths = RunPaths(rundir)
    if not paths.log.is_file():
        return False
    with paths.log.open(newline="") as handle:
        return len(list(csv.DictReader(handle))) >= iterations


def train_one(method: str, seed: int, scenario, workload, settings: dict[str, Any], runs: Path, name: str) -> float:
    """Train, resume or read back one run; returns its training seconds (summed over sittings)."""
    rundir = runs / f"{method}_seed{seed}"
    config = make_config(method, seed=seed, **settings)
    if not finished(rundir, config.iterations):
        train(config, scenario, workload, rundir, resume=RunPaths(rundir).checkpoint.is_file(), scenario_name=name)
    with RunPaths(rundir).log.open(newline="") as handle:
        return sum(float(row["seconds"]) for row in csv.DictReader(handle))


def part_table(args, scenario, workload, settings: dict[str, Any]) -> dict[str, Any]:
    runs = args.runs
    runs.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ("alp", "nsg", *LEARNERS)}
    train_seconds: dict[str, list[float]] = {name: [] for name in LEARNERS}
    for seed in args.seeds:
        for solver in ("alp", "nsg"):
            rows[solver].extend(run_solver(solver, scenario, workload, args.eval_slots, [eval_seed(seed)]))
        for method in LEARNERS:
            start = time.perf_counter()
            train_seconds[method].append(train_one(method, seed, scenario, workload, settings, runs, args.scenario))
            row = evaluate_run(runs / f"{method}_seed{seed}", args.eval_slots, [eval_seed(seed)])[0]
            rows[method].append({**row, "training_seed": seed})
            print(f"{method} seed {seed}: max latency {row['max_latency_ms']:.1f} ms, switches "
                  f"{row['switches_per_hour']:.2f}/h ({time.perf_counter() - start:.0f} s)", flush=True)
    summary = {name: {key: interval([row[key] for row in method_rows]) for key, _, _ in ROWS}
               for name, method_rows in rows.items()}
    nsg_max = [row["max_latency_ms"] for row in rows["nsg"]]
    foci_max = [row["max_latency_ms"] for row in rows["foci"]]
    iql_switch = float(np.mean([row["switches_per_hour"] for row in rows["iql"]]))
    foci_switch = float(np.mean([row["switches_per_hour"] for row in rows["foci"]]))
    mean = {name: {key: value["mean"] for key, value in stats.items()} for name, stats in summary.items()}
    checks = {
        "foci_max_latency_below_nsg_seeds": int(sum(f < n for f, n in zip(foci_max, nsg_max, strict=True))),
        "seeds": len(args.seeds),
        "foci_switches_below_iql_mean": foci_switch < iql_switch,
        "max_latency_vs_nsg": mean["foci"]["max_latency_ms"] / mean["nsg"]["max_latency_ms"] - 1,
        "max_energy_vs_nsg": mean["foci"]["max_energy_mj"] / mean["nsg"]["max_energy_mj"] - 1,
        "switches_vs_iql": foci_switch / iql_switch - 1 if iql_switch else None,
        "paper": {"max_latency_vs_nsg": 27.20 / 62.72 - 1, "max_energy_vs_nsg": 33.50 / 62.55 - 1,
                  "switches_vs_iql": 1.52 / 3.06 - 1},
    }
    return {"rows": rows, "summary": summary, "checks": checks,
            "train_s": {name: interval(values) for name, values in train_seconds.items()},
            "train_s_total": float(sum(sum(values) for values in train_seconds.values()))}


def part_oracle(steps: int) -> dict[str, Any]:
    scenario = load_scenario("foci")
    workload = load_workload(scenario)
    env = FociEnv(scenario, workload, 0)
    policy, eps = Neurosurgeon(), scenario["edges.oracle_tolerance"]
    times = {"min-risk": [], "greedy": []}
    gaps, sizes = [], []
    for _ in range(steps):
        outcome = env.step(policy.act(env))
        for n in range(env.num_edges):
            members = outcome.served_by == n
            if not members.any():
                continue
            rc, rf = outcome.rc[members], outcome.rf[members]
            worst = {}
            for method, spent in times.items():
                start = time.perf_counter()
                sms = fairness.oracle_allocation(method, rc, rf, env.sms, eps)
                spent.append((time.perf_counter() - start) * 1e3)
                worst[method] = float(fairness.costs(rc, rf, sms).max())
            gaps.append(worst["min-risk"] / worst["greedy"] - 1)
            sizes.append(int(members.sum()))
    return {"scenario": "foci", "edge_steps": len(gaps), "devices_per_edge": interval(sizes),
            "ms_per_edge_step": {method: {"median": float(np.median(v)), "mean": float(np.mean(v))}
                                 for method, v in times.items()},
            "rounding_gap": {"mean": float(np.mean(gaps)), "max": float(np.max(gaps)),
                             "exact_share": float(np.mean(np.array(gaps) <= 1e-12))}}


def part_paper_budget(steps: int, settings: dict[str, Any]) -> dict[str, Any]:
    scenario = load_scenario("foci")
    workload = load_workload(scenario)
    config = make_config("foci", slots_per_iteration=steps, iterations=2,
                         **{k: v for k, v in settings.items() if k not in ("iterations", "slots_per_iteration")})
    trainer = Trainer(config, scenario, workload)
    trainer.run_iteration()  # warm-up: fills the replay past learning_starts
    start = time.process_time()
    trainer.run_iteration()
    per_step = (time.process_time() - start) / steps
    return {"scenario": "foci", "steps_timed": steps, "cpu_s_per_step": per_step,
            "cpu_s_per_1h_episode": per_step * 240, "cpu_h_for_300_episodes": per_step * 240 * 300 / 3600,
            "settings": {k: v for k, v in settings.items()}}


def _cell(stats: dict[str, float], paper: float | None, key: str) -> str:
    digits = 3 if key.endswith("rate") or key.startswith(("qos", "max_qos")) else 1
    half = (stats["ci95_high"] - stats["ci95_low"]) / 2
    text = f"{stats['mean']:.{digits}f} ± {half:.{digits}f}"
    return text + (f" ({paper:g})" if paper is not None else "")


def markdown(result: dict[str, Any]) -> str:
    table = result["table"]
    summary, checks, settings = table["summary"], table["checks"], result["settings"]
    oracle, budget, paper = result["oracle"], result["paper_budget"], checks["paper"]
    intro = (f"Training: {settings['iterations']} episodes of {settings['slots_per_iteration']} steps per run, "
             f"settings {' '.join(result['hparams']) or 'default'}; evaluation: greedy, one episode of "
             f"{result['eval_slots']} steps per seed (seed 1000 + training seed; the solvers on the same episodes); "
             f"mean ± 95% half-interval over seeds {','.join(map(str, result['seeds']))}; the paper's Table 1 value "
             "in brackets.")
    changed = f" with {', '.join(result['overrides'])}" if result["overrides"] else ""
    lines = [f"# FOCI (seed 002) on `{result['scenario']}`{changed}: Table 1 and Fig. 4", "", intro, "", "## Table 1", "",
             "| metric | " + " | ".join(m.upper() for m in TABLE_METHODS) + " |", "|---|" + "---|" * len(TABLE_METHODS)]
    for key, label, paper_key in ROWS:
        cells = [_cell(summary[m][key], PAPER[m].get(paper_key) if paper_key else None, key) for m in TABLE_METHODS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Fig. 4 ablation", "", "| metric | " + " | ".join(ABLATION) + " |",
              "|---|" + "---|" * len(ABLATION)]
    for key in ("latency_ms", "max_latency_ms", "energy_mj", "max_energy_mj", "switches_per_hour", "qos_cost",
                "violation_rate", "offload_rate"):
        lines.append(f"| {key} | " + " | ".join(_cell(summary[m][key], None, key) for m in ABLATION) + " |")
    below = checks["foci_max_latency_below_nsg_seeds"]
    ratios = (f"max latency vs NSG {checks['max_latency_vs_nsg']:+.1%} (paper {paper['max_latency_vs_nsg']:+.1%}); "
              f"max energy vs NSG {checks['max_energy_vs_nsg']:+.1%} (paper {paper['max_energy_vs_nsg']:+.1%}); "
              f"switches vs IQL {checks['switches_vs_iql']:+.1%} (paper {paper['switches_vs_iql']:+.1%}).")
    oracle_line = (f"Oracle at the paper's size ({oracle['edge_steps']} edge-steps of NSG decisions, "
                   f"{oracle['devices_per_edge']['mean']:.1f} devices per edge): IPLS + min-risk rounding "
                   f"{oracle['ms_per_edge_step']['min-risk']['median']:.3f} ms, exact greedy "
                   f"{oracle['ms_per_edge_step']['greedy']['median']:.3f} ms per edge-step (median); rounding gap "
                   f"mean {oracle['rounding_gap']['mean']:.2e}, max {oracle['rounding_gap']['max']:.2e}, exact on "
                   f"{oracle['rounding_gap']['exact_share']:.1%} of edge-steps.")
    budget_line = (f"Paper's size (240 devices, 11 edges), these settings, one thread: "
                   f"{budget['cpu_s_per_step'] * 1e3:.0f} ms CPU per training step, "
                   f"{budget['cpu_s_per_1h_episode']:.0f} s per 1-h episode (240 steps), "
                   f"{budget['cpu_h_for_300_episodes']:.1f} h for 300 episodes (epsilon 0.99^300 = 0.05).")
    lines += ["", "## Checks and claims", "",
              f"- FOCI's max latency below NSG's on {below} of {checks['seeds']} seeds (acceptance: at least 4 of 5).",
              f"- FOCI's switch cost below IQL's mean: {checks['foci_switches_below_iql_mean']}.",
              f"- Claims as ratios of means: {ratios}", "", "## The oracle and the budget", "",
              f"- {oracle_line}",
              (f"- Training: {table['train_s_total'] / 60:.1f} min for {len(LEARNERS)} learners x "
               f"{len(result['seeds'])} seeds; the whole benchmark {result['wall_s'] / 60:.1f} min wall."),
              f"- {budget_line}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="foci-small")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.field=value")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=75)
    parser.add_argument("--slots", type=int, default=240, help="steps per training episode")
    parser.add_argument("--hparam", action="append", default=["epsilon_decay=0.96", "update_every=4"])
    parser.add_argument("--eval-slots", type=int, default=240)
    parser.add_argument("--oracle-steps", type=int, default=40)
    parser.add_argument("--paper-steps", type=int, default=40)
    parser.add_argument("--runs", type=Path, default=RESULTS / "foci_runs")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "foci_small.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    scenario = load_scenario(args.scenario, args.overrides)
    workload = load_workload(scenario)
    settings = {"iterations": args.episodes, "slots_per_iteration": args.slots, "checkpoint_every": 25,
                **parse_hyperparameters(args.hparam)}
    table = part_table(args, scenario, workload, settings)
    oracle = part_oracle(args.oracle_steps)
    budget = part_paper_budget(args.paper_steps, settings)
    result = {"edgeprof_version": edgeprof.__version__, "machine": machine(), "scenario": args.scenario,
              "overrides": args.overrides,
              "seeds": args.seeds, "eval_slots": args.eval_slots, "hparams": args.hparam, "settings": settings,
              "table": table, "oracle": oracle, "paper_budget": budget, "wall_s": time.perf_counter() - start}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output.with_suffix(".md"), markdown(result))
    write_result(args.output, result, "table")


if __name__ == "__main__":
    main()
