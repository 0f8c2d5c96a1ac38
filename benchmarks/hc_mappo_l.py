"""Benchmark: HC-MAPPO-L's training throughput, and the five learning methods next to the optimizers.

Part 1, throughput (always): the paper scenario (J = 10, K = 50, I = 45), `--throughput-envs` environments
(default 1: seed 001's budget is 200 slots of one system per iteration) of 200 slots per iteration,
`--throughput-threads` torch threads (default 1; the machine's 2 cores: 2); `--throughput-iterations`
iterations timed after one warm-up iteration. Reports environment steps
(slots x environments) per second, seconds per iteration, and the wall time of seed 001's budget (1000
iterations x 200 slots) projected from the measured seconds per iteration. Target: under 30 min.

Part 2, comparison (`--compare`): each of `--algorithms` (default all five) trained for `--iterations`
iterations on each seed of `--seeds` (a separate run per seed, `--workers` at a time, one thread each), then
evaluated greedily on `--eval-seeds` episodes of `--eval-slots` slots, with every layer's actions drawn as in
training (`sampled`), and with only the deployment drawn (`deployment_drawn`); the optimizers run on the same
evaluation episodes. `--set` changes the scenario (a tight tau-bar: `--set system.delay_constraint_s=1.0`),
`--hparam` the training settings of every run (`edgeprof train --hparam`). Writes a bar chart of delay and cost,
greedy and with the deployment drawn, with tau-bar (paper scenario: and seed 001's delays), next to the JSON.
Mean and 95% interval over the training seeds, next to seed 001's Fig. 5 values
(paper scenario, 1000 iterations): delays HC-MAPPO-L 2.74 s, HC-IPPO-L 2.65, Heuristic-MAPPO-L 2.94, H-MAPPO
4.38, H-IPPO 4.76; HC-MAPPO-L cost 131.35, energy 14.87 J, privacy 10.09 (its cost and privacy units are not
ours: compare orderings and the constraint, not values).

A comparison longer than one sitting (the paper's: 25 runs of 1000 iterations, ~17 h on this 2-core VM) keeps its
runs in `--runs DIR`: stop it at any time and run the same command again; unfinished runs resume from their last
checkpoint (every 10 iterations) to the numbers of an uninterrupted run, finished ones are read back with their
evaluation, and each run records the code version of every sitting that trained it (`code` in the JSON). Runs are
taken seed by seed, all methods of a seed before the next seed. The optimizers' rows are kept there too and read
back while their code, scenario and episodes are unchanged (`computed_at` in the JSON: the commit that computed
them). `--finished-only` summarises the runs finished so far (an interim report) and trains nothing. Next to the
JSON: the bar chart (`.png`) and the README's table (`.md`). When the runs folder is lost (a new machine),
`--restore-from REPORT` takes the finished runs' rows from an earlier report of the same comparison (its per-seed
rows, the same numbers the runs folder held), so that only unfinished runs are trained again; their checkpoints
and training logs are not in the report and stay lost.

Profiles: the shipped ones, or with --synthetic-leakage real static workloads and the stand-in leakage of
`synthetic_profiles.py`; the JSON says which.

    python benchmarks/hc_mappo_l.py [--synthetic-leakage] [--throughput-envs 1] [--throughput-iterations 3]
        [--skip-throughput] [--compare --scenario small --envs 8 --iterations 100 --seeds 0,1,2,3,4
        --eval-seeds 100,... --algorithms hc-mappo-l,h-mappo --set K=V --hparam K=V --workers 2 --runs DIR
        [--finished-only] [--restore-from REPORT]]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import hashlib
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from reporting import interval, machine, write_result
from synthetic_profiles import SOURCE, profiles_override

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.optimize.solve import run_solver
from edgeprof.rl.hc_mappo_l import (
    ALGORITHMS,
    LAYERS,
    Trainer,
    make_config,
    parse_hyperparameters,
)
from edgeprof.rl.runs import RunPaths, evaluate_run, train
from edgeprof.sim.dpa import REPORTED
from edgeprof.sim.scenario import Scenario, load_scenario
from edgeprof.sim.workload import ServiceTable, load_service_table

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
PAPER_ITERATIONS, PAPER_SLOTS = 1000, 200
TARGET_MINUTES = 30
SEED_001_DELAY_S = {"hc-mappo-l": 2.74, "hc-ippo-l": 2.65, "heuristic-mappo-l": 2.94, "h-mappo": 4.38,
                    "h-ippo": 4.76}
OPTIMIZERS = ("primal-dual", "greedy", "edge-only", "local-only", "random")
# evaluations besides the greedy one: every layer drawing its actions as in training, or only the deployment
DRAWN_MODES = {"sampled": LAYERS, "deployment_drawn": ("deployment",)}
EVALUATION_FILE, CODE_FILE = "benchmark_evaluation.json", "benchmark_code.json"  # in each run's folder
OPTIMIZERS_FOLDER = "optimizers"  # in the runs folder: each optimizer's rows (`optimizer_rows`)
OPTIMIZER_CODE = ("edgeprof/optimize", "edgeprof/sim", "edgeprof/stats.py")  # their code
SHIPPED_PROFILES = "shipped (edgeprof/data/profiles)"


def throughput(overrides: list[str], envs: int, iterations: int, threads: int) -> dict[str, Any]:
    scenario = load_scenario("paper", overrides)
    table = load_service_table(scenario)
    config = make_config("hc-mappo-l", slots_per_iteration=PAPER_SLOTS, num_envs=envs, threads=threads)
    trainer = Trainer(config, scenario, table)
    trainer.run_iteration()  # warm-up: first calls allocate and compile
    seconds = []
    for _ in range(iterations):
        seconds.append(trainer.run_iteration()["seconds"])
        print(f"throughput: iteration {len(seconds)}: {seconds[-1]:.1f} s", flush=True)
    per_iteration = sum(seconds) / len(seconds)
    steps = PAPER_SLOTS * envs
    projected = PAPER_ITERATIONS * per_iteration / 60
    return {"envs": envs, "threads": threads, "slots_per_iteration": PAPER_SLOTS, "timed_iterations": iterations,
            "seconds_per_iteration": seconds, "env_steps_per_s": steps / per_iteration,
            "user_decisions_per_s": steps * scenario["system.num_users"] / per_iteration,
            "paper_budget_minutes_projected": projected, "target_minutes": TARGET_MINUTES,
            "meets_target": projected <= TARGET_MINUTES}


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {key: interval([row[key] for row in rows]) for key in REPORTED}


def mean_of(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)


def train_and_evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """One training run and its evaluations (runs in a worker process).

    A run already in the runs folder is resumed from its checkpoint (the same numbers as an uninterrupted run), and
    a finished run evaluated on the same episodes is read back from its EVALUATION_FILE, so that a comparison longer
    than one sitting can be stopped and started again with `--runs`. Each sitting's code version is recorded in
    the run's CODE_FILE."""
    rundir = run_folder(job)
    stored = stored_evaluation(job)
    if stored:
        return stored
    scenario = load_scenario(job["scenario"], job["overrides"])
    table = load_service_table(scenario)
    config = make_config(job["algorithm"], iterations=job["iterations"], seed=job["seed"], num_envs=job["envs"],
                         slots_per_iteration=job["slots"], **parse_hyperparameters(job["hparams"]))
    resume = RunPaths(rundir).checkpoint.is_file()
    rows = train(config, scenario, table, rundir, resume=resume, scenario_name=job["scenario"],
                 progress=code_recorder(rundir))
    greedy = evaluate_run(rundir, job["eval_slots"], job["eval_seeds"])
    drawn = {mode: evaluate_run(rundir, job["eval_slots"], job["eval_seeds"], draw=layers)
             for mode, layers in DRAWN_MODES.items()}
    row = {**{key: mean_of(greedy, key) for key in REPORTED},
           **{f"{mode}_{key}": mean_of(episodes, key) for mode, episodes in drawn.items() for key in REPORTED},
           "algorithm": job["algorithm"], "seed": job["seed"],
           "train_seconds": sum(float(log_row["seconds"]) for log_row in rows),
           "final_multiplier": rows[-1]["multiplier"], "code": read_json(rundir / CODE_FILE) or []}
    write_text_atomic(rundir / EVALUATION_FILE, json.dumps({"evaluated_on": evaluated_on(job), "row": row}) + "\n")
    return row


