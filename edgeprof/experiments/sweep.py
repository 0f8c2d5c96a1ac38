"""Running an experiment as a resumable sweep (`edgeprof experiment run`).

The sweep is a list of runs: one per (method, value of the varied field, replicate seed). A run is a plain,
JSON-able config; its id is the sha256 of the canonical JSON of that config, so it never depends on the order of
execution, the backend, or Python's per-process `hash()`. `execute_run` is one pure, top-level function per run:
it reads nothing but its config, and writes `OUTDIR/runs/<id>/` itself (`config.json` with `metrics.json` when it
finishes, or with `error.json` when it raises, in one atomic commit; a trainer's run folder in `train/`,
checkpointed, so an interrupted run resumes from its checkpoint). The driver skips finished ids with `--resume`,
retries failed ones, and rebuilds `results.csv` from the finished runs, sorted by id, at the end and every
`RESULTS_EVERY_S` while runs finish (so a sweep under way can be reported on): `edgeprof solve -o`'s columns plus
the experiment's, the method, the evaluation mode and the varied field. Wall times are kept apart (`timing.json` per
run) so that results.csv is identical whatever ran it.

A trainer is evaluated in modes: `greedy` (every layer's most probable action), `sampled` (every layer draws as
in training) and, for each layer of `DRAWN_ALONE` it has, that layer alone drawn (`deployment_drawn`: the
servers' deployments drawn, users and allocation greedy). A caller may replace the named budget's settings with
its own `Budget` (`spec`: another preset, overrides, iterations, training settings, hyperparameters); OUTDIR
records it, and a resume with another is refused.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.experiments.definitions import Budget, Experiment, check_budget, get_experiment
from edgeprof.files import (
    atomic_output,
    atomic_outputs,
    folder_lock,
    json_text,
    make_parents,
    read_json,
    write_json_atomic,
)

FORMAT = "edgeprof.experiment/1"
SOLVE_COLUMNS = ("solver", "seed", "slots")
RESULTS_EVERY_S = 30.0  # results.csv's rebuild reads every finished run: not after each of many short runs
DRAWN_ALONE = ("deployment",)  # layers also evaluated drawn alone, the others greedy (mode "<layer>_drawn")


def run_id(config: dict[str, Any]) -> str:
    """The id of a run: sha256 of its canonical JSON (sorted keys, no spaces), first 16 hex digits."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def plan(experiment: Experiment, budget: str, seeds: Sequence[int] | None = None,
         methods: Iterable[str] | None = None, spec: Budget | None = None) -> list[dict[str, Any]]:
    """Every run of `experiment` at `budget` (its settings replaced by `spec` when given; the varied field's
    values stay the budget's) with the replicate `seeds` (default: 0..the budget's count - 1): method-major, then
    the varied field's values, then seeds."""
    named = check_budget(experiment, budget)  # the varied field's values are the named budget's
    spec = spec or named
    chosen = list(methods) if methods is not None else [method.name for method in experiment.methods]
    known = {method.name: method for method in experiment.methods}
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise EdgeprofError(f"{experiment.name} has no method {', '.join(unknown)}: use {', '.join(known)}")
    replicates = list(range(spec.seeds)) if seeds is None else list(seeds)
    if not replicates:
        raise EdgeprofError("--seeds needs at least one seed")
    runs = []
    for name in chosen:
        method = known[name]
        for value in experiment.points(budget):
            for seed in replicates:
                runs.append({
                    "experiment": experiment.name, "budget": budget, "system": experiment.system,
                    "preset": spec.preset or experiment.preset, "overrides": list(spec.overrides),
                    "vary": experiment.vary, "value": value, "method": asdict(method), "seed": seed,
                    "slots": spec.slots,
                    **({"iterations": spec.iterations, "train_settings": dict(spec.train_settings)}
                       if method.kind == "trainer" else {}),
                    **({"hyperparameters": list(spec.hyperparameters)}
                       if method.kind == "trainer" and spec.hyperparameters else {}),
                })
    return runs


