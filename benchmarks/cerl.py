"""Benchmark: seed 003 (CERL) at a CPU budget, beside the paper's numbers read from its text (sec. 5.2).

At each N of `--rl-devices` (default 5 and 10), CERL, D2QN and DDQN train on `--seeds` (5) for `--epochs`
epochs each (one generation and one episode of `--train-slots` arrival slots of the agent per epoch, one number
or one per N;
`edgeprof train`'s defaults otherwise),
`--workers` runs at a time with one thread each, `--hparam NAME=VALUE` settings for every run. Every trained agent is
evaluated greedily on the same `--eval-seeds` episodes of `--eval-slots` arrival slots, and so are the untrained
network of each seed (the same initialisation, greedy: the learned methods' untrained baseline) and the solvers
(LC, EC, Random and their deadline-share variants) at every N of `--devices` (5..50). Reported, mean and 95%
interval over the training seeds:

- Fig. 4: each method's training-episode cost per epoch, with its environment steps per epoch (CERL's elites
  play too, so it gets more steps per epoch; cost per step is cost against the cumulated steps), and its final
  greedy cost;
- Fig. 6: the greedy cost and collaboration count per method (the paper's N = 30 is beyond this budget);
- Fig. 7: cost and completion rate against N for CERL (at the trained N) and the solvers;
- seconds (wall and CPU) per epoch and milliseconds per decision; a probe of CERL at N = 50 (`--probe-devices`:
  two epochs, the second timed, then greedy decisions of its agent; "" for none, when N = 50 is trained) and what
  the paper's 200 epochs would take at the measured speed;
- the paper's claims with ours: N = 10 costs ~2 (CERL), ~5 (D2QN), ~7 (DDQN); N = 50 ~40 against ~70;
  -65.7% cost and +57.5% completion against LC (relative and absolute readings); CERL completes 100%; ~20 s
  per epoch and ~25 ms per decision at N = 50. The units are unknown: ratios are compared, not values;
- the acceptance checks of issue 32: CERL's cost below LC's and Random's on at least 4 of 5 training seeds,
  its completion at least LC's, and no policy's mean cost per completed task below the bound.

Writes benchmarks/results/cerl.json, cerl.md (the tables) and cerl_fig4.png. Every finished job (a training
run with its evaluation, a solver, a probe) is kept as JSON in a folder of `--workdir` named after the settings;
a rerun with the same settings reuses them, so an interrupted benchmark resumes where it stopped.

    nice python benchmarks/cerl.py [--rl-devices 5,10] [--epochs 20] [--train-slots 20 | 6,2 (one per N)]
        [--seeds 0,1,2,3,4] [--workers 2] [--hparam K=V] [--devices 5,10,20,30,40,50] [--eval-seeds 1000,...]
        [--eval-slots 20] [--probe-devices 50 | ""] [--probe-slots 20] [--workdir benchmarks/results/cerl-work]

Finished jobs are named after their N and slots (training or probe), and the work folder after the other
settings, so runs at more N (`--rl-devices 10`, then `10,30`), or with a probe added, reuse the earlier jobs.
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import hashlib
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from reporting import interval, machine, write_result

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.optimize.solve import run_solver
from edgeprof.rl import cerl as rl
from edgeprof.rl.runs import load_run, train
from edgeprof.sim.cerl import SYSTEM, ChainEnv, cost_bound_per_task, play
from edgeprof.sim.evaluation import load_workload, run_episodes
from edgeprof.sim.scenario import load_scenario

RESULTS = Path(__file__).resolve().parent / "results"
ALGORITHMS = ("cerl", "d2qn", "ddqn")
SOLVERS = ("lc", "ec", "random", "lc-deadline", "ec-deadline")
UNTRAINED = "untrained"
METRICS = ("cost", "cost_per_task", "completion_rate", "collaborations", "objective")
PAPER = {
    "fig4_n10": {"cerl": 2.0, "d2qn": 5.0, "ddqn": 7.0},
    "fig4_n50": {"cerl": 40.0, "d2qn": 70.0, "ddqn": 70.0},
    "cost_reduction_vs_lc": 0.657,
    "completion_gain_vs_lc": 0.575,
    "cerl_completion": 1.0,
    "seconds_per_epoch_n50": 20.0,
    "decision_ms_n50": 25.0,
    "epochs": 200,
}


def scenario_for(devices: int):
    return load_scenario("cerl", [f"system.num_devices={devices}"])


def train_one(algorithm: str, devices: int, seed: int, epochs: int, train_slots: int, hparams: list[str],
              eval_seeds: list[int], eval_slots: int, workdir: str) -> dict[str, Any]:
    """Train one run and evaluate its agent greedily: the log, the evaluation rows, the times."""
    import torch

    torch.set_num_threads(1)
    scenario = scenario_for(devices)
    workload = load_workload(scenario)
    rundir = Path(workdir) / f"{algorithm}-n{devices}-s{seed}"
    config = rl.make_config(algorithm, seed=seed, iterations=epochs, checkpoint_every=epochs,
                            slots_per_iteration=train_slots, **rl.parse_hyperparameters(hparams))
    wall, cpu = time.perf_counter(), time.process_time()
    log = train(config, scenario, workload, rundir)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    make = rl.policy_maker(load_run(rundir), workload, ())
    policies = []

    def timed(env, episode_seed):
        policies.append(make(env, episode_seed))
        return policies[-1]

    rows = run_episodes(algorithm, scenario, workload, timed, eval_slots, eval_seeds)
    decisions = sum(p.decisions for p in policies)
    return {"algorithm": algorithm, "devices": devices, "seed": seed, "train_wall_s": wall, "train_cpu_s": cpu,
            "log": [{key: row[key] for key in ("iteration", "env_steps", "agent_steps", "cost", "completion_rate",
                                               "seconds")} for row in log],
            "eval": rows, "decision_ms": 1e3 * sum(p.decision_s for p in policies) / max(decisions, 1)}


def untrained_one(devices: int, seed: int, hparams: list[str], eval_seeds: list[int], eval_slots: int
                  ) -> dict[str, Any]:
    """The Q-network a run of `seed` starts from, acting greedily: what training adds is measured against it."""
    import torch

    torch.set_num_threads(1)
    scenario = scenario_for(devices)
    workload = load_workload(scenario)
    trainer = rl.Trainer(rl.make_config("cerl", seed=seed, **rl.parse_hyperparameters(hparams)), scenario, workload)
    trainer.online.eval()
    rows = run_episodes(UNTRAINED, scenario, workload, lambda env, _: rl.TrainedPolicy(trainer.online, trainer.spec),
                        eval_slots, eval_seeds)
    return {"algorithm": UNTRAINED, "devices": devices, "seed": seed, "eval": rows}


def solve_one(solver: str, devices: int, eval_seeds: list[int], eval_slots: int) -> dict[str, Any]:
    scenario = scenario_for(devices)
    rows = run_solver(solver, scenario, load_workload(scenario), eval_slots, eval_seeds)
    return {"solver": solver, "devices": devices, "eval": rows}


def probe(devices: int, slots: int, hparams: list[str], eval_seed: int) -> dict[str, Any]:
    """CERL at N = `devices`: two epochs (the first fills the buffer), the second timed, then its agent's greedy
    decisions on one episode (a decision as in execution: the state graph, one forward pass, the masks)."""
    import torch

    torch.set_num_threads(1)
    scenario = scenario_for(devices)
    config = rl.make_config("cerl", iterations=2, slots_per_iteration=slots,
                            **rl.parse_hyperparameters(hparams))
    trainer = rl.Trainer(config, scenario, load_workload(scenario))
    trainer.run_iteration()
    wall, cpu = time.perf_counter(), time.process_time()
    row = trainer.run_iteration()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    policy = rl.TrainedPolicy(trainer.online.eval(), trainer.spec)
    playing = time.process_time()
    play(ChainEnv(scenario, trainer.workload, slots, eval_seed), policy)
    decisions = max(policy.decisions, 1)
    return {"devices": devices, "slots": slots, "epoch_wall_s": wall, "epoch_cpu_s": cpu,
            "decision_ms": 1e3 * policy.decision_s / decisions,
            "decision_cpu_ms": 1e3 * (time.process_time() - playing) / decisions, "greedy_decisions": policy.decisions,
            "agent_steps": row["agent_steps"], "env_steps": row["env_steps"]}


def _mean_eval(result: dict[str, Any], metric: str) -> float:
    return float(np.mean([row[metric] for row in result["eval"] if row[metric] is not None]))


def _summary(results: list[dict[str, Any]], metric: str) -> dict[str, float]:
    """Over runs (training seeds): each run's mean over the evaluation episodes."""
    return interval([_mean_eval(result, metric) for result in results], SYSTEM.bounded_metrics.get(metric))