def run_folder(job: dict[str, Any]) -> Path:
    return Path(job["runs"]) / f"{job['algorithm']}-{job['seed']}"


def evaluated_on(job: dict[str, Any]) -> dict[str, Any]:
    """What a stored evaluation must match to be reused."""
    return {"iterations": job["iterations"], "eval_slots": job["eval_slots"], "eval_seeds": job["eval_seeds"]}


def stored_evaluation(job: dict[str, Any]) -> dict[str, Any] | None:
    """The row of a finished run evaluated on the job's episodes, or None."""
    stored = read_json(run_folder(job) / EVALUATION_FILE)
    return stored["row"] if stored and stored["evaluated_on"] == evaluated_on(job) else None


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None when there is no such file."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def git(*arguments: str) -> str:
    """git's output in this checkout; raises OSError or CalledProcessError."""
    return subprocess.run(["git", *arguments], cwd=Path(__file__).parent, capture_output=True, text=True,
                          check=True).stdout.strip()


def code_version() -> str:
    """The git commit of this checkout (with "+changes" when the working tree differs from it), or "unknown"."""
    try:
        changed = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "--short", "HEAD") + ("+changes" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def code_recorder(rundir: Path) -> Callable[[int, int, dict[str, Any]], None]:
    """A `train` progress callback that appends {commit, from_iteration} to the run's CODE_FILE when this sitting
    trains its first iteration."""
    recorded = False

    def record(iteration: int, total: int, row: dict[str, Any]) -> None:
        nonlocal recorded
        if not recorded:
            sitting = {"commit": code_version(), "from_iteration": iteration - 1}
            write_text_atomic(rundir / CODE_FILE, json.dumps((read_json(rundir / CODE_FILE) or []) + [sitting]) + "\n")
            recorded = True

    return record


def optimizer_rows(scenario: Scenario, table: ServiceTable, eval_slots: int, eval_seeds: list[int],
                   runs: Path | None) -> Iterator[tuple[str, list[dict[str, Any]], str | None]]:
    """Each optimizer's name, `run_solver`'s rows and the commit whose optimizers' code computed them (None when
    that code differs from HEAD's: the rows are then not kept), one optimizer at a time.

    With a runs folder the rows are kept there (OPTIMIZERS_FOLDER) and read back while the optimizers' code
    (OPTIMIZER_CODE), the scenario, the service table and the episodes are those they were computed with: the
    optimizers are deterministic, so an interim report need not run them again for the same numbers. The key and
    HEAD's commit are taken once, before any optimizer runs: the code that runs is the code imported then."""
    on = {"episodes": {"eval_slots": eval_slots, "eval_seeds": eval_seeds}, "numpy": np.__version__,
          "data": hashlib.sha256(pickle.dumps((scenario.fields, table))).hexdigest()}
    head = optimizer_code_commit()
    for name in OPTIMIZERS:
        path = runs / OPTIMIZERS_FOLDER / f"{name}.json" if runs else None
        stored = read_json(path) if path else None
        if stored and stored["on"] == on and code_unchanged_since(stored["commit"]):
            yield name, stored["rows"], stored["commit"]
            continue
        rows = run_solver(name, scenario, table, eval_slots, eval_seeds)
        if path and head:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps({"on": on, "commit": head, "rows": rows}) + "\n")
        yield name, rows, head


