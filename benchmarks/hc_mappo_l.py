"""Benchmark: HC-MAPPO-L's training throughput, and the five learning methods next to the optimizers.

Part 1, throughput (always): the paper scenario (J = 10, K = 50, I = 45), `--throughput-envs` environments
(default 1: seed 001's budget is 200 slots of one system per iteration) of 200 slots per iteration, for each of
`--throughput-threads` (comma-separated torch thread counts of the update, default 1,2); `--throughput-iterations`
iterations timed after one warm-up iteration. Reports wall and CPU seconds per iteration, environment steps
(slots x environments) per second, and the wall time of seed 001's budget (1000 iterations x 200 slots)
projected from the measured seconds per iteration. Target: 35 min with 2 threads. `--baseline DIR` (a checkout
of another commit, e.g. `git worktree add --detach DIR 3e4005b`) times that code at the same time, in a second
process (`iteration_timing.py`) with DIR first on PYTHONPATH, so that both see the same load on a shared machine;
the JSON gets both, their ratio and the load average before and after each pair.

Part 2, comparison (`--compare`): each of `--algorithms` (default the five methods and `random-fill`, hc-mappo-l
over its untrained deployment, always drawn) trained for `--iterations` iterations on each seed of `--seeds` (a
separate run per seed, `--workers` at a time, one thread each), then evaluated on `--eval-seeds` episodes of
`--eval-slots` slots in three modes: every layer's actions drawn as in training (`sampled`, the reading of seed
001's Fig. 5 and of the CMDP's constraint), every layer greedy (`greedy`, how a deployed system would run), and
only the deployment drawn (`deployment_drawn`); the optimizers run on the same evaluation episodes. Each run also
records the services its greedy deployment hosts (`benchmarks/deployment_coverage.py`). `--set` changes the
scenario (a tight tau-bar: `--set system.delay_constraint_s=1.0`), `--hparam` the training settings of every run
(`edgeprof train --hparam`). Writes a bar chart of delay and cost in the three modes, with tau-bar (paper
scenario: and seed 001's delays), and one table per mode (`.md`), next to the JSON.
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

`--delay-tail`: how the delay of one untrained paper-size rollout (hc-mappo-l, seed 0, 200 slots) spreads over
its requests, with the scenario's per-request deadline and with it turned off (`system.request_deadline_s=1e12`).

Profiles: the shipped ones, or with --synthetic-leakage real static workloads and the stand-in leakage of
`synthetic_profiles.py`; the JSON says which.

    python benchmarks/hc_mappo_l.py [--synthetic-leakage] [--throughput-envs 1] [--throughput-iterations 3]
        [--skip-throughput] [--compare --scenario small --envs 8 --iterations 100 --seeds 0,1,2,3,4
        --eval-seeds 100,... --algorithms hc-mappo-l,h-mappo --set K=V --hparam K=V --workers 2 --runs DIR
        [--finished-only] [--restore-from REPORT]]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE"})

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
from iteration_timing import PAPER_SLOTS, time_iterations
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
PAPER_ITERATIONS = 1000
TARGET_MINUTES, TARGET_THREADS, TARGET_SPEEDUP = 35, 2, 2.5
SEED_001_DELAY_S = {"hc-mappo-l": 2.74, "hc-ippo-l": 2.65, "heuristic-mappo-l": 2.94, "h-mappo": 4.38,
                    "h-ippo": 4.76}
OPTIMIZERS = ("primal-dual", "greedy", "edge-only", "local-only", "random")
# evaluations besides the greedy one: every layer drawing its actions as in training, or only the deployment
DRAWN_MODES = {"sampled": LAYERS, "deployment_drawn": ("deployment",)}
MODES = ("sampled", "greedy", "deployment_drawn")  # the tables' order: the paper's reading first
MODE_TITLES = {"sampled": "sampled (every action drawn, as in training: seed 001's Fig. 5 reading)",
               "greedy": "greedy (every layer's most probable action)",
               "deployment_drawn": "deployment drawn (users and allocation greedy)"}
EVALUATION_FILE, CODE_FILE = "benchmark_evaluation.json", "benchmark_code.json"  # in each run's folder
OPTIMIZERS_FOLDER = "optimizers"  # in the runs folder: each optimizer's rows (`optimizer_rows`)
OPTIMIZER_CODE = ("edgeprof/optimize", "edgeprof/sim", "edgeprof/stats.py")  # their code
SHIPPED_PROFILES = "shipped (edgeprof/data/profiles)"


def throughput_row(times: dict[str, Any], threads: int, envs: int) -> dict[str, Any]:
    per_iteration = float(np.mean(times["seconds_per_iteration"]))
    steps = PAPER_SLOTS * envs
    return {**times, "threads": threads, "mean_seconds": per_iteration,
            "mean_cpu_seconds": float(np.mean(times["cpu_seconds_per_iteration"])),
            "env_steps_per_s": steps / per_iteration,
            "paper_budget_minutes_projected": PAPER_ITERATIONS * per_iteration / 60}


def throughput(overrides: list[str], envs: int, iterations: int, thread_counts: list[int],
               baseline: Path | None) -> dict[str, Any]:
    """This code's throughput for each thread count; with `baseline`, that checkout's measured at the same time."""
    result: dict[str, Any] = {"envs": envs, "slots_per_iteration": PAPER_SLOTS, "timed_iterations": iterations,
                              "code": code_version(), "runs": [], "target_minutes": TARGET_MINUTES,
                              "target_threads": TARGET_THREADS}
    if baseline:
        result.update(baseline=str(baseline), baseline_code=git("-C", str(baseline), "rev-parse", "--short", "HEAD"),
                      baseline_runs=[], target_speedup=TARGET_SPEEDUP)
    for threads in thread_counts:
        load_before = os.getloadavg()
        other = None
        if baseline:
            command = [sys.executable, str(Path(__file__).with_name("iteration_timing.py")),
                       json.dumps([overrides, envs, iterations, threads])]
            other = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(baseline)}, stdout=subprocess.PIPE,
                                     text=True)
        result["runs"].append(throughput_row(time_iterations(overrides, envs, iterations, threads), threads, envs))
        if other:
            output, _ = other.communicate()
            if other.returncode:
                raise SystemExit(f"the baseline's timing failed (exit {other.returncode})")
            row = throughput_row(json.loads(output.strip().splitlines()[-1]), threads, envs)
            result["baseline_runs"].append(row)
        result["runs"][-1]["load_average_before"] = load_before
        result["runs"][-1]["load_average_after"] = os.getloadavg()
    ours = {row["threads"]: row for row in result["runs"]}
    result["meets_target"] = (TARGET_THREADS in ours
                              and ours[TARGET_THREADS]["paper_budget_minutes_projected"] <= TARGET_MINUTES)
    if baseline:
        theirs = {row["threads"]: row for row in result["baseline_runs"]}
        result["speedup"] = {f"{threads} thread(s)": {
            "wall": theirs[threads]["mean_seconds"] / ours[threads]["mean_seconds"],
            "cpu": theirs[threads]["mean_cpu_seconds"] / ours[threads]["mean_cpu_seconds"]} for threads in ours}
        if 1 in theirs and TARGET_THREADS in ours:
            result["speedup"][f"{TARGET_THREADS} thread(s) against the baseline's 1"] = (
                theirs[1]["mean_seconds"] / ours[TARGET_THREADS]["mean_seconds"])
    return result


def delay_tail(overrides: list[str]) -> dict[str, Any]:
    """The delay distribution, mean, success rate and energy of one untrained paper-size rollout, with the
    deadline and without it: the same episode and the same policy, so only the deadline differs."""
    tail = {}
    for label, deadline in (("with_deadline", []), ("without_deadline", ["system.request_deadline_s=1e12"])):
        scenario = load_scenario("paper", [*overrides, *deadline])
        trainer = Trainer(make_config("hc-mappo-l", slots_per_iteration=PAPER_SLOTS, num_envs=1), scenario,
                          load_service_table(scenario))
        metrics = trainer.collect().metrics
        tail[label] = {key: metrics[key] for key in ("delay_s", "delay_median_s", "delay_p99_s", "delay_max_s",
                                                     "delay_top1pct_share", "success_rate", "energy_j")}
    tail["deadline_s"] = load_scenario("paper", overrides)["system.request_deadline_s"]
    return tail


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {key: interval([row[key] for row in rows]) for key in REPORTED}


def delay_key(mode: str) -> str:
    """A per-seed row's delay in `mode` (greedy values carry no prefix)."""
    return "delay_s" if mode == "greedy" else f"{mode}_delay_s"