def _scenario(config: dict[str, Any]):
    from edgeprof.sim.evaluation import load_workload
    from edgeprof.sim.scenario import load_scenario, toml_value

    overrides = list(config["overrides"])
    if config["vary"] is not None:
        overrides.append(f"{config['vary']}={toml_value(config['value'])}")
    scenario = load_scenario(config["preset"], overrides)
    if scenario.system_name != config["system"]:
        raise EdgeprofError(f"preset {config['preset']} is a {scenario.system_name} scenario, not {config['system']}")
    return scenario, load_workload(scenario)


def _evaluate(config: dict[str, Any], rundir: Path) -> list[dict[str, Any]]:
    """The run's rows: a solver's episode, or a trainer's greedy and sampled evaluations after training."""
    from edgeprof.sim.evaluation import run_episodes

    scenario, workload = _scenario(config)
    method, seed, slots = config["method"], config["seed"], config["slots"]
    if method["kind"] == "solver":
        from edgeprof.optimize.solve import get_solver

        info = get_solver(scenario.system_name, method["name"])
        prepared = info.prepare(scenario) if info.prepare else scenario
        rows = run_episodes(method["name"], prepared, workload, info.make, slots, [seed], extra=("per_user",))
        return [{**row, "mode": "solve"} for row in rows]
    import torch

    from edgeprof.rl.runs import RunPaths, evaluate_run, train
    from edgeprof.rl.trainers import get_trainer

    torch.set_num_threads(1)
    trainer = get_trainer(method["name"])
    settings = {**config["train_settings"], **trainer.hyperparameters(config.get("hyperparameters", [])),
                "iterations": config["iterations"], "seed": seed}
    train_config = trainer.make_config(**settings)
    folder = rundir / "train"
    train(train_config, scenario, workload, folder, resume=RunPaths(folder).checkpoint.is_file(),
          scenario_name=config["preset"])
    modes = {"greedy": (), "sampled": trainer.layers,
             **{f"{layer}_drawn": (layer,) for layer in DRAWN_ALONE if layer in trainer.layers}}
    return [{**row, "mode": mode} for mode, draw in modes.items()
            for row in evaluate_run(folder, slots, [seed], draw=draw, extra=("per_user",))]


def execute_run(config: dict[str, Any], outdir: str) -> dict[str, Any]:
    """Run one config into OUTDIR/runs/<id>/ (pure, top-level, picklable: every backend calls this). Returns
    {"id", "status": "done" | "failed", "seconds"}; a failure is recorded in error.json, never raised."""
    identifier = run_id(config)
    rundir = Path(outdir) / "runs" / identifier
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "error.json").unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        rows = _evaluate(config, rundir)
        metrics = json_text({"rows": rows})  # checked (strict JSON) before anything is written
    except Exception as error:  # noqa: BLE001 (recorded, and the sweep goes on; --resume retries it)
        seconds = time.perf_counter() - started
        _write_record(rundir, config, error=json_text({"error": f"{type(error).__name__}: {error}",
                                                       "traceback": traceback.format_exc(), "seconds": seconds}))
        return {"id": identifier, "status": "failed", "error": f"{type(error).__name__}: {error}",
                "seconds": seconds}
    seconds = time.perf_counter() - started
    _write_record(rundir, config, timing=json_text({"seconds": seconds}), metrics=metrics)
    return {"id": identifier, "status": "done", "seconds": seconds}


def _write_record(rundir: Path, config: dict[str, Any], **texts: str) -> None:
    """A finished run's files (config.json with timing.json and metrics.json, or with error.json) as one atomic
    commit: one flush of the folder instead of one per file (a solver's run lasts tens of milliseconds, and each
    flush of the disk costs milliseconds). They are renamed in the order given, so metrics.json, the mark of a
    finished run, comes last."""
    texts = {"config": json_text(config), **texts}
    with atomic_outputs(*(rundir / f"{name}.json" for name in texts)) as temporaries:
        for tmp, text in zip(temporaries, texts.values(), strict=True):
            tmp.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class SweepState:
    """What OUTDIR holds: finished, failed and pending runs of the planned sweep."""

    planned: list[dict[str, Any]]
    finished: list[str]
    failed: list[str]

    @property
    def pending(self) -> list[dict[str, Any]]:
        done = set(self.finished)
        return [config for config in self.planned if run_id(config) not in done]