def optimizer_code_commit() -> str | None:
    """HEAD's commit when the optimizers' code in the working tree is HEAD's, else None (nothing to key on)."""
    try:
        return git("rev-parse", "HEAD") if code_unchanged_since("HEAD") else None
    except (OSError, subprocess.CalledProcessError):
        return None


def code_unchanged_since(commit: str) -> bool:
    """Whether the optimizers' code (OPTIMIZER_CODE) in the working tree is that of `commit`."""
    try:
        git("diff", "--quiet", commit, "--", *(str(REPOSITORY / path) for path in OPTIMIZER_CODE))
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


def run_state(job: dict[str, Any], evaluated: bool) -> str:
    """Where a run of the runs folder stands (`evaluated`: its evaluation is stored), for the printout before a
    comparison starts."""
    if evaluated:
        return "finished and evaluated"
    iterations = job["iterations"]
    log = RunPaths(run_folder(job)).log
    if log.is_file():
        done = max(len(log.read_text(encoding="utf-8").splitlines()) - 1, 0)  # less its header
        return f"{done} of {iterations} iterations logged, resumes from its last checkpoint"
    return "not started"


def restore_finished(report_path: Path, jobs: list[dict[str, Any]], setting: dict[str, Any], profiles: str) -> int:
    """Write each job's evaluation file from the per-seed row of an earlier report of the same
    comparison (`setting` and `profiles` equal), for the jobs whose run folder holds neither an evaluation nor a
    training log; returns how many were written. Each restored row names the report it came from
    (`restored_from`, kept through later restores). Exits 2 on a file that is not such a report."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        recorded = report["comparison"]
        rows = {(row["algorithm"], row["seed"]): row for method in recorded["methods"].values()
                for row in method.get("per_seed", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"restore: {report_path} is not a report of this benchmark's comparison ({error})", file=sys.stderr)
        raise SystemExit(2) from error
    differing = [f"{key}={recorded.get(key)!r}, not {value!r}" for key, value in setting.items()
                 if recorded.get(key) != value]
    if report.get("profiles") != profiles:
        differing.append(f"profiles={report.get('profiles')!r}, not {profiles!r}")
    if differing:
        print(f"restore: {report_path} is another comparison: {'; '.join(differing)}", file=sys.stderr)
        raise SystemExit(2)
    written = 0
    for job in jobs:
        rundir, row = run_folder(job), rows.get((job["algorithm"], job["seed"]))
        if row is None or (rundir / EVALUATION_FILE).exists() or RunPaths(rundir).log.exists():
            continue
        rundir.mkdir(parents=True, exist_ok=True)
        row = {**row, "restored_from": row.get("restored_from", str(report_path))}
        write_text_atomic(rundir / EVALUATION_FILE, json.dumps({"evaluated_on": evaluated_on(job), "row": row}) + "\n")
        written += 1
    return written


def train_all(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """Every job's row (`train_and_evaluate`), `workers` at a time, each printed as it arrives."""
    finished = []
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for row in pool.map(train_and_evaluate, jobs):
            finished.append(row)
            print(f"compare: {row['algorithm']} seed {row['seed']}: delay {row['delay_s']:.3g} s, cost "
                  f"{row['cost']:.4g}, lambda {row['final_multiplier']:.3g} ({row['train_seconds']:.0f} s)",
                  flush=True)
    return finished


