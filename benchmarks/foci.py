"""Benchmark: seed 002's Table 1 and Fig. 4 on the `foci` system, the oracle's cost, and the paper-size budget.

Part 1, Table 1 and Fig. 4: the learners IQL, AMFQ, FOCI and the ablations FOCI-OFR (OFR only) and FOCI-COA (COA
only) (or the `--learners` named, IQL and FOCI among them) each trained on every seed of `--seeds` (a run per
seed, one thread), `--episodes` episodes of `--slots` steps, with `--hparam` settings for every run; then every
method evaluated greedily, and the solvers ALP, NSG and RANDOM (uniform among allowed actions: the untrained
learners) run, on the same evaluation episode per seed (seed 1000 + training seed, `--eval-slots` steps, paired). Mean
and 95% interval over the seeds beside the paper's Table 1 (which reports mJ, and a reward whose units cannot
be reconstructed: ours is the SI QoS cost -R = E[J] + D[s] + C, lower is better), with D_st violation rates;
the acceptance checks (FOCI's max latency below NSG's per seed, its switch cost below IQL's mean) and the
paper's claims as ratios (max latency and max energy vs NSG, switch cost vs IQL). Then what OFR teaches: on
the same episodes under IQL's trained policy, the OFR reward (-R_n^* of the device's edge) of the device-steps an
edge served beside their own cost, and how often their edge also served a device that switched (its switch
cost, 1 per switch at unit weight, becomes every co-located device's OFR reward).

Part 2, the fairness oracle: at the paper's size (`foci` preset, 240 devices, 11 edges) NSG's decisions over
`--oracle-steps` steps; every edge-step's oracle timed (IPLS + min-risk rounding, and the exact greedy) in ms,
and the rounding gap (min-risk over exact worst cost, minus 1).

Part 3, the paper's budget: a FOCI training episode of `--paper-steps` steps at the paper's size timed (CPU) with
the settings of part 1, after a first such episode that fills the replay; the projected time of a 1-h episode
(240 steps), of a 300-episode run (epsilon 0.99^300 = 0.05), and of the whole table at that size (every
learner x seed).

Runs live in `--runs DIR` (default: benchmarks/results/foci_runs, not committed): stop at any time and run the
same command again; unfinished runs resume from their last checkpoint to the numbers of an uninterrupted run.

    python benchmarks/foci.py [--scenario foci-small] [--set section.field=value] [--seeds 0,1,2,3,4]
        [--episodes 75] [--slots 240]
        [--hparam epsilon_decay=0.96 --hparam update_every=4] [--eval-slots 240] [--learners iql,foci,...]
        [--runs DIR] [-o PATH]
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
from edgeprof.experiments.definitions import TABLE_1
from edgeprof.files import write_text_atomic
from edgeprof.optimize import fairness
from edgeprof.optimize.foci import Neurosurgeon, oracle_costs
from edgeprof.optimize.solve import run_solver
from edgeprof.rl.foci import Trainer, make_config, parse_hyperparameters
from edgeprof.rl.runs import RunPaths, evaluate_run, load_run, train
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.foci import FociEnv
from edgeprof.sim.scenario import load_scenario

RESULTS = Path(__file__).parent / "results"
HPARAMS = ("epsilon_decay=0.96", "update_every=4")  # ours: 75 episodes end at epsilon 0.96^75 = 0.047
LEARNERS = ("iql", "amfq", "foci", "foci-ofr", "foci-coa")
SOLVERS = ("alp", "nsg", "random")
TABLE_METHODS = ("random", "alp", "nsg", "iql", "amfq", "foci")
ABLATION = ("nsg", "foci-ofr", "foci-coa", "foci")
PAPER = TABLE_1  # Table 1 (ALP, NSG, IQL, AMFQ, FOCI)
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
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (*SOLVERS, *args.learners)}
    train_seconds: dict[str, list[float]] = {name: [] for name in args.learners}
    for seed in args.seeds:
        for solver in SOLVERS:
            rows[solver].extend(run_solver(solver, scenario, workload, args.eval_slots, [eval_seed(seed)]))
        for method in args.learners:
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


def part_ofr_signal(args, workload) -> dict[str, Any]:
    """Under IQL's trained policy on each seed's evaluation episode: the mean own cost and mean OFR reward (as a
    cost, -R_n^*) of the device-steps an edge served, the share of them whose edge also served a device that
    switched, and the mean own cost of the device-steps run locally (95% intervals over seeds); with gamma C
    constant in the oracle (ours) and divided by l (`edges.oracle_switch_term = "literal"`, eq. 11 as written)."""
    signal = {}
    for term in ("constant", "literal"):
        per_seed: dict[str, list[float]] = {"served_own_cost": [], "served_ofr_cost": [],
                                            "served_with_a_switcher": [], "local_own_cost": []}
        for seed in args.seeds:
            run = load_run(args.runs / f"iql_seed{seed}")
            scenario = run.scenario.with_value("edges.oracle_switch_term", term)
            env = FociEnv(scenario, workload, eval_seed(seed))
            policy = run.trainer.make_policy(run, workload, ())(env, eval_seed(seed))
            own, ofr, crowded, local = [], [], [], []
            for _ in range(args.eval_slots):
                outcome = env.step(policy.act(env))
                served = outcome.served_by >= 0
                shaped = oracle_costs(outcome, env.num_edges, env.sms, scenario["edges.oracle_method"],
                                      scenario["edges.oracle_tolerance"])
                switching_edges = np.unique(outcome.served_by[served & outcome.switched])
                own.extend(outcome.cost[served])
                ofr.extend(shaped[served])
                crowded.extend(np.isin(outcome.served_by[served], switching_edges))
                local.extend(outcome.cost[~served])
            for key, values in zip(per_seed, (own, ofr, crowded, local), strict=True):
                if values:
                    per_seed[key].append(float(np.mean(values)))
        signal[term] = {key: interval(values) if values else None for key, values in per_seed.items()}
    return signal


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


def part_paper_budget(steps: int, settings: dict[str, Any], runs: int) -> dict[str, Any]:
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
            "cpu_h_for_the_table": per_step * 240 * 300 / 3600 * runs, "runs": runs,
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
    methods = [m for m in TABLE_METHODS if m in summary]
    intro = (f"Training: {settings['iterations']} episodes of {settings['slots_per_iteration']} steps per run, "
             f"settings {' '.join(result['hparams'])}; evaluation: greedy, one episode of "
             f"{result['eval_slots']} steps per seed (seed 1000 + training seed; the solvers on the same episodes); "
             f"mean ± 95% half-interval over seeds {','.join(map(str, result['seeds']))}; the paper's Table 1 value "
             "in brackets.")
    changed = f" with {', '.join(result['overrides'])}" if result["overrides"] else ""
    lines = [f"# FOCI (seed 002) on `{result['scenario']}`{changed}: Table 1 and Fig. 4", "", intro, "",
             "## Table 1", "",
             "| metric | " + " | ".join(m.upper() for m in methods) + " |", "|---|" + "---|" * len(methods)]
    for key, label, paper_key in ROWS:
        cells = [_cell(summary[m][key], PAPER.get(m, {}).get(paper_key) if paper_key else None, key)
                 for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if all(m in summary for m in ABLATION):
        lines += ["", "## Fig. 4 ablation", "", "| metric | " + " | ".join(ABLATION) + " |",
                  "|---|" + "---|" * len(ABLATION)]
        for key in ("latency_ms", "max_latency_ms", "energy_mj", "max_energy_mj", "switches_per_hour", "qos_cost",
                    "violation_rate", "offload_rate"):
            lines.append(f"| {key} | " + " | ".join(_cell(summary[m][key], None, key) for m in ABLATION) + " |")
    below = checks["foci_max_latency_below_nsg_seeds"]
    ratios = "; ".join(
        f"{label} {checks[key]:+.1%} (paper {paper[key]:+.1%}: the direction "
        f"{'holds' if checks[key] is not None and checks[key] < 0 else 'does not hold'})"
        for key, label in (("max_latency_vs_nsg", "max latency vs NSG"), ("max_energy_vs_nsg", "max energy vs NSG"),
                           ("switches_vs_iql", "switches vs IQL"))) + "."
    run_s = [value["mean"] for value in table["train_s"].values()]
    full_small = (f"At the paper's 300 episodes a `{result['scenario']}` run would take "
                  f"{float(np.mean(run_s)) * 300 / settings['iterations'] / 60:.0f} min wall here (the mean run, "
                  f"{float(np.mean(run_s)) / 60:.1f} min for {settings['iterations']} episodes, scaled), "
                  f"{float(np.sum(run_s)) * len(result['seeds']) * 300 / settings['iterations'] / 3600:.1f} h for all "
                  f"{len(run_s) * len(result['seeds'])} runs.")
    oracle_line = (f"Oracle at the paper's size ({oracle['edge_steps']} edge-steps of NSG decisions, "
                   f"{oracle['devices_per_edge']['mean']:.1f} devices per edge): IPLS + min-risk rounding "
                   f"{oracle['ms_per_edge_step']['min-risk']['median']:.3f} ms, exact greedy "
                   f"{oracle['ms_per_edge_step']['greedy']['median']:.3f} ms per edge-step (median); rounding gap "
                   f"mean {oracle['rounding_gap']['mean']:.2e}, max {oracle['rounding_gap']['max']:.2e}, exact on "
                   f"{oracle['rounding_gap']['exact_share']:.1%} of edge-steps.")
    budget_line = (f"Paper's size (240 devices, 11 edges), these settings, one thread: "
                   f"{budget['cpu_s_per_step'] * 1e3:.0f} ms CPU per training step, "
                   f"{budget['cpu_s_per_1h_episode']:.0f} s per 1-h episode (240 steps), "
                   f"{budget['cpu_h_for_300_episodes']:.1f} h for a 300-episode run (epsilon 0.99^300 = 0.05), "
                   f"{budget['cpu_h_for_the_table']:.1f} CPU-h for the table's {budget['runs']} runs at that size.")
    local_seeds = sum(row["offload_rate"] < 0.01 for row in table["rows"]["foci"])
    versus_random = "; ".join(
        f"{m.upper()} {summary[m]['qos_cost']['mean'] / summary['random']['qos_cost']['mean'] - 1:+.0%}"
        for m in methods if m != "random")
    signal, literal = result["ofr_signal"]["constant"], result["ofr_signal"]["literal"]
    signal_line = (f"Under IQL's trained policy, a device-step an edge served costs its device "
                   f"{signal['served_own_cost']['mean']:.3f} on average, but its OFR reward is "
                   f"-{signal['served_ofr_cost']['mean']:.3f}: on {signal['served_with_a_switcher']['mean']:.0%} of "
                   f"them its edge also served a device that switched, whose switch cost becomes everyone's reward "
                   "there" + (f"; a local device-step costs {signal['local_own_cost']['mean']:.3f}"
                              if signal["local_own_cost"] else "; it ran no device-step locally") +
                   f". With eq. 11's literal form (gamma C divided by l: the oracle can give a switcher more SMs) the "
                   f"OFR reward is -{literal['served_ofr_cost']['mean']:.3f} against an own cost of "
                   f"{literal['served_own_cost']['mean']:.3f}.")
    lines += ["", "## Checks and claims", "",
              f"- FOCI's max latency below NSG's on {below} of {checks['seeds']} seeds (acceptance: at least 4 of 5).",
              f"- FOCI's switch cost below IQL's mean: {checks['foci_switches_below_iql_mean']}.",
              f"- Claims as ratios of means: {ratios}",
              (f"- Mean QoS cost against RANDOM (uniform among allowed actions, the untrained learners): "
               f"{versus_random}."),
              (f"- FOCI ran every device locally (offload rate below 1%) on {local_seeds} of "
               f"{len(table['rows']['foci'])} seeds."), f"- What OFR teaches: {signal_line}",
              "", "## The oracle and the budget", "",
              f"- {oracle_line}",
              (f"- Wall time (a shared machine: CPU time is lower): training {table['train_s_total'] / 60:.1f} min "
               f"summed over {len(table['train_s'])} learners x {len(result['seeds'])} seeds (from the runs' logs, "
               f"over every sitting); this invocation {result['wall_s'] / 60:.1f} min wall, "
               f"{result['cpu_s'] / 60:.1f} min CPU (finished runs are read back, not retrained)."),
              f"- {full_small}", f"- {budget_line}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="foci-small")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.field=value")
    parser.add_argument("--seeds", type=lambda text: [int(s) for s in text.split(",")], default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=int, default=75)
    parser.add_argument("--slots", type=int, default=240, help="steps per training episode")
    parser.add_argument("--hparam", action="append", help=f"NAME=VALUE, for every run (default: {' '.join(HPARAMS)})")
    parser.add_argument("--eval-slots", type=int, default=240)
    parser.add_argument("--oracle-steps", type=int, default=40)
    parser.add_argument("--paper-steps", type=int, default=40)
    parser.add_argument("--learners", type=lambda text: text.split(","), default=list(LEARNERS),
                        help="comma-separated, iql and foci among them")
    parser.add_argument("--runs", type=Path, default=RESULTS / "foci_runs")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "foci_small.json")
    args = parser.parse_args()
    args.hparam = args.hparam or list(HPARAMS)
    if not {"iql", "foci"} <= set(args.learners) <= set(LEARNERS):
        parser.error(f"--learners must name iql and foci, and only these: {', '.join(LEARNERS)}")
    torch.set_num_threads(1)
    start, cpu_start = time.perf_counter(), time.process_time()
    scenario = load_scenario(args.scenario, args.overrides)
    workload = load_workload(scenario)
    settings = {"iterations": args.episodes, "slots_per_iteration": args.slots, "checkpoint_every": 25,
                **parse_hyperparameters(args.hparam)}
    table = part_table(args, scenario, workload, settings)
    ofr_signal = part_ofr_signal(args, workload)
    oracle = part_oracle(args.oracle_steps)
    budget = part_paper_budget(args.paper_steps, settings, len(args.learners) * len(args.seeds))
    result = {"edgeprof_version": edgeprof.__version__, "machine": machine(), "scenario": args.scenario,
              "overrides": args.overrides, "seeds": args.seeds, "learners": args.learners,
              "eval_slots": args.eval_slots, "hparams": args.hparam, "settings": settings, "table": table,
              "ofr_signal": ofr_signal, "oracle": oracle, "paper_budget": budget,
              "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output.with_suffix(".md"), markdown(result))
    write_result(args.output, result, "table")


if __name__ == "__main__":
    main()