def mode_summary(method: dict[str, Any], mode: str) -> dict[str, Any]:
    """A method's summary in `mode` (a learner's greedy one is its top level); an optimizer has one, whatever the
    mode (it draws nothing)."""
    return method.get(mode, method)


def mean_of(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)


def train_and_evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """One training run and its evaluations (runs in a worker process).

    A run already in the runs folder is resumed from its checkpoint (the same numbers as an uninterrupted run), and
    a finished run evaluated on the same episodes is read back from its EVALUATION_FILE, so that a comparison longer
    than one sitting can be stopped and started again with `--runs`. Each sitting's code version is recorded in
    the run's CODE_FILE."""
    from deployment_coverage import coverage

    rundir = run_folder(job)
    stored = stored_evaluation(job)
    if stored:
        return stored
    scenario = load_scenario(job["scenario"], job["overrides"])
    table = load_service_table(scenario)
    config = make_config(job["method"], iterations=job["iterations"], seed=job["seed"], num_envs=job["envs"],
                         slots_per_iteration=job["slots"], **parse_hyperparameters(job["hparams"]))
    resume = RunPaths(rundir).checkpoint.is_file()
    rows = train(config, scenario, table, rundir, resume=resume, scenario_name=job["scenario"],
                 progress=code_recorder(rundir))
    greedy = evaluate_run(rundir, job["eval_slots"], job["eval_seeds"])
    drawn = {mode: evaluate_run(rundir, job["eval_slots"], job["eval_seeds"], draw=layers)
             for mode, layers in DRAWN_MODES.items()}
    hosted = coverage(rundir, job["eval_seeds"], job["eval_slots"])["modes"] if config.learned_deployment else None
    last = rows[-max(1, len(rows) // 10):]  # the training curve's end: the last tenth of the iterations
    row = {**{key: mean_of(greedy, key) for key in REPORTED},
           **{f"{mode}_{key}": mean_of(episodes, key) for mode, episodes in drawn.items() for key in REPORTED},
           "algorithm": job["method"], "seed": job["seed"],
           "greedy_hosted_services": hosted and hosted["greedy"]["hosted_services"]["mean"],
           "deployment_drawn_hosted_services": hosted and hosted["deployment_drawn"]["hosted_services"]["mean"],
           "training_end_delay_s": mean_of(last, "delay_s"), "training_end_success_rate": mean_of(last, "success_rate"),
           "train_seconds": sum(float(log_row["seconds"]) for log_row in rows),
           "final_multiplier": rows[-1]["multiplier"], "code": read_json(rundir / CODE_FILE) or []}
    write_text_atomic(rundir / EVALUATION_FILE, json.dumps({"evaluated_on": evaluated_on(job), "row": row}) + "\n")
    return row


def run_folder(job: dict[str, Any]) -> Path:
    return Path(job["runs"]) / f"{job['method']}-{job['seed']}"


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
        rundir, row = run_folder(job), rows.get((job["method"], job["seed"]))
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
    methods = args.algorithms.split(",")
    unknown = [name for name in methods if name not in ALGORITHMS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}: use {', '.join(ALGORITHMS)}")
    setting = {"scenario": args.scenario, "overrides": args.set, "hyperparameters": args.hparam,
               "iterations": args.iterations, "slots_per_iteration": args.slots, "envs": args.envs,
               "eval_seeds": eval_seeds, "eval_slots": args.eval_slots}
    results: dict[str, Any] = {}
    with nullcontext(str(args.runs)) if args.runs else tempfile.TemporaryDirectory(prefix="edgeprof-bench-") as runs:
        jobs = [{"method": method, "seed": int(seed), "scenario": args.scenario, "overrides": overrides,
                 "hparams": args.hparam, "iterations": args.iterations, "envs": args.envs, "slots": args.slots,
                 "eval_slots": args.eval_slots, "eval_seeds": eval_seeds, "runs": runs}
                for seed in args.seeds.split(",") for method in methods]
        if args.restore_from:
            restored = restore_finished(args.restore_from, jobs, setting, profiles)
            print(f"compare: {restored} finished runs restored from {args.restore_from}", flush=True)
        if args.runs:
            args.runs.mkdir(parents=True, exist_ok=True)
        stored = [stored_evaluation(job) for job in jobs] if args.runs else []
        for job, row in zip(jobs, stored, strict=False):  # no stored rows without --runs
            print(f"compare: {job['method']} seed {job['seed']}: {run_state(job, row is not None)}", flush=True)
        if args.finished_only:  # the stored evaluations are the rows: no worker, no training
            finished = [row for row in stored if row]
            if not finished:
                print(f"no run in {args.runs} is finished and evaluated on these episodes", file=sys.stderr)
                raise SystemExit(2)
        else:
            finished = train_all(jobs, args.workers)
    methods = [method for method in methods if any(row["algorithm"] == method for row in finished)]
    for method in methods:
        per_seed = [row for row in finished if row["algorithm"] == method]
        greedy = summary(per_seed)
        drawn = {mode: {key: interval([row[f"{mode}_{key}"] for row in per_seed]) for key in REPORTED}
                 for mode in DRAWN_MODES}
        under = {mode: sum(row[delay_key(mode)] <= tau for row in per_seed) for mode in MODES}
        hosted = [row.get("greedy_hosted_services") for row in per_seed]
        results[method] = {**greedy, "per_seed": per_seed, **drawn, "seeds_under_delay_constraint": under,
                           "greedy_hosting_every_service": (sum(count == table.num_services for count in hosted)
                                                            if None not in hosted else None),
                           **({"seed_001_delay_s": SEED_001_DELAY_S[method]} if method in SEED_001_DELAY_S else {}),
                           "meets_delay_constraint": {mode: {**drawn, "greedy": greedy}[mode]["delay_s"]["mean"] <= tau
                                                      for mode in MODES}}
    for reference_name in ("hc-mappo-l", "random-fill"):  # paired over the training seeds, in every mode
        if reference_name not in results:
            continue
        reference = {row["seed"]: row for row in results[reference_name]["per_seed"]}
        suffix = reference_name.replace("-", "_")
        for method in methods:
            paired = [(row, reference[row["seed"]]) for row in results[method]["per_seed"] if row["seed"] in reference]
            if method == reference_name or not paired:
                continue
            for mode in MODES:
                prefix = "" if mode == "greedy" else f"{mode}_"
                results[method][f"{prefix}delay_minus_{suffix}_s"] = interval(
                    [row[delay_key(mode)] - ours[delay_key(mode)] for row, ours in paired])
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
    """Delay and cost of every method, mean and 95% interval, in the three modes (learners; an optimizer has one
    bar), next to tau-bar and (paper scenario) seed 001's delays. When a method's delay is over ten times tau-bar
    (the random policy's), the delay axis stops there so as not to flatten the rest, and the cut bar carries its
    value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = comparison["methods"]
    names = list(methods)
    tau = comparison["delay_constraint_s"]
    width = 0.27
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    for axis, metric, label, top in ((axes[0], "delay_s", "mean delay (s)", 10 * tau),
                                     (axes[1], "cost", "cost (eq. 12)", None)):
        cut = False
        for offset, (mode, color) in enumerate(zip(MODES, ("C1", "C0", "C2"), strict=True)):
            shown = [(index, name) for index, name in enumerate(names) if "per_seed" in methods[name] or offset == 1]
            x = [index + (offset - 1) * width * ("per_seed" in methods[name]) for index, name in shown]
            stats = [mode_summary(methods[name], mode)[metric] for _, name in shown]
            means = np.array([item["mean"] for item in stats])
            errors = np.array([[item["mean"] - item["ci95_low"], item["ci95_high"] - item["mean"]] for item in stats]).T
            colors = [color if "per_seed" in methods[name] else "C7" for _, name in shown]
            axis.bar(x, np.minimum(means, top) if top else means, width=width, color=colors, label=mode.replace(
                "_", " "), yerr=errors, capsize=2, error_kw={"elinewidth": 0.8})
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
        axes[0].scatter(*zip(*paper, strict=True), marker="_", s=300, color="black", zorder=3, label="seed 001 Fig. 5")
    axes[0].axhline(tau, color="C3", linestyle="--", label="tau-bar")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{comparison['scenario']} {' '.join(comparison['overrides'])}: {comparison['iterations']} "
                    f"iterations, seeds {comparison['training_seeds']} (optimizers: over the evaluation episodes)")
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown_table(comparison: dict[str, Any]) -> str:
    """One table per mode (`MODES`): mean (95% interval) over the training seeds (the optimizers: over the
    evaluation episodes), how many seeds meet tau-bar, the delay's tail, cost, energy and privacy, and the paired
    delay differences to hc-mappo-l and to random-fill; seed 001's delays beside the sampled mode (Fig. 5 plots
    training curves, every action drawn)."""
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

    tau = comparison["delay_constraint_s"]
    sections = []
    for mode in MODES:
        prefix = "" if mode == "greedy" else f"{mode}_"
        columns = ["method", "seeds", f"delay_s (tau-bar {tau:g})", "seeds under tau-bar", "p99 delay_s", "success",
                   "cost", "energy_j", "privacy", "delay - hc-mappo-l's", "delay - random-fill's"]
        columns += {"greedy": ["greedy deployment hosts every service"],
                    "sampled": ["seed 001 delay_s"]}.get(mode, [])
        lines = [f"{MODE_TITLES[mode]}:", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for name, method in comparison["methods"].items():
            stats = mode_summary(method, mode)
            learner = "per_seed" in method
            # a learner's interval is over its training seeds, an optimizer's over the evaluation episodes
            seeds = (",".join(str(row["seed"]) for row in method["per_seed"]) if learner
                     else f"{len(comparison['eval_seeds'])} episodes")
            under = (f"{method['seeds_under_delay_constraint'][mode]} / {len(method['per_seed'])}" if learner
                     else ("yes" if stats["delay_s"]["mean"] <= tau else "no"))
            cells = [name, seeds, cell(stats["delay_s"]), under, plain(stats["delay_p99_s"]),
                     plain(stats["success_rate"]), cell(stats["cost"]), plain(stats["energy_j"]),
                     plain(stats["privacy_cost"]), cell(method.get(f"{prefix}delay_minus_hc_mappo_l_s")),
                     cell(method.get(f"{prefix}delay_minus_random_fill_s"))]
            if mode == "greedy":
                hosting = method.get("greedy_hosting_every_service")
                cells.append("" if hosting is None else f"{hosting} / {len(method['per_seed'])}")
            if mode == "sampled":
                cells.append(str(method.get("seed_001_delay_s", "")))
            lines.append("| " + " | ".join(cells) + " |")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-leakage", action="store_true", help="static workloads, stand-in leakage")
    parser.add_argument("--throughput-envs", type=int, default=1)
    parser.add_argument("--throughput-iterations", type=int, default=3)
    parser.add_argument("--throughput-threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit, timed at the same time")
    parser.add_argument("--envs", type=int, default=8, help="environments per iteration in the comparison")
    parser.add_argument("--compare", action="store_true", help="also train and compare the five algorithms")
    parser.add_argument("--scenario", default="small", help="scenario of the comparison")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--slots", type=int, default=PAPER_SLOTS)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--eval-seeds", default=",".join(str(seed) for seed in range(100, 110)))
    parser.add_argument("--eval-slots", type=int, default=100)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated methods, default the five "
                        "algorithms and random-fill")
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
    parser.add_argument("--delay-tail", action="store_true", help="one untrained rollout's delay spread, with and "
                        "without the per-request deadline")
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
                                          [int(count) for count in args.throughput_threads.split(",")], args.baseline)
    if args.delay_tail:
        result["delay_tail"] = delay_tail(paper_overrides)
    if args.compare:
        result["comparison"] = compare(args, compare_overrides, profiles)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        plot_comparison(result["comparison"], args.output.with_suffix(".png"))
        table = markdown_table(result["comparison"])
        write_text_atomic(args.output.with_suffix(".md"), table)
        print(table)
    result["wall_s"] = time.perf_counter() - started
    write_result(args.output, result, next(key for key in ("throughput", "comparison", "delay_tail") if key in result))


if __name__ == "__main__":
    main()