def compare(args: argparse.Namespace, overrides: list[str], profiles: str) -> dict[str, Any]:
    scenario = load_scenario(args.scenario, overrides)
    table = load_service_table(scenario)
    tau = scenario["system.delay_constraint_s"]
    eval_seeds = [int(seed) for seed in args.eval_seeds.split(",")]
    algorithms = args.algorithms.split(",")
    setting = {"scenario": args.scenario, "overrides": args.set, "hyperparameters": args.hparam,
               "iterations": args.iterations, "slots_per_iteration": args.slots, "envs": args.envs,
               "eval_seeds": eval_seeds, "eval_slots": args.eval_slots}
    results: dict[str, Any] = {}
    with nullcontext(str(args.runs)) if args.runs else tempfile.TemporaryDirectory(prefix="edgeprof-bench-") as runs:
        jobs = [{"algorithm": algorithm, "seed": int(seed), "scenario": args.scenario, "overrides": overrides,
                 "hparams": args.hparam, "iterations": args.iterations, "envs": args.envs, "slots": args.slots,
                 "eval_slots": args.eval_slots, "eval_seeds": eval_seeds, "runs": runs}
                for seed in args.seeds.split(",") for algorithm in algorithms]
        if args.restore_from:
            restored = restore_finished(args.restore_from, jobs, setting, profiles)
            print(f"compare: {restored} finished runs restored from {args.restore_from}", flush=True)
        if args.runs:
            args.runs.mkdir(parents=True, exist_ok=True)
        stored = [stored_evaluation(job) for job in jobs] if args.runs else []
        for job, row in zip(jobs, stored):
            print(f"compare: {job['algorithm']} seed {job['seed']}: {run_state(job, row is not None)}", flush=True)
        if args.finished_only:  # the stored evaluations are the rows: no worker, no training
            finished = [row for row in stored if row]
            if not finished:
                print(f"no run in {args.runs} is finished and evaluated on these episodes", file=sys.stderr)
                raise SystemExit(2)
        else:
            finished = train_all(jobs, args.workers)
    algorithms = [algorithm for algorithm in algorithms if any(row["algorithm"] == algorithm for row in finished)]
    for algorithm in algorithms:
        per_seed = [row for row in finished if row["algorithm"] == algorithm]
        greedy = summary(per_seed)
        drawn = {mode: {key: interval([row[f"{mode}_{key}"] for row in per_seed]) for key in REPORTED}
                 for mode in DRAWN_MODES}
        results[algorithm] = {**greedy, "per_seed": per_seed, **drawn,
                              "seed_001_delay_s": SEED_001_DELAY_S[algorithm],
                              "meets_delay_constraint": greedy["delay_s"]["mean"] <= tau}
    if "hc-mappo-l" in results:
        reference = {row["seed"]: row for row in results["hc-mappo-l"]["per_seed"]}
        for algorithm in algorithms:
            paired = [(row, reference[row["seed"]]) for row in results[algorithm]["per_seed"]
                      if row["seed"] in reference]
            if algorithm == "hc-mappo-l" or not paired:
                continue
            for mode in ("", *(f"{mode}_" for mode in DRAWN_MODES)):
                results[algorithm][f"{mode}delay_minus_hc_mappo_l_s"] = interval(
                    [row[f"{mode}delay_s"] - ours[f"{mode}delay_s"] for row, ours in paired])
    for name, rows, commit in optimizer_rows(scenario, table, args.eval_slots, eval_seeds, args.runs):
        optimizer = summary(rows)
        results[name] = {**optimizer, "meets_delay_constraint": optimizer["delay_s"]["mean"] <= tau,
                         "computed_at": commit}
        print(f"compare: {name}: delay {results[name]['delay_s']['mean']:.3g} s, cost "
              f"{results[name]['cost']['mean']:.4g}", flush=True)
    resolved = make_config("hc-mappo-l", iterations=args.iterations, num_envs=args.envs,
                           slots_per_iteration=args.slots, **parse_hyperparameters(args.hparam))
    return {**setting,
            "training_config": {key: value for key, value in asdict(resolved).items()
                                if key not in ("algorithm", "seed", "constrained", "learned_deployment",
                                               "learned_allocation", "policy")},
            "training_seeds": ",".join(dict.fromkeys(str(row["seed"]) for row in finished)),
            "runs": str(args.runs) if args.runs else None, "delay_constraint_s": tau, "methods": results}


