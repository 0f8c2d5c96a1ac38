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

Part 2, comparison (`--compare`): the experiment `seed001-fig5` of `edgeprof.experiments` (the five methods,
random-fill, the optimizers and the random solver), run by `run_experiment` into `--runs DIR` (an experiment
folder: the same as `edgeprof experiment run seed001-fig5 -o DIR`), serial or `--workers` processes with one
thread each. It starts from the experiment's `--budget` (smoke: the `small` preset, 2 iterations; paper: seed
001's, 1000 iterations of 200 slots); `--scenario`, `--set` (a tight tau-bar: `--set
system.delay_constraint_s=1.0`), `--iterations`, `--slots`, `--envs`, `--hparam` (as `edgeprof train --hparam`)
and `--eval-slots` change it, and DIR records the settings. Each seed trains each method once and is the seed
of the evaluation episode every method plays (paired comparisons); a trainer is read in three modes: every
layer's actions drawn as in training (`sampled`, the reading of seed 001's Fig. 5 and of the CMDP's
constraint), every layer greedy (`greedy`, how a deployed system would run), and only the deployment drawn
(`deployment_drawn`). Mean and 95% interval over the seeds, next to seed 001's Fig. 5 values (paper scenario,
1000 iterations): delays HC-MAPPO-L 2.74 s, HC-IPPO-L 2.65, Heuristic-MAPPO-L 2.94, H-MAPPO 4.38, H-IPPO 4.76
(the cost and privacy units are not ours: compare orderings and the constraint, not values).

Where each table comes from, all from DIR's results.csv (rebuilt every 30 s as runs finish, and at the end):
- next to the JSON (`-o`), `.md`: one table per mode (the solvers in each): delay with tau-bar, seeds under
  tau-bar, p99 delay (the tail), success, cost, energy, privacy, the delay's paired differences to hc-mappo-l
  and random-fill (same seed and mode), seed 001's delays beside the sampled mode; `.png`: the experiment
  report's figure (`edgeprof.experiments.report.draw`);
- `edgeprof experiment report DIR`: the paper's numbers beside ours, and every metric's paired differences to
  hc-mappo-l and random-fill;
- services a greedy deployment hosts: `python benchmarks/deployment_coverage.py DIR/runs/<id>/train`;
- training curves, lambda, train time: `edgeprof plot DIR/runs/<id>/train`, its `log.csv`, `timing.json`.

A comparison longer than one sitting (the paper's: 25+ runs of 1000 iterations) is stopped at any time and the
same command run again: finished runs are kept, failed ones retried, unfinished training resumes from its last
checkpoint to the numbers of an uninterrupted run (`edgeprof experiment run --resume`). `--finished-only` gives
the tables of the runs finished so far and trains nothing (an interim report, also while the sweep runs).

`--delay-tail`: how the delay of one untrained paper-size rollout (hc-mappo-l, seed 0, 200 slots) spreads over
its requests, with the scenario's per-request deadline and with it turned off (`system.request_deadline_s=1e12`).

Profiles: the shipped ones, or with --synthetic-leakage real static workloads and the stand-in leakage of
`synthetic_profiles.py`; the JSON says which.

    python benchmarks/hc_mappo_l.py [--synthetic-leakage] [--throughput-envs 1] [--throughput-iterations 3]
        [--skip-throughput] [--compare --budget smoke|paper --scenario small --envs 8 --iterations 100
        --seeds 0,1,2,3,4 --eval-slots 100 --algorithms hc-mappo-l,h-mappo --set K=V --hparam K=V --workers 2
        --runs DIR [--finished-only]]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE"})

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from iteration_timing import PAPER_SLOTS, time_iterations
from reporting import machine, write_result
from synthetic_profiles import SOURCE, profiles_override

import edgeprof
from edgeprof.errors import EdgeprofError
from edgeprof.experiments.backends import make_backend
from edgeprof.experiments.definitions import BUDGETS, Budget, get_experiment
from edgeprof.experiments.report import draw, lines, paired_differences, read_results
from edgeprof.experiments.sweep import plan, run_experiment, run_id
from edgeprof.files import write_text_atomic
from edgeprof.rl.hc_mappo_l import Trainer, make_config
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.workload import load_service_table

RESULTS = Path(__file__).parent / "results"
PAPER_ITERATIONS = 1000
TARGET_MINUTES, TARGET_THREADS, TARGET_SPEEDUP = 35, 2, 2.5
COMPARISON = "seed001-fig5"  # the experiment the comparison runs (`edgeprof.experiments`)
TRAINERS = tuple(method.name for method in get_experiment(COMPARISON).methods if method.kind == "trainer")
REFERENCES = ("hc-mappo-l", "random-fill")  # the tables' paired delay differences are to these
TABLE_METRICS = ("delay_s", "delay_p99_s", "success_rate", "cost", "energy_j", "privacy_cost")
MODES = ("sampled", "greedy", "deployment_drawn")  # the tables' order: the paper's reading first
MODE_TITLES = {"sampled": "sampled (every action drawn, as in training: seed 001's Fig. 5 reading)",
               "greedy": "greedy (every layer's most probable action)",
               "deployment_drawn": "deployment drawn (users and allocation greedy)"}
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


def comparison_budget(args: argparse.Namespace, overrides: list[str]) -> Budget | None:
    """seed001-fig5's budget `--budget` with the options given changed (None: unchanged, the named budget)."""
    named = get_experiment(COMPARISON).budgets[args.budget]
    settings = {**named.train_settings, **({"slots_per_iteration": args.slots} if args.slots else {}),
                **({"num_envs": args.envs} if args.envs else {})}
    changed = {"preset": args.scenario, "overrides": named.overrides + tuple(overrides) if overrides else None,
               "iterations": args.iterations, "slots": args.eval_slots, "hyperparameters": tuple(args.hparam) or None,
               "train_settings": settings if settings != dict(named.train_settings) else None}
    changed = {key: value for key, value in changed.items() if value is not None}
    return replace(named, **changed) if changed else None


def compare(args: argparse.Namespace, outdir: Path, spec: Budget | None) -> None:
    """Run the comparison's pending runs into OUTDIR (`edgeprof.experiments.run_experiment`: one run per method
    and seed, serial or `--workers` processes; finished runs kept, unfinished training resumed)."""
    experiment = get_experiment(COMPARISON)
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else None
    methods = args.algorithms.split(",") + [method.name for method in experiment.methods if method.kind == "solver"]
    names = {run_id(config): f"{config['method']['name']} seed {config['seed']}"
             for config in plan(experiment, args.budget, seeds, methods, spec)}
    backend = make_backend("serial" if args.workers == 1 else "process", args.workers)

    def report(done: int, total: int, result: dict[str, Any]) -> None:
        print(f"compare: {done}/{total} {names[result['id']]}: {result['status']} ({result['seconds']:.0f} s)"
              + (f": {result['error']}" if result["status"] == "failed" else ""), flush=True)

    summary = run_experiment(COMPARISON, outdir, args.budget, seeds, methods, backend, resume=True,
                             progress=report, spec=spec)
    print(f"compare: {summary['finished']} of {summary['planned']} runs finished ({summary['ran']} run now, "
          f"{len(summary['failed'])} failed)" + ("; the same command again retries them" if summary["failed"] else ""),
          flush=True)


def comparison(outdir: Path, tau: float) -> tuple[dict[str, Any], list[Any]]:
    """The tables' numbers from OUTDIR's results.csv (the finished runs): per method and mode, the seeds, how
    many meet tau-bar, each of TABLE_METRICS' mean and 95% interval over the seeds, and the delay's paired
    differences to REFERENCES; and the report's lines, for the figure."""
    experiment, budget, rows = read_results(outdir)
    found = lines(experiment, budget, rows, tuple(dict.fromkeys(experiment.metrics + TABLE_METRICS)))
    differences = {reference: paired_differences(rows, reference, ("delay_s",)) for reference in REFERENCES}
    order = [method.name for method in experiment.methods]
    entries = []
    for line in sorted(found, key=lambda item: (order.index(item.method), item.mode)):
        (value, stats), = line.points.items()  # seed001-fig5 has one setting
        ran = [row for row in rows if (row["method"], row["mode"]) == (line.method, line.mode)]
        entries.append({"method": line.method, "mode": line.mode, "seeds": sorted(int(row["seed"]) for row in ran),
                        "seeds_under_delay_constraint": sum(float(row["delay_s"]) <= tau for row in ran),
                        **{metric: stats_dict(stats[metric]) for metric in TABLE_METRICS},
                        **{f"delay_minus_{reference}_s": stats_dict(paired.get((line.method, line.mode, value),
                                                                               {}).get("delay_s"))
                           for reference, paired in differences.items()}})
    paper = {number.method: number.number for number in experiment.paper_numbers
             if number.metric == "delay_s" and number.value is None}
    return {"runs": str(outdir), "budget": budget, "delay_constraint_s": tau, "seed_001_delay_s": paper,
            "entries": entries}, found


def stats_dict(stats: tuple[float, float | None, float | None, int] | None) -> dict[str, Any] | None:
    return None if stats is None else dict(zip(("mean", "ci95_low", "ci95_high", "n"), stats, strict=True))


def markdown_table(result: dict[str, Any]) -> str:
    """One table per mode (`MODES`; the solvers in each): mean (95% interval) over the seeds, how many seeds meet
    tau-bar, the delay's tail, cost, energy and privacy, and the paired delay differences to REFERENCES; seed
    001's delays beside the sampled mode (Fig. 5 plots training curves, every action drawn)."""
    def cell(stats: dict[str, Any] | None, digits: int = 3) -> str:
        if stats is None:
            return ""
        low, high = stats["ci95_low"], stats["ci95_high"]
        if low is None:  # one seed: no interval
            return f"{stats['mean']:.{digits}g}"
        between = " to " if low < 0 else "-"
        return f"{stats['mean']:.{digits}g} ({low:.{digits}g}{between}{high:.{digits}g})"

    def plain(stats: dict[str, Any] | None) -> str:
        return "" if stats is None else f"{stats['mean']:.3g}"

    tau = result["delay_constraint_s"]
    sections = []
    for mode in MODES:
        columns = ["method", "seeds", f"delay_s (tau-bar {tau:g})", "seeds under tau-bar", "p99 delay_s", "success",
                   "cost", "energy_j", "privacy", *(f"delay - {reference}'s" for reference in REFERENCES)]
        columns += ["seed 001 delay_s"] if mode == "sampled" else []
        table = [f"{MODE_TITLES[mode]}:", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for entry in result["entries"]:
            if entry["mode"] not in (mode, "solve"):
                continue
            cells = [entry["method"], ",".join(map(str, entry["seeds"])), cell(entry["delay_s"]),
                     f"{entry['seeds_under_delay_constraint']} / {len(entry['seeds'])}", plain(entry["delay_p99_s"]),
                     plain(entry["success_rate"]), cell(entry["cost"]), plain(entry["energy_j"]),
                     plain(entry["privacy_cost"]),
                     *(cell(entry[f"delay_minus_{reference}_s"]) for reference in REFERENCES)]
            if mode == "sampled":
                cells.append(str(result["seed_001_delay_s"].get(entry["method"], "")))
            table.append("| " + " | ".join(cells) + " |")
        sections.append("\n".join(table) + "\n")
    return "\n".join(sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic-leakage", action="store_true", help="static workloads, stand-in leakage")
    parser.add_argument("--throughput-envs", type=int, default=1)
    parser.add_argument("--throughput-iterations", type=int, default=3)
    parser.add_argument("--throughput-threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit, timed at the same time")
    parser.add_argument("--compare", action="store_true", help="also train and compare the learners (seed001-fig5)")
    parser.add_argument("--budget", choices=BUDGETS, default="smoke", help="seed001-fig5's budget the comparison "
                        "starts from; the options below change it")
    parser.add_argument("--scenario", help="scenario preset of the comparison (default: the budget's)")
    parser.add_argument("--envs", type=int, help="environments per training iteration (default: the budget's)")
    parser.add_argument("--iterations", type=int, help="training iterations (default: the budget's)")
    parser.add_argument("--slots", type=int, help="slots per training iteration (default: the budget's)")
    parser.add_argument("--eval-slots", type=int, help="slots of each run's evaluation episode (default: the "
                        "budget's)")
    parser.add_argument("--seeds", help="comma-separated seeds (training and episode; default: the budget's)")
    parser.add_argument("--algorithms", default=",".join(TRAINERS), help="comma-separated trainers, default "
                        "seed001-fig5's (the five methods and random-fill); its solvers always run")
    parser.add_argument("--set", action="append", default=[], help="scenario override of the comparison")
    parser.add_argument("--hparam", action="append", default=[], help="NAME=VALUE, as `edgeprof train --hparam`")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (processes, one thread each)")
    parser.add_argument("--runs", type=Path, help="the comparison's experiment folder (default: a temporary one); "
                        "run the same command again to resume unfinished runs and reuse finished ones")
    parser.add_argument("--finished-only", action="store_true", help="with --runs: the tables of the runs "
                        "finished so far, train nothing (an interim report of a comparison under way)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--delay-tail", action="store_true", help="one untrained rollout's delay spread, with and "
                        "without the per-request deadline")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "hc_mappo_l.json")
    args = parser.parse_args()
    if args.finished_only and not (args.compare and args.runs):
        parser.error("--finished-only reports on the runs of --compare --runs DIR")
    experiment = get_experiment(COMPARISON)
    preset = args.scenario or experiment.budgets[args.budget].preset or experiment.preset
    paper_overrides: list[str] = []
    compare_overrides: list[str] = []
    if args.synthetic_leakage:  # a fixed folder: the override names it, and run ids follow from the overrides
        directory = Path(tempfile.gettempdir()) / "edgeprof-synthetic-profiles"
        paper_overrides = [profiles_override(load_scenario("paper")["services.models"], directory)]
        if args.compare:
            compare_overrides = [profiles_override(load_scenario(preset)["services.models"], directory)]
    compare_overrides += args.set
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "hc_mappo_l",
        "edgeprof": edgeprof.__version__,
        "machine": machine(),
        "profiles": SOURCE if args.synthetic_leakage else SHIPPED_PROFILES,
    }
    if not args.skip_throughput:
        result["throughput"] = throughput(paper_overrides, args.throughput_envs, args.throughput_iterations,
                                          [int(count) for count in args.throughput_threads.split(",")], args.baseline)
    if args.delay_tail:
        result["delay_tail"] = delay_tail(paper_overrides)
    if args.compare:
        spec = comparison_budget(args, compare_overrides)
        budget = spec or experiment.budgets[args.budget]
        tau = load_scenario(budget.preset or experiment.preset, list(budget.overrides))["system.delay_constraint_s"]
        try:
            with nullcontext(args.runs) if args.runs else tempfile.TemporaryDirectory(prefix="edgeprof-bench-") as runs:
                if not args.finished_only:
                    compare(args, Path(runs), spec)
                result["comparison"], found = comparison(Path(runs), tau)
        except EdgeprofError as error:
            print(f"compare: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        result["comparison"]["settings"] = asdict(budget)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        draw(experiment, found).savefig(args.output.with_suffix(".png"), dpi=130, format="png")
        table = markdown_table(result["comparison"])
        write_text_atomic(args.output.with_suffix(".md"), table)
        print(table)
    result["wall_s"] = time.perf_counter() - started
    write_result(args.output, result, next(key for key in ("throughput", "comparison", "delay_tail") if key in result))


if __name__ == "__main__":
    main()