def _episodes(result: dict[str, Any], metric: str) -> dict[str, float]:
    """Over one policy's evaluation episodes (a solver)."""
    return interval([row[metric] for row in result["eval"] if row[metric] is not None],
                    SYSTEM.bounded_metrics.get(metric))


def summarise(trained: list[dict[str, Any]], untrained: list[dict[str, Any]], solved: list[dict[str, Any]],
              probes: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    by_run: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for result in [*trained, *untrained]:
        by_run.setdefault((result["algorithm"], result["devices"]), []).append(result)
    by_solver = {(result["solver"], result["devices"]): result for result in solved}
    fig4, fig6, fig7, timing, acceptance = {}, {}, {}, {}, {}
    for devices in args.rl_devices:
        fig4[devices], fig6[devices] = {}, {}
        for algorithm in ALGORITHMS:
            runs = by_run[algorithm, devices]
            epochs = len(runs[0]["log"])
            per_epoch = np.array([[row["cost"] for row in run["log"]] for run in runs])
            steps = np.array([[row["env_steps"] for row in run["log"]] for run in runs])
            fig4[devices][algorithm] = {
                "epoch_cost": [interval(list(per_epoch[:, e])) for e in range(epochs)],
                "env_steps": steps.mean(0).tolist(),
                "agent_steps": np.mean([[row["agent_steps"] for row in run["log"]] for run in runs], 0).tolist(),
                "final_greedy_cost": _summary(runs, "cost")}
            fig6[devices][algorithm] = {metric: _summary(runs, metric) for metric in METRICS}
            seconds = [row["seconds"] for run in runs for row in run["log"][1:]]
            timing.setdefault(devices, {})[algorithm] = {
                "seconds_per_epoch": interval(seconds),
                "cpu_s_per_epoch": interval([run["train_cpu_s"] / epochs for run in runs]),
                "decision_ms": interval([run["decision_ms"] for run in runs])}
        fig6[devices][UNTRAINED] = {metric: _summary(by_run[UNTRAINED, devices], metric) for metric in METRICS}
        lc, rand = by_solver["lc", devices], by_solver["random", devices]
        cerl_runs = sorted(by_run["cerl", devices], key=lambda run: run["seed"])
        initial = sorted(by_run[UNTRAINED, devices], key=lambda run: run["seed"])
        acceptance[devices] = {
            "cerl_below_lc_seeds": sum(_mean_eval(r, "cost") < _mean_eval(lc, "cost") for r in cerl_runs),
            "cerl_below_random_seeds": sum(_mean_eval(r, "cost") < _mean_eval(rand, "cost") for r in cerl_runs),
            "cerl_below_untrained_seeds": sum(_mean_eval(r, "cost") < _mean_eval(u, "cost")
                                              for r, u in zip(cerl_runs, initial, strict=True)),
            "cerl_completion": _summary(cerl_runs, "completion_rate")["mean"],
            "lc_completion": _mean_eval(lc, "completion_rate"),
            "seeds": len(cerl_runs)}
        acceptance[devices]["holds"] = (acceptance[devices]["cerl_below_lc_seeds"] >= 4
                                        and acceptance[devices]["cerl_below_random_seeds"] >= 4
                                        and acceptance[devices]["cerl_completion"] >= acceptance[devices][
                                            "lc_completion"])
    for devices in args.devices:
        fig7[devices] = {solver: {metric: _episodes(by_solver[solver, devices], metric) for metric in METRICS}
                         for solver in SOLVERS}
        if devices in args.rl_devices:
            fig7[devices] |= {name: fig6[devices][name] for name in ("cerl", UNTRAINED)}
    bounds, below = {}, []
    for devices in sorted(set(args.devices) | set(args.rl_devices)):
        scenario = scenario_for(devices)
        bounds[devices] = cost_bound_per_task(load_workload(scenario), scenario)
    for result in [*trained, *untrained, *solved]:
        name = result.get("algorithm") or result["solver"]
        below += [f"{name} N={result['devices']}" for row in result["eval"]
                  if row["cost_per_task"] is not None  # None: no task completed in the episode
                  and row["cost_per_task"] < bounds[result["devices"]] * (1 - 1e-9)]
    return {"fig4": fig4, "fig6": fig6, "fig7": fig7, "timing": timing, "probes": probes,
            "acceptance": acceptance, "bound": {"per_task": bounds, "policies_below": below}}


def claims(summary: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The paper's claims next to ours (ratios; the units are unknown)."""
    out = []
    for devices in args.rl_devices:
        costs = {a: summary["fig6"][devices][a]["cost"]["mean"] for a in ALGORITHMS}
        ours = (f"CERL {costs['cerl']:.3g}, D2QN {costs['d2qn']:.3g}, DDQN {costs['ddqn']:.3g}; D2QN/CERL "
                f"{costs['d2qn'] / costs['cerl']:.2f}, DDQN/CERL {costs['ddqn'] / costs['cerl']:.2f}")
        if devices == 50:
            paper = PAPER["fig4_n50"]
            out.append({"claim": "N = 50: CERL ~40 against ~70 for D2QN and DDQN (ratio 1.75)", "ours": ours,
                        "holds": costs["cerl"] < min(costs["d2qn"], costs["ddqn"]),
                        "paper_ratios": [paper["d2qn"] / paper["cerl"], paper["ddqn"] / paper["cerl"]]})
        else:
            paper = PAPER["fig4_n10"]
            out.append({"claim": f"N = {devices}: CERL < D2QN < DDQN (paper, N = 10: ~2 < ~5 < ~7; D2QN/CERL 2.5, "
                                 "DDQN/CERL 3.5)", "ours": ours,
                        "holds": costs["cerl"] < costs["d2qn"] < costs["ddqn"],
                        "paper_ratios": [paper["d2qn"] / paper["cerl"], paper["ddqn"] / paper["cerl"]]})
        lc = {metric: value["mean"] for metric, value in summary["fig7"][devices]["lc"].items()}
        cerl = {metric: value["mean"] for metric, value in summary["fig7"][devices]["cerl"].items()}
        reduction = 1 - cerl["cost"] / lc["cost"]
        relative = cerl["completion_rate"] / lc["completion_rate"] - 1
        absolute = cerl["completion_rate"] - lc["completion_rate"]
        out.append({"claim": f"N = {devices}: cost -65.7% against LC", "ours": f"{-100 * reduction:+.1f}%",
                    "holds": reduction >= 0.657})
        out.append({"claim": f"N = {devices}: completion +57.5% against LC (relative or absolute)",
                    "ours": f"relative {100 * relative:+.1f}%, absolute {100 * absolute:+.1f} points",
                    "holds": relative >= 0.575 or absolute >= 0.575})
        out.append({"claim": f"N = {devices}: CERL completes 100%", "ours": f"{100 * cerl['completion_rate']:.1f}%",
                    "holds": cerl["completion_rate"] >= 0.995})
    for devices in args.devices:
        cost = {name: summary["fig7"][devices][name]["cost"]["mean"] for name in SOLVERS}
        out.append({"claim": f"N = {devices}: EC costs less than LC (sec. 5.2.2)",
                    "ours": f"EC {cost['ec']:.3g}, LC {cost['lc']:.3g} with equal shares (holds: "
                            f"{'yes' if cost['ec'] < cost['lc'] else 'no'}); with the least shares that meet T: EC "
                            f"{cost['ec-deadline']:.3g}, LC {cost['lc-deadline']:.3g}",
                    "holds": cost["ec"] < cost["lc"]})
    for probe_row in summary["probes"]:
        out.append({"claim": f"N = {probe_row['devices']}: ~20 s per epoch, ~25 ms per decision",
                    "ours": f"{probe_row['epoch_wall_s']:.1f} s wall ({probe_row['epoch_cpu_s']:.1f} s CPU) per "
                            f"epoch of {probe_row['slots']} arrival slots (the probe's second, "
                            f"{probe_row['agent_steps']} agent steps); {probe_row['decision_ms']:.1f} ms wall, "
                            f"{probe_row['decision_cpu_ms']:.1f} ms CPU (the environment's step included) per greedy "
                            "decision; one thread of this shared machine",
                    "holds": None})
    if 50 in args.rl_devices:
        timing = summary["timing"][50]["cerl"]
        out.append({"claim": "N = 50: ~20 s per epoch, ~25 ms per decision (CERL, trained runs)",
                    "ours": f"{timing['seconds_per_epoch']['mean']:.1f} s wall ({timing['cpu_s_per_epoch']['mean']:.1f}"
                            f" s CPU) per epoch of {slots_for(args, 50)} arrival slots; "
                            f"{timing['decision_ms']['mean']:.1f} ms wall per greedy decision (the state graph, one "
                            "forward pass, the masks); one thread of this shared machine",
                    "holds": None})
    out.append({"claim": "stable within 200 epochs", "ours": f"not testable: {args.epochs} epochs in this budget",
                "holds": None})
    return out


def markdown(report: dict[str, Any], args: argparse.Namespace) -> str:
    summary = report["summary"]

    def ci(value: dict[str, float]) -> str:
        if value["ci95_low"] is None:
            return f"{value['mean']:.3g} (n = {value['n']})"
        return f"{value['mean']:.3g} [{value['ci95_low']:.3g}, {value['ci95_high']:.3g}]"

    intro = (f"`python benchmarks/cerl.py {' '.join(report['argv'])}` (edgeprof {report['edgeprof']}; time taken: "
             f"see Budget). Mean and 95% interval over the training seeds; greedy evaluation on the same episodes "
             f"(seeds {args.eval_seeds}, {args.eval_slots} arrival slots each). Cost: eq. 6 per slot over every task "
             "(failed ones too); the paper's unit is unknown. Times are one torch thread each; wall times are "
             "inflated by whatever else ran on the machine, CPU times are the better guide.")
    lines = [f"# CERL (seed 003) at a CPU budget: {args.epochs} epochs, seeds {args.seeds}", "", intro, ""]
    for devices in args.rl_devices:
        header = ("| method | cost per slot | cost per completed task | completion | collaborations | cost + "
                  "penalties | env steps (all epochs) | wall s/epoch | wall ms/decision |")
        lines += [f"## N = {devices}: Fig. 4 / 6 (greedy agents after training; {slots_for(args, devices)} arrival "
                  "slots per training episode)", "", header,
                  "|---|---|---|---|---|---|---|---|---|"]
        for algorithm in ALGORITHMS:
            row = summary["fig6"][devices][algorithm]
            timing = summary["timing"][devices][algorithm]
            lines.append(f"| {algorithm} | {ci(row['cost'])} | {ci(row['cost_per_task'])} | "
                         f"{ci(row['completion_rate'])} | {ci(row['collaborations'])} | {ci(row['objective'])} | "
                         f"{summary['fig4'][devices][algorithm]['env_steps'][-1]:.0f} | "
                         f"{timing['seconds_per_epoch']['mean']:.1f} | {timing['decision_ms']['mean']:.1f} |")
        row = summary["fig6"][devices][UNTRAINED]
        lines.append(f"| {UNTRAINED} (each seed's initial network) | {ci(row['cost'])} | {ci(row['cost_per_task'])} | "
                     f"{ci(row['completion_rate'])} | {ci(row['collaborations'])} | {ci(row['objective'])} | | | |")
        for solver in SOLVERS:
            row = summary["fig7"][devices][solver]
            lines.append(f"| {solver} (over episodes) | {ci(row['cost'])} | {ci(row['cost_per_task'])} | "
                         f"{ci(row['completion_rate'])} | {ci(row['collaborations'])} | {ci(row['objective'])} | | | |")
        lines.append("")
        lines += ["Training-episode cost per epoch (exploring; mean over seeds):", "",
                  "| epoch | " + " | ".join(ALGORITHMS) + " |", "|---|" + "---|" * len(ALGORITHMS)]
        epochs = len(summary["fig4"][devices]["cerl"]["epoch_cost"])
        for e in range(epochs):
            cells = [f"{summary['fig4'][devices][a]['epoch_cost'][e]['mean']:.3g}" for a in ALGORITHMS]
            lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
        lines.append("")
    policies = ("cerl", UNTRAINED, *SOLVERS)
    lines += ["## Fig. 7: cost per slot and completion against N (greedy CERL at the trained N; means)", "",
              "| N | " + " | ".join(f"{p} cost | {p} completion" for p in policies) + " |",
              "|---|" + "---|---|" * len(policies)]
    for devices in args.devices:
        cells = []
        for policy in policies:
            values = summary["fig7"][devices].get(policy)
            cells += ["", ""] if values is None else [f"{values['cost']['mean']:.3g}",
                                                      f"{values['completion_rate']['mean']:.3f}"]
        lines.append(f"| {devices} | " + " | ".join(cells) + " |")
    header = ("| N | CERL below LC (seeds) | below Random | below its untrained network | CERL completion | "
              "LC completion | holds |")
    lines += ["", "## Acceptance (issue 32: below LC and Random on >= 4 of 5 seeds, completion >= LC's)", "",
              header, "|---|---|---|---|---|---|---|"]
    for devices, row in summary["acceptance"].items():
        lines.append(f"| {devices} | {row['cerl_below_lc_seeds']}/{row['seeds']} | "
                     f"{row['cerl_below_random_seeds']}/{row['seeds']} | "
                     f"{row['cerl_below_untrained_seeds']}/{row['seeds']} | {row['cerl_completion']:.3f} | "
                     f"{row['lc_completion']:.3f} | {'yes' if row['holds'] else 'no'} |")
    below = summary["bound"]["policies_below"]
    bounds = ", ".join(f"N={n}: {v:.4f}" for n, v in summary["bound"]["per_task"].items())
    bound_line = f"Cost bound per completed task: {bounds}; episodes below it: {', '.join(below) if below else 'none'}."
    lines += ["", bound_line, "", "## The paper's claims", "", "| claim | ours | holds |", "|---|---|---|"]
    for claim in report["claims"]:
        holds = {True: "yes", False: "no", None: "-"}[claim["holds"]]
        lines.append(f"| {claim['claim']} | {claim['ours']} | {holds} |")
    projection = report["projection"]
    lines += ["", "## Budget", "", projection["text"], ""]
    return "\n".join(lines)


def figure(summary: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(args.rl_devices), figsize=(5 * len(args.rl_devices), 7), squeeze=False)
    for column, devices in enumerate(args.rl_devices):
        for algorithm in ALGORITHMS:
            data = summary["fig4"][devices][algorithm]
            mean = np.array([v["mean"] for v in data["epoch_cost"]])
            low = np.array([v["ci95_low"] for v in data["epoch_cost"]])
            high = np.array([v["ci95_high"] for v in data["epoch_cost"]])
            epochs = np.arange(1, len(mean) + 1)
            for row, x in ((0, epochs), (1, np.array(data["env_steps"]))):
                axes[row, column].plot(x, mean, label=algorithm)
                axes[row, column].fill_between(x, low, high, alpha=0.2)
        axes[0, column].set(title=f"N = {devices}", xlabel="epoch", ylabel="training cost per slot", yscale="log")
        axes[1, column].set(xlabel="environment steps (all actors)", ylabel="training cost per slot", yscale="log")
        axes[0, column].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def slots_for(args: argparse.Namespace, devices: int) -> int:
    """The arrival slots of a training episode at N = `devices`."""
    if len(args.train_slots) == 1:
        return args.train_slots[0]
    return args.train_slots[args.rl_devices.index(devices)]


def ints(text: str) -> list[int]:
    """"5,10" -> [5, 10]; "" -> [] (no probe, say)."""
    return [int(value) for value in text.split(",") if value.strip()]


def timed_job(function: Any, *arguments: Any) -> dict[str, Any]:
    """`function(*arguments)` in a worker, with the wall and CPU seconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*arguments)
    return result | {"job_wall_s": time.perf_counter() - wall, "job_cpu_s": time.process_time() - cpu}


def run_jobs(jobs: dict[str, tuple[Any, ...]], workdir: Path, workers: int) -> dict[str, Any]:
    """Each job's result by name: kept from an earlier run in `workdir` (NAME.json), or computed there now."""
    workdir.mkdir(parents=True, exist_ok=True)
    results, pending = {}, {}
    for name in jobs:
        path = workdir / f"{name}.json"
        if path.is_file():
            results[name] = json.loads(path.read_text(encoding="utf-8"))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for name, (function, *arguments) in jobs.items():
            if name not in results:
                pending[name] = pool.submit(timed_job, function, *arguments)
        for name, job in pending.items():
            results[name] = job.result()
            write_text_atomic(workdir / f"{name}.json", json.dumps(results[name]))
            print(f"done {name} ({len(results)}/{len(jobs)})", flush=True)
    return results


def projection(summary: dict[str, Any], probes: list[dict[str, Any]], args: argparse.Namespace, wall_s: float,
               cpu_s: float) -> str:
    """What this run took, and what the paper's budget would take at the measured speed."""
    trained_n = max(args.rl_devices)
    per_epoch = {a: summary["timing"][trained_n][a]["cpu_s_per_epoch"]["mean"] for a in ALGORITHMS}
    runs = PAPER["epochs"] * len(args.seeds)
    text = (f"This run: {wall_s / 60:.0f} min wall, {cpu_s / 60:.0f} CPU-min (every worker's; the machine was shared "
            f"with other jobs). CPU-s per epoch at N = {trained_n}: "
            + ", ".join(f"{a} {v:.1f}" for a, v in per_epoch.items()) + ". ")
    text += (f"The paper's 200 epochs for {len(args.seeds)} seeds at N = {trained_n}: "
             f"{sum(per_epoch.values()) * runs / 3600:.1f} CPU-h for the three methods")
    if len(args.rl_devices) > 1:
        every_n = sum(summary["timing"][n][a]["cpu_s_per_epoch"]["mean"] for n in args.rl_devices for a in ALGORITHMS)
        text += (f"; at every N of this run (N = {', '.join(map(str, args.rl_devices))}), "
                 f"{every_n * runs / 3600:.1f} CPU-h, about {every_n * runs / 3600 / 24:.1f} CPU-days")
    text += f" (at this run's {', '.join(f'{slots_for(args, n)} at N = {n}' for n in args.rl_devices)} arrival " \
            "slots per epoch). "
    for probe_row in probes:
        if probe_row["devices"] in args.rl_devices:  # the trained runs' epochs (every one timed) say it better
            continue
        scale = sum(per_epoch.values()) / per_epoch["cerl"]
        slots = slots_for(args, trained_n)
        epoch = probe_row["epoch_cpu_s"] * slots / probe_row["slots"]  # decisions grow with the slots
        cerl_h = epoch * runs / 3600
        text += (f"At N = {probe_row['devices']} CERL took {probe_row['epoch_cpu_s']:.0f} CPU-s for one epoch of "
                 f"{probe_row['slots']} arrival slots, so about {epoch:.0f} CPU-s for one of {slots}: "
                 f"200 epochs x {len(args.seeds)} seeds = {cerl_h:.1f} CPU-h for CERL, about "
                 f"{cerl_h * scale:.1f} CPU-h with D2QN and DDQN at their N = {trained_n} cost ratio to CERL; "
                 "Fig. 4's N = 10, 30, 50 together take less than three times that. ")
    return text + "One torch thread per run."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rl-devices", type=ints, default=[5, 10])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-slots", type=ints, default=[20],
                        help="arrival slots of a training episode: one number, or one per --rl-devices")
    parser.add_argument("--seeds", type=ints, default=[0, 1, 2, 3, 4])
    parser.add_argument("--devices", type=ints, default=[5, 10, 20, 30, 40, 50])
    parser.add_argument("--eval-seeds", type=ints, default=[1000, 1001, 1002, 1003, 1004])
    parser.add_argument("--eval-slots", type=int, default=20)
    parser.add_argument("--probe-devices", type=ints, default=[50])
    parser.add_argument("--probe-slots", type=int, default=20, help="arrival slots of the probe's episodes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hparam", action="append", default=[], help="NAME=VALUE for every run (edgeprof train)")
    parser.add_argument("--output", type=Path, default=RESULTS / "cerl.json")
    parser.add_argument("--workdir", type=Path, default=RESULTS / "cerl-work", help="finished jobs, for resuming")
    args = parser.parse_args()
    started_at = time.time()
    if len(args.train_slots) not in (1, len(args.rl_devices)):
        print(f"cerl.py: --train-slots needs one number or one per --rl-devices ({len(args.rl_devices)})",
              file=sys.stderr)
        sys.exit(2)
    for n in args.rl_devices:
        rl.make_config("cerl", slots_per_iteration=slots_for(args, n), **rl.parse_hyperparameters(args.hparam))
    started, cpu_started = time.perf_counter(), time.process_time()
    jobs: dict[str, tuple[Any, ...]] = {}  # the longest first
    with tempfile.TemporaryDirectory() as rundirs:
        for n in args.probe_devices:
            jobs[f"probe-n{n}-t{args.probe_slots}"] = (probe, n, args.probe_slots, args.hparam, args.eval_seeds[0])
        for a in ALGORITHMS:
            for n in args.rl_devices:
                for s in args.seeds:
                    jobs[f"{a}-n{n}-t{slots_for(args, n)}-s{s}"] = (
                        train_one, a, n, s, args.epochs, slots_for(args, n), args.hparam, args.eval_seeds,
                        args.eval_slots, rundirs)
        for n in args.rl_devices:
            for s in args.seeds:
                jobs[f"untrained-n{n}-s{s}"] = (untrained_one, n, s, args.hparam, args.eval_seeds, args.eval_slots)
        for n in args.devices:
            for name in SOLVERS:
                jobs[f"{name}-n{n}"] = (solve_one, name, n, args.eval_seeds, args.eval_slots)
        key = json.dumps([args.epochs, args.hparam, args.eval_seeds, args.eval_slots])
        workdir = args.workdir / hashlib.sha256(key.encode()).hexdigest()[:12]
        results = run_jobs(jobs, workdir, args.workers)
    cpu = time.process_time() - cpu_started + sum(result["job_cpu_s"] for result in results.values())
    kept = [name for name in jobs if (workdir / f"{name}.json").stat().st_mtime < started_at]
    trained = [results[name] for name, job in jobs.items() if job[0] is train_one]
    untrained = [results[name] for name, job in jobs.items() if job[0] is untrained_one]
    solved = [results[name] for name, job in jobs.items() if job[0] is solve_one]
    probes = [results[name] for name, job in jobs.items() if job[0] is probe]
    summary = summarise(trained, untrained, solved, probes, args)
    wall = time.perf_counter() - started
    text = projection(summary, probes, args, wall, cpu)
    if kept:
        text += (f" {len(kept)} of {len(jobs)} jobs were kept from an earlier run (their CPU time counted, not their "
                 f"wall time; the jobs' own wall times sum to {sum(r['job_wall_s'] for r in results.values()) / 60:.0f}"
                 f" min over {args.workers} workers).")
    report = {"benchmark": "cerl", "edgeprof": edgeprof.__version__, "machine": machine(1), "argv": sys.argv[1:],
              "wall_s": wall,
              "cpu_s": cpu, "settings": vars(args) | {"output": str(args.output), "workdir": str(workdir)},
              "paper": PAPER, "summary": summary, "projection": {"text": text}}
    report["claims"] = claims(summary, args)
    report["runs"] = trained
    report["untrained"] = untrained
    report["solvers"] = solved
    figure(summary, args, args.output.with_name(args.output.stem + "_fig4.png"))
    args.output.with_suffix(".md").write_text(markdown(report, args), encoding="utf-8")
    write_result(args.output, report, "claims")


if __name__ == "__main__":
    main()