def plot_comparison(comparison: dict[str, Any], path: Path) -> None:
    """Delay and cost of every method, mean and 95% interval, greedy and (learners) with the deployment drawn, next
    to tau-bar and (paper scenario) seed 001's delays. When a method's delay is over ten times tau-bar (the random
    policy's), the delay axis stops there so as not to flatten the rest, and the cut bar carries its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = comparison["methods"]
    names = list(methods)
    tau = comparison["delay_constraint_s"]
    drawn = "deployment_drawn"
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for axis, metric, label, top in ((axes[0], "delay_s", "mean delay (s)", 10 * tau),
                                     (axes[1], "cost", "cost (eq. 12)", None)):
        cut = False
        for mode, legend in ((None, "greedy"), (drawn, "deployment drawn")):
            shown = [(index, name, methods[name][mode][metric] if mode else methods[name][metric])
                     for index, name in enumerate(names) if mode is None or mode in methods[name]]
            # a learner's two bars sit side by side; an optimizer's single bar sits on its tick
            x = [index + (0.2 if mode else -0.2) * (drawn in methods[name]) for index, name, _ in shown]
            means = np.array([stats["mean"] for _, _, stats in shown])
            errors = np.array([[stats["mean"] - stats["ci95_low"], stats["ci95_high"] - stats["mean"]]
                               for _, _, stats in shown]).T
            colors = ["C1" if mode else "C0" if name in ALGORITHMS else "C7" for _, name, _ in shown]
            axis.bar(x, np.minimum(means, top) if top else means, width=0.4, color=colors, label=legend,
                     yerr=errors, capsize=2, error_kw={"elinewidth": 0.8})
            for xi, mean in zip(x, means, strict=True):
                if top and mean > top:
                    axis.annotate(f"{mean:.3g}", (xi, top), xytext=(0, -12), textcoords="offset points",
                                  ha="center", fontsize=8, color="white")
                    cut = True
        if cut:
            axis.set_ylim(0, top)
        axis.set_xticks(range(len(names)), names, rotation=60, ha="right")
        axis.set_ylabel(label)
    paper = [(index, methods[name]["seed_001_delay_s"]) for index, name in enumerate(names)
             if "seed_001_delay_s" in methods[name]]
    if paper and comparison["scenario"] == "paper" and not comparison["overrides"]:  # Fig. 5's scenario only
        axes[0].scatter(*zip(*paper), marker="_", s=300, color="black", zorder=3, label="seed 001 Fig. 5")
    axes[0].axhline(tau, color="C3", linestyle="--", label="tau-bar")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{comparison['scenario']} {' '.join(comparison['overrides'])}: {comparison['iterations']} "
                    f"iterations, seeds {comparison['training_seeds']} (optimizers: over the evaluation episodes)")
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown_table(comparison: dict[str, Any]) -> str:
    """The comparison as the README shows it: mean (95% interval) over the training seeds (the optimizers: over the
    evaluation episodes), greedy and with the deployment drawn, the paired delay differences to hc-mappo-l, and
    seed 001's delays."""
    def cell(stats: dict[str, float] | None, digits: int = 3) -> str:
        if stats is None:
            return ""
        low, high = stats["ci95_low"], stats["ci95_high"]
        if low == high:  # one seed: no interval
            return f"{stats['mean']:.{digits}g}"
        between = " to " if low < 0 else "-"
        return f"{stats['mean']:.{digits}g} ({low:.{digits}g}{between}{high:.{digits}g})"

    def plain(stats: dict[str, float] | None) -> str:
        return "" if stats is None else f"{stats['mean']:.3g}"

    columns = ["method", "seeds", f"greedy: delay_s (tau-bar {comparison['delay_constraint_s']:g})", "cost",
               "success", "energy_j", "deployment drawn: delay_s", "cost", "success", "energy_j",
               "delay - hc-mappo-l's: greedy", "drawn", "seed 001 delay_s"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, method in comparison["methods"].items():
        drawn = method.get("deployment_drawn", {})
        # a learner's interval is over its training seeds, an optimizer's over the evaluation episodes
        seeds = (",".join(str(row["seed"]) for row in method["per_seed"]) if "per_seed" in method
                 else f"{len(comparison['eval_seeds'])} episodes")
        lines.append("| " + " | ".join([
            name, seeds, cell(method["delay_s"]), cell(method["cost"]), plain(method["success_rate"]),
            plain(method["energy_j"]), cell(drawn.get("delay_s")), cell(drawn.get("cost")),
            plain(drawn.get("success_rate")), plain(drawn.get("energy_j")),
            cell(method.get("delay_minus_hc_mappo_l_s")), cell(method.get("deployment_drawn_delay_minus_hc_mappo_l_s")),
            str(method.get("seed_001_delay_s", ""))]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-leakage", action="store_true", help="static workloads, stand-in leakage")
    parser.add_argument("--throughput-envs", type=int, default=1)
    parser.add_argument("--throughput-iterations", type=int, default=3)
    parser.add_argument("--throughput-threads", type=int, default=1)
    parser.add_argument("--envs", type=int, default=8, help="environments per iteration in the comparison")
    parser.add_argument("--compare", action="store_true", help="also train and compare the five algorithms")
    parser.add_argument("--scenario", default="small", help="scenario of the comparison")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--slots", type=int, default=PAPER_SLOTS)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--eval-seeds", default=",".join(str(seed) for seed in range(100, 110)))
    parser.add_argument("--eval-slots", type=int, default=100)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated, default all five")
    parser.add_argument("--set", action="append", default=[], help="scenario override of the comparison")
    parser.add_argument("--hparam", action="append", default=[], help="NAME=VALUE, as `edgeprof train --hparam`")
    parser.add_argument("--workers", type=int, default=1, help="training runs in parallel (one thread each)")
    parser.add_argument("--runs", type=Path, help="keep the training runs in this folder (default: a temporary one); "
                        "run the same command again to resume unfinished runs and reuse finished ones")
    parser.add_argument("--finished-only", action="store_true", help="with --runs: summarise the runs already "
                        "finished and evaluated, train nothing (an interim report of a comparison under way)")
    parser.add_argument("--restore-from", type=Path, metavar="REPORT", help="with --runs: take the finished runs' "
                        "rows from an earlier report of the same comparison (a lost runs folder), train the rest")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "hc_mappo_l.json")
    args = parser.parse_args()
    if args.finished_only and not (args.compare and args.runs):
        parser.error("--finished-only summarises the runs of --compare --runs DIR")
    if args.restore_from and not (args.compare and args.runs):
        parser.error("--restore-from writes into the runs folder of --compare --runs DIR")
    paper_overrides: list[str] = []
    compare_overrides: list[str] = []
    if args.synthetic_leakage:
        directory = Path(tempfile.mkdtemp(prefix="edgeprof-synthetic-"))
        paper_overrides = [profiles_override(load_scenario("paper")["services.models"], directory)]
        if args.compare:
            compare_overrides = [profiles_override(load_scenario(args.scenario)["services.models"], directory)]
    compare_overrides += args.set
    profiles = SOURCE if args.synthetic_leakage else SHIPPED_PROFILES
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "hc_mappo_l",
        "edgeprof": edgeprof.__version__,
        "machine": machine(),
        "profiles": profiles,
    }
    if not args.skip_throughput:
        result["throughput"] = throughput(paper_overrides, args.throughput_envs, args.throughput_iterations,
                                          args.throughput_threads)
    if args.compare:
        result["comparison"] = compare(args, compare_overrides, profiles)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        plot_comparison(result["comparison"], args.output.with_suffix(".png"))
        table = markdown_table(result["comparison"])
        write_text_atomic(args.output.with_suffix(".md"), table)
        print(table)
    result["wall_s"] = time.perf_counter() - started
    write_result(args.output, result, "throughput" if "throughput" in result else "comparison")


if __name__ == "__main__":
    main()