def state(outdir: Path, planned: list[dict[str, Any]]) -> SweepState:
    ids = [run_id(config) for config in planned]
    finished = [i for i in ids if (outdir / "runs" / i / "metrics.json").is_file()]
    failed = [i for i in ids if (outdir / "runs" / i / "error.json").is_file()]
    return SweepState(planned, finished, failed)


def _check_outdir(outdir: Path, record: dict[str, Any], resume: bool) -> None:
    """Refuse an OUTDIR of another experiment, budget or budget spec, and a used one without --resume."""
    marker = outdir / "experiment.json"
    if outdir.exists() and not outdir.is_dir():
        raise EdgeprofError(f"OUTDIR {outdir} is a file; give a folder")
    make_parents(outdir, "experiment folder")
    if marker.is_file():
        stored = read_json(marker, "experiment record")
        if (stored.get("experiment"), stored.get("budget")) != (record["experiment"], record["budget"]):
            raise EdgeprofError(f"{outdir} holds experiment {stored.get('experiment')} at budget "
                                f"{stored.get('budget')}, not {record['experiment']} at {record['budget']}: "
                                "choose another OUTDIR")
        if stored.get("spec") != record.get("spec"):
            raise EdgeprofError(f"{outdir} holds {record['experiment']} at other budget settings than these "
                                "(its experiment.json's spec): choose another OUTDIR")
        if not resume:
            raise EdgeprofError(f"{outdir} already holds this experiment: add --resume to continue it")
    elif resume and outdir.exists() and any(outdir.iterdir()):
        raise EdgeprofError(f"{outdir} holds no experiment to resume (no experiment.json)")


def write_results(outdir: Path) -> Path:
    """Rebuild OUTDIR/results.csv from every finished run, sorted by run id (timings apart)."""
    rows = []
    for metrics_path in sorted((outdir / "runs").glob("*/metrics.json")):
        config = read_json(metrics_path.parent / "config.json", "run config")
        for row in read_json(metrics_path, "run metrics")["rows"]:
            scalar = {key: value for key, value in row.items() if not isinstance(value, (dict, list))}
            rows.append({"run": metrics_path.parent.name, "experiment": config["experiment"],
                         "method": config["method"]["name"], "kind": config["method"]["kind"],
                         "mode": scalar.pop("mode"), "field": config["vary"] or "",
                         "value": "" if config["vary"] is None else json.dumps(config["value"]), **scalar})
    path = outdir / "results.csv"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_experiment(name: str, outdir: str | Path, budget: str = "smoke", seeds: Sequence[int] | None = None,
                   methods: Iterable[str] | None = None, backend: Any = None, resume: bool = False,
                   progress: Callable[[int, int, dict[str, Any]], None] | None = None,
                   spec: Budget | None = None) -> dict[str, Any]:
    """Run every pending run of the experiment into OUTDIR with `backend` (serial by default), `spec` replacing the
    budget's settings (`plan`); results.csv is rebuilt as runs finish (`RESULTS_EVERY_S`) and at the end. Returns a
    summary: runs planned, finished now and before, failed (with their errors)."""
    from edgeprof.experiments.backends import SerialBackend

    experiment = get_experiment(name)
    planned = plan(experiment, budget, seeds, methods, spec)
    outdir = Path(outdir)
    record = {"format": FORMAT, "experiment": experiment.name, "budget": budget,
              **({"spec": json.loads(json.dumps(asdict(spec)))} if spec else {})}
    _check_outdir(outdir, record, resume)
    backend = backend or SerialBackend()
    with folder_lock(outdir, "experiment folder"):
        if not (outdir / "experiment.json").is_file():
            write_json_atomic(outdir / "experiment.json", record)
        before = state(outdir, planned)
        pending = before.pending
        failures = []
        written = time.monotonic()
        for done, result in enumerate(backend.map(execute_run, pending, str(outdir)), start=1):
            if result["status"] == "failed":
                failures.append(result)
            elif time.monotonic() - written >= RESULTS_EVERY_S:
                write_results(outdir)
                written = time.monotonic()
            if progress:
                progress(done, len(pending), result)
        write_results(outdir)
    after = state(outdir, planned)
    return {"planned": len(planned), "finished_before": len(before.finished), "ran": len(pending),
            "finished": len(after.finished), "failed": failures}
