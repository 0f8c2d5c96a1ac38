"""Benchmark: seed 004's Table III and Figs. 3-5 on the `crowd-edge` preset (45 MDs, 3 edge servers).

For each case (I, II, III) and seed: MADQN, MAA3C, MAPPO and M2APPO train on the same amount of data
(`--iterations` x 50 slots x 2 environments: the trainers' defaults), then every trained policy, drift-plus-penalty
(DPP) and random act on the same evaluation episode (seed 1000 + seed, `--eval-slots` slots). Actor-critic
policies are evaluated with their actions drawn as in training (the learned stochastic policy; a greedy policy
sends a whole batch to one node) and greedily; MADQN greedily. In case I, M2APPO-min (Fig. 5) and M2APPO with
Alg. 1's heuristic mix (`mix_heuristic`) train as well. Means and 95% Student-t intervals over the seeds.

Outputs (benchmarks/results/): `mixed_mappo.json` (every run's training log, evaluation rows, CPU and wall
seconds), `mixed_mappo.md` (Table III beside the paper's numbers, the claims per metric, the budget) and
`mixed_mappo_fig3.png` (AD over training seconds), `_fig4.png` (test AD), `_fig5.png` (critic loss: single, min,
mean). Runs live in `--workdir` (one run folder and one result file per run): stop at any time and run the same
command again; finished runs are read back and unfinished ones resume from their checkpoint. Each run is one call
of `run_one(job)`.

    nice python benchmarks/mixed_mappo.py [--iterations 30] [--eval-slots 500] [--seeds 0,1,2,3,4] [--workers 2]
        [--workdir mixed-mappo-work] [--cases I,II,III] [--note TEXT ...]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from reporting import interval, machine, provenance, write_result

from edgeprof.experiments.definitions import TABLE_III
from edgeprof.files import write_text_atomic
from edgeprof.optimize.solve import run_solver
from edgeprof.rl.runs import RunPaths, evaluate_run, train
from edgeprof.rl.trainers import get_trainer
from edgeprof.sim.crowd_edge import SYSTEM
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.scenario import load_scenario
from edgeprof.stats import format_interval

RESULTS = Path(__file__).parent / "results"
TABLE = ("ad_s_per_mb", "anlr", "e2e", "e2d")
EXTRA = ("delay_s", "edge_share", "queue_growth_ghz", "objective")
LEARNED = ("madqn", "maa3c", "mappo", "m2appo")
ACTOR_CRITIC = ("maa3c", "mappo", "m2appo", "m2appo-min", "m2appo-mix")
SOLVERS = ("dpp", "random")
PAPER = TABLE_III  # AD, ANLR, E2E, E2D per case: the paper's units and capacities, not ours; compare orderings
PAPER_CONVERGENCE_S = {"m2appo": 8000, "mappo": 10000, "maa3c": 12000}  # Fig. 3(a), case I
PAPER_TRAINING_S = 50_000


@dataclass(frozen=True)
class Job:
    """One run: a method (a trainer, `m2appo-mix`, or a solver) on one case and seed."""

    case: str
    method: str
    seed: int
    iterations: int
    eval_slots: int
    workdir: str

    @property
    def folder(self) -> Path:
        return Path(self.workdir) / self.case / self.method / f"seed{self.seed}"

    @property
    def eval_seed(self) -> int:
        return 1000 + self.seed


def run_one(job: Job) -> dict[str, Any]:
    """Train (if the method learns) and evaluate one run; read back when already done. CPU seconds are this
    process's own."""
    result_path = job.folder / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    import torch

    torch.set_num_threads(1)
    job.folder.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario("crowd-edge", [f'tasks.case="{job.case}"'])
    workload = load_workload(scenario)
    record: dict[str, Any] = {"case": job.case, "method": job.method, "seed": job.seed, "code": code_version()}
    if job.method in SOLVERS:
        start, cpu = time.perf_counter(), time.process_time()
        (row,) = run_solver(job.method, scenario, workload, job.eval_slots, [job.eval_seed])
        record.update(evaluation={"greedy": row}, eval_wall_s=time.perf_counter() - start,
                      eval_cpu_s=time.process_time() - cpu)
    else:
        algorithm, settings = job.method, {}
        if job.method == "m2appo-mix":
            algorithm, settings = "m2appo", {"mix_heuristic": True}
        trainer = get_trainer(algorithm)
        config = trainer.make_config(seed=job.seed, iterations=job.iterations, checkpoint_every=5, **settings)
        rundir = job.folder / "run"
        start, cpu = time.perf_counter(), time.process_time()
        rows = train(config, scenario, workload, rundir, resume=RunPaths(rundir).checkpoint.is_file(),
                     scenario_name="crowd-edge")
        record.update(log=rows, train_wall_s=time.perf_counter() - start, train_cpu_s=time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        modes = {"greedy": ()} if algorithm == "madqn" else {"drawn": ("offload",), "greedy": ()}
        record["evaluation"] = {mode: evaluate_run(rundir, job.eval_slots, [job.eval_seed], draw=draw)[0]
                                for mode, draw in modes.items()}
        record.update(eval_wall_s=time.perf_counter() - start, eval_cpu_s=time.process_time() - cpu)
    write_text_atomic(result_path, json.dumps(record) + "\n")
    return record


def code_version() -> str:
    """The short commit the benchmark runs from, "+changes" when edgeprof/ differs from it
    (`reporting.provenance`): each run records the code that made it."""
    made_by = provenance()
    return (made_by["commit"] or "unknown")[:7] + ("+changes" if made_by["dirty"] else "")


def jobs(cases: list[str], seeds: list[int], iterations: int, eval_slots: int, workdir: str) -> list[Job]:
    """Every run, the most expensive first (so that two workers finish together)."""
    methods = {case: [*LEARNED, *SOLVERS, *(("m2appo-min", "m2appo-mix") if case == "I" else ())] for case in cases}
    cost = {"m2appo": 0, "m2appo-mix": 1, "m2appo-min": 2, "mappo": 3, "madqn": 4, "maa3c": 5, "dpp": 6, "random": 7}
    found = [Job(case, method, seed, iterations, eval_slots, workdir)
             for case in cases for method in methods[case] for seed in seeds]
    return sorted(found, key=lambda job: (cost[job.method], job.case, job.seed))


def evaluation_mode(method: str) -> str:
    """The evaluation Table III reports: drawn actions for actor-critic policies, greedy otherwise."""
    return "drawn" if method in ACTOR_CRITIC else "greedy"


def summarise(records: list[dict[str, Any]], cases: list[str]) -> dict[str, Any]:
    """Per case and method: the mean and interval of every metric (Table III layout; greedy beside drawn)."""
    table: dict[str, Any] = {}
    for case in cases:
        table[case] = {}
        for method in sorted({r["method"] for r in records if r["case"] == case}, key=_order):
            runs = [r for r in records if r["case"] == case and r["method"] == method]
            entry = {mode: {metric: interval([r["evaluation"][mode][metric] for r in runs],
                                             SYSTEM.bounded_metrics.get(metric))
                            for metric in (*TABLE, *EXTRA)} for mode in runs[0]["evaluation"]}
            entry["reported"] = evaluation_mode(method)
            entry["seeds"] = len(runs)
            if "train_cpu_s" in runs[0]:
                entry["train_cpu_s"] = interval([r["train_cpu_s"] for r in runs])
                entry["train_wall_s"] = interval([r["train_wall_s"] for r in runs])
                entry["sim_seconds"] = runs[0]["log"][-1]["sim_seconds"]
            entry["eval_cpu_s"] = interval([r["eval_cpu_s"] for r in runs])
            table[case][method] = entry
    return table


def _order(method: str) -> int:
    order = ("madqn", "maa3c", "mappo", "m2appo", "m2appo-min", "m2appo-mix", "dpp", "random")
    return order.index(method)


def curves(records: list[dict[str, Any]], case: str, method: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A training-log column over training seconds, mean over the seeds."""
    runs = [r for r in records if r["case"] == case and r["method"] == method and "log" in r]
    seconds = np.array([row["sim_seconds"] for row in runs[0]["log"]])
    values = np.array([[np.nan if row[column] is None else row[column] for row in r["log"]] for r in runs])
    return seconds, np.nanmean(values, axis=0)


def converged_at(seconds: np.ndarray, values: np.ndarray, window: int = 5, within: float = 0.1) -> float | None:
    """The first training second after which the moving average (over `window` iterations) stays within `within`
    of its final value: when the curve flattens."""
    if len(values) < window:
        return None
    smooth = np.convolve(values, np.ones(window) / window, mode="valid")
    final = smooth[-1]
    inside = np.abs(smooth - final) <= within * abs(final)
    outside = np.flatnonzero(~inside)
    first = 0 if not len(outside) else outside[-1] + 1
    return float(seconds[first + window - 1]) if first < len(smooth) else None


def claims(table: dict[str, Any], records: list[dict[str, Any]], cases: list[str]) -> list[dict[str, Any]]:
    """The paper's claims, per metric and case: what its own Table III says, what our means say, and whether our
    95% intervals of the two methods compared are disjoint (`separated`)."""
    found = []

    def entry(case: str, method: str, metric: str) -> dict[str, float]:
        row = table[case][method]
        return row[row["reported"]][metric]

    def add(claim: str, case: str, paper: str, verdict: str, metric: str, pair: tuple[str, str]) -> None:
        ours = {m: entry(case, m, metric)["mean"] for m in LEARNED}
        a, b = entry(case, pair[0], metric), entry(case, pair[1], metric)
        separated = a["ci95_high"] < b["ci95_low"] or b["ci95_high"] < a["ci95_low"]
        found.append({"claim": claim, "case": case, "paper_table": paper, "ours": verdict, "separated": separated,
                      "compared": list(pair), "values": ours})

    for metric, label in (("ad_s_per_mb", "AD"), ("e2e", "E2E"), ("e2d", "E2D")):
        for case in cases:
            paper = {m: PAPER[case][m][TABLE.index(metric)] for m in LEARNED}
            ours = {m: entry(case, m, metric)["mean"] for m in LEARNED}
            rival = min((m for m in LEARNED if m != "m2appo"), key=ours.get)
            add(f"M2APPO has the lowest {label} of the four learned methods (sec. VI-B)", case,
                _lowest(paper, "m2appo"), _lowest(ours, "m2appo"), metric, ("m2appo", rival))
    for case in cases:
        paper = {m: PAPER[case][m][1] for m in LEARNED}
        ours = {m: entry(case, m, "anlr")["mean"] for m in LEARNED}
        rival = min((m for m in LEARNED if m != "maa3c"), key=ours.get)
        add("MAA3C has the lowest ANLR (Table III)", case, _lowest(paper, "maa3c"), _lowest(ours, "maa3c"), "anlr",
            ("maa3c", rival))
        paper = {m: PAPER[case][m][0] for m in LEARNED}
        ours = {m: entry(case, m, "ad_s_per_mb")["mean"] for m in LEARNED}
        rival = max((m for m in LEARNED if m != "madqn"), key=ours.get)
        add("MADQN has the highest AD (Table III, Fig. 4)", case, _highest(paper, "madqn"), _highest(ours, "madqn"),
            "ad_s_per_mb", ("madqn", rival))
        add("M2APPO's AD is below MAPPO's (the critic mix helps)", case, _below(paper["m2appo"], paper["mappo"]),
            _below(ours["m2appo"], ours["mappo"]), "ad_s_per_mb", ("m2appo", "mappo"))
        random = entry(case, "random", "ad_s_per_mb")["mean"]
        add("M2APPO's AD is below random destinations' (trained vs untrained)", case, "not in the paper",
            _below(ours["m2appo"], random), "ad_s_per_mb", ("m2appo", "random"))
        found[-1]["values"]["random"] = random
    if "I" in cases:
        at = {m: converged_at(*curves(records, "I", m, "ad_s_per_mb")) for m in ("m2appo", "mappo", "maa3c")}
        end = max(curves(records, "I", "m2appo", "ad_s_per_mb")[0])
        if any(value is None or value > 0.8 * end for value in at.values()):
            verdict = "not measurable: a curve flattens only in the last 20% of training"
        else:
            verdict = "holds" if at["m2appo"] < at["mappo"] < at["maa3c"] else "does not hold"
        found.append({"claim": "Fig. 3(a): M2APPO converges before MAPPO, MAPPO before MAA3C (8,000 / 10,000 / "
                               "12,000 s; ours: when the 5-iteration mean of AD stays within 10% of its end)",
                      "case": "I", "paper_table": "holds (Fig. 3)", "ours": verdict, "separated": None, "values": at})
        loss = {m: float(np.mean(curves(records, "I", m, "mixed_value_loss")[1][-10:]))
                for m in ("mappo", "m2appo-min", "m2appo")}
        found.append({"claim": "Fig. 5: the mean of the critics ends with a lower critic loss than one critic (mean "
                               "of the last 10 iterations)", "case": "I", "paper_table": "holds (slightly, Fig. 5)",
                      "ours": _below(loss["m2appo"], loss["mappo"]), "separated": None, "values": loss})
    return found


def _lowest(values: dict[str, float], method: str) -> str:
    best = min(values.values())
    if values[method] > best:
        return "does not hold"
    return "ties" if sum(v == best for v in values.values()) > 1 else "holds"


def _highest(values: dict[str, float], method: str) -> str:
    return "holds" if values[method] == max(values.values()) else "does not hold"


def _below(value: float, other: float) -> str:
    return "holds" if value < other else ("ties" if value == other else "does not hold")


def figures(records: list[dict[str, Any]], table: dict[str, Any], cases: list[str], stem: Path) -> list[str]:
    """Fig. 3 (AD over training seconds), Fig. 4 (test AD with intervals), Fig. 5 (critic loss, case I)."""
    from matplotlib.figure import Figure

    paths = []
    figure = Figure(figsize=(5 * len(cases), 3.6), layout="constrained")
    for axis, case in zip(figure.subplots(1, len(cases), squeeze=False)[0], cases, strict=True):
        for method in LEARNED:
            axis.plot(*curves(records, case, method, "ad_s_per_mb"), label=method.upper())
        for solver in SOLVERS:
            axis.axhline(table[case][solver]["greedy"]["ad_s_per_mb"]["mean"], linestyle="--", linewidth=1,
                         color="grey" if solver == "random" else "black", label=f"{solver} (test)")
        axis.set(title=f"Case {case}", xlabel="training data (s)", ylabel="AD (s per MB)", yscale="log")
    figure.axes[0].legend(fontsize=8)
    figure.suptitle("Fig. 3: unit delay during training (mean of 5 seeds)")
    paths.append(_save(figure, stem.with_name(stem.name + "_fig3.png")))

    figure = Figure(figsize=(5 * len(cases), 3.6), layout="constrained")
    for axis, case in zip(figure.subplots(1, len(cases), squeeze=False)[0], cases, strict=True):
        methods = [m for m in (*LEARNED, *SOLVERS) if m in table[case]]
        means = [table[case][m][evaluation_mode(m)]["ad_s_per_mb"] for m in methods]
        heights = [v["mean"] for v in means]
        errors = [[v["mean"] - v["ci95_low"] for v in means], [v["ci95_high"] - v["mean"] for v in means]]
        axis.bar(range(len(methods)), heights, yerr=errors, capsize=3, color="tab:blue")
        axis.set_xticks(range(len(methods)), [m.upper() for m in methods], rotation=30, fontsize=8)
        axis.set(title=f"Case {case}", ylabel="AD (s per MB)", yscale="log")
    figure.suptitle("Fig. 4: unit delay in the test episodes (95% interval over 5 seeds)")
    paths.append(_save(figure, stem.with_name(stem.name + "_fig4.png")))

    if "I" in cases:
        figure = Figure(figsize=(5.5, 3.6), layout="constrained")
        axis = figure.subplots()
        for method, label in (("mappo", "single critic (MAPPO)"), ("m2appo-min", "minimum of 5 (M2APPO-min)"),
                              ("m2appo", "mean of 5 (M2APPO)")):
            axis.plot(*curves(records, "I", method, "mixed_value_loss"), label=label)
        axis.set(title="Fig. 5: critic loss during training, case I", xlabel="training data (s)",
                 ylabel="loss of the mixed value", yscale="log")
        axis.legend(fontsize=8)
        paths.append(_save(figure, stem.with_name(stem.name + "_fig5.png")))
    return paths


def _save(figure: Any, path: Path) -> str:
    figure.savefig(path, dpi=120)
    return path.name


def _cell(entry: dict[str, Any], digits: int = 4) -> str:
    return f"{entry['mean']:.{digits}g} ({format_interval(entry['ci95_low'], entry['ci95_high'], digits)})"


def markdown(result: dict[str, Any]) -> str:
    """The report: Table III beside the paper's, the claims, the mixed heuristic, the budget."""
    table, cases = result["table"], result["settings"]["cases"]
    lines = [(f"# Seed 004 (mixed MAPPO) on `crowd-edge`: Table III, Figs. 3-5 "
             f"({result['settings']['iterations']} iterations = {result['settings']['training_s']:,} s of training "
             f"data per run, {len(result['settings']['seeds'])} seeds)"), "",
             ("Produced by `benchmarks/mixed_mappo.py` (JSON beside this file). Mean (95% interval) over seeds; the "
             "paper's values are in its own units and capacities (it gives neither), so compare orderings. Actor-"
             "critic policies act with their actions drawn as in training, MADQN greedily (greedy actor-critic "
             "numbers in the JSON and below)."), ""]
    for case in cases:
        lines += [f"## Case {case}", "", ("| method | AD (s/MB) | ANLR | E2E | E2D | delay (s) | edge share | "
                  "paper AD | paper ANLR | paper E2E | paper E2D |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
        for method, entry in table[case].items():
            values = entry[entry["reported"]]
            paper = PAPER[case].get(method)
            paper_cells = [f"{v:g}" for v in paper] if paper else ["", "", "", ""]
            lines.append(f"| {method.upper()} | " + " | ".join(_cell(values[m]) for m in (*TABLE, "delay_s")) +
                         f" | {values['edge_share']['mean']:.2f} | " + " | ".join(paper_cells) + " |")
        lines.append("")
    lines += ["Stability on the test episodes (compute backlog growth, GHz of work per s: ~0 when stable):", ""]
    for case in cases:
        growth = {m: e[e["reported"]]["queue_growth_ghz"]["mean"] for m, e in table[case].items()}
        lines.append(f"- case {case}: " + ", ".join(f"{m.upper()} {v:.2f}" for m, v in growth.items()))
    greedy_shares = [e["greedy"]["edge_share"]["mean"] for case in cases for m, e in table[case].items()
                     if m in ("maa3c", "mappo", "m2appo", "m2appo-min")]
    note = (" Each of them sends every task to an edge server here, so the wireless links carry the same data "
            "whatever the method (E2D ties) and the edge servers alone must carry the whole load."
            if min(greedy_shares) == 1.0 else "")
    lines += ["", "Greedy actor-critic policies (every task of a batch to the most probable destination)." + note,
              "", "| case | method | AD | ANLR | E2E | E2D | edge share | backlog growth |",
              "|---|---|---|---|---|---|---|---|"]
    for case in cases:
        for method, entry in table[case].items():
            if method in ACTOR_CRITIC:
                greedy = entry["greedy"]
                lines.append(f"| {case} | {method.upper()} | " + " | ".join(_cell(greedy[m]) for m in TABLE) +
                             f" | {greedy['edge_share']['mean']:.2f} | {greedy['queue_growth_ghz']['mean']:.2f} |")
    lines += ["", "## Claims", "", ("Ours: by the means; \"separated\" when the 95% intervals of the two methods "
              "compared (the claimed one and its closest rival) do not overlap."), "",
              "| claim | case | the paper's own Table III | ours | separated | our values |",
              "|---|---|---|---|---|---|"]
    for claim in result["claims"]:
        values = ", ".join(f"{k.upper()} {v:.4g}" if v is not None else f"{k.upper()} -"
                           for k, v in claim["values"].items())
        separated = {True: "yes", False: "no", None: ""}[claim["separated"]]
        lines.append(f"| {claim['claim']} | {claim['case']} | {claim['paper_table']} | {claim['ours']} | "
                     f"{separated} | {values} |")
    budget = result["budget"]
    lines += ["", "## Budget", "",
              (f"CPU {budget['cpu_s'] / 60:.1f} min in all (target: at most ~45 min); the runs' wall time added up "
               f"to {budget['run_wall_s'] / 60:.1f} min ({result['settings']['workers']} workers on "
               f"{result['machine']['cores']} cores shared with other work); this invocation took "
               f"{result['wall_s'] / 60:.1f} min (finished runs are read back from the work folder)."), "",
              ("| method | training CPU s per run | CPU s per 1,000 s of training data | "
              f"the paper's {PAPER_TRAINING_S:,} s per run | its {budget['runs_for_paper']} runs |"),
              "|---|---|---|---|---|"]
    for method, cost in budget["per_method"].items():
        lines.append(f"| {method.upper()} | {cost['train_cpu_s']:.0f} | {cost['cpu_per_1000_s']:.1f} | "
                     f"{cost['paper_run_cpu_h']:.2f} h | {cost['paper_all_cpu_h']:.1f} h |")
    total = sum(cost["paper_all_cpu_h"] for cost in budget["per_method"].values())
    lines += ["", (f"The paper's budget for the four methods of Table III ({budget['runs_for_paper']} runs each) "
                   f"would take {total:.1f} CPU hours at the measured speed: about {total / 2:.1f} h on 2 dedicated "
                   "cores (plus M2APPO-min and the mixed heuristic for Fig. 5 and Alg. 1).")]
    codes: dict[str, int] = {}
    for record in result["runs"]:
        codes[record.get("code", "not recorded")] = codes.get(record.get("code", "not recorded"), 0) + 1
    lines += ["", "Code of the runs (commit: runs): " + ", ".join(f"{code}: {count}" for code, count in codes.items())
              + f"; this file was written at {result['code']}."]
    if result["notes"]:
        lines += ["", "## Notes", "", *[f"- {note}" for note in result["notes"]]]
    return "\n".join(lines) + "\n"


def budget(records: list[dict[str, Any]], cases: list[str], seeds: list[int]) -> dict[str, Any]:
    """CPU spent, and what the paper's 50,000 s of training per run would take at the measured speed."""
    per_method = {}
    for method in ("madqn", "maa3c", "mappo", "m2appo"):
        runs = [r for r in records if r["method"] == method]
        cpu = float(np.mean([r["train_cpu_s"] for r in runs]))
        per_1000 = cpu / runs[0]["log"][-1]["sim_seconds"] * 1000
        per_method[method] = {"train_cpu_s": cpu, "cpu_per_1000_s": per_1000,
                              "paper_run_cpu_h": per_1000 * PAPER_TRAINING_S / 1000 / 3600,
                              "paper_all_cpu_h": per_1000 * PAPER_TRAINING_S / 1000 / 3600 * len(cases) * len(seeds)}
    cpu = sum(r.get("train_cpu_s", 0.0) + r["eval_cpu_s"] for r in records)
    wall = sum(r.get("train_wall_s", 0.0) + r["eval_wall_s"] for r in records)
    return {"cpu_s": cpu, "run_wall_s": wall, "per_method": per_method, "runs_for_paper": len(cases) * len(seeds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--eval-slots", type=int, default=500)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--cases", default="I,II,III")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default="mixed-mappo-work")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "mixed_mappo.json")
    parser.add_argument("--note", action="append", default=[],
                        help="a sentence for the report's Notes (what the runs cannot say themselves); repeatable")
    args = parser.parse_args()
    seeds, cases = [int(s) for s in args.seeds.split(",")], args.cases.split(",")
    start = time.perf_counter()
    todo = jobs(cases, seeds, args.iterations, args.eval_slots, args.workdir)
    with ProcessPoolExecutor(args.workers) as pool:
        records = []
        for record in pool.map(run_one, todo):
            records.append(record)
            print(f"{record['case']:>3} {record['method']:11s} seed {record['seed']}: AD "
                  f"{record['evaluation'][evaluation_mode(record['method'])]['ad_s_per_mb']:.4g}", flush=True)
    table = summarise(records, cases)
    result = {"benchmark": "mixed_mappo", "machine": machine(threads=1),
              "settings": {"iterations": args.iterations, "eval_slots": args.eval_slots, "seeds": seeds,
                           "cases": cases, "workers": args.workers,
                           "training_s": records[0]["log"][-1]["sim_seconds"] if "log" in records[0] else None},
              "table": table, "claims": claims(table, records, cases), "budget": budget(records, cases, seeds),
              "paper": PAPER, "paper_convergence_s": PAPER_CONVERGENCE_S, "notes": args.note, "runs": records,
              "code": code_version(), "wall_s": time.perf_counter() - start}
    result["figures"] = figures(records, table, cases, args.output.with_suffix(""))
    write_text_atomic(args.output.with_suffix(".md"), markdown(result))
    write_result(args.output, result, "claims")


if __name__ == "__main__":
    main()
