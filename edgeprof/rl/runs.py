"""Training runs on disk, for every trainer: RUNDIR/config.json, RUNDIR/log.csv, RUNDIR/checkpoints/latest.pt.

`config.json` (format `edgeprof.rl.run/1`) records the trainer's configuration (whose `algorithm` names the
trainer), the scenario's system and fields, so `evaluate` and `plot` need nothing but the folder. `train` runs
any registered trainer (`rl.trainers`) into a run folder, locked while it trains (a second process is refused):
a fresh folder is refused if it already holds a run, `resume` continues one trained with the same settings
from its checkpoint and repeats an uninterrupted run bit for bit.
`evaluate_run` plays the trained policies through the one evaluation harness (`sim.evaluation`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output, folder_lock, make_parents, read_json, write_json_atomic
from edgeprof.rl.checkpoint import load_checkpoint, save_checkpoint
from edgeprof.rl.trainers import TrainerInfo, get_trainer
from edgeprof.sim.evaluation import load_workload, run_episodes
from edgeprof.sim.scenario import Scenario, scenario_from_fields

RUN_FORMAT = "edgeprof.rl.run/1"
RESUMABLE_CHANGES = {"iterations", "checkpoint_every"}  # a resumed run may go further and checkpoint at another pace


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "latest.pt"


@dataclass(frozen=True)
class Run:
    """A run folder's record: its trainer, configuration and scenario."""

    path: Path
    trainer: TrainerInfo
    config: Any
    scenario: Scenario
    scenario_name: str

    @property
    def algorithm(self) -> str:
        return self.trainer.name

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)


def _record(config: Any, scenario: Scenario, scenario_name: str) -> dict[str, Any]:
    return {"format": RUN_FORMAT, "system": scenario.system_name, "config": asdict(config),
            "scenario_name": scenario_name, "scenario": scenario.fields}


def load_run(rundir: str | Path) -> Run:
    """The record of a training run folder."""
    paths = RunPaths(Path(rundir))
    if not paths.config.is_file():
        raise EdgeprofError(f"{rundir} is not a training run (no config.json): train one with `edgeprof train`")
    try:
        record = read_json(paths.config, "run configuration")
        if record.get("format") != RUN_FORMAT:
            raise ValueError(f"its format is {record.get('format')!r}")
        trainer = get_trainer(record["config"]["algorithm"])
        config = trainer.config_from_record(dict(record["config"]))
        scenario = scenario_from_fields(record.get("system", "dpa"), record["scenario"])  # runs before systems: dpa
    except EdgeprofError as error:
        raise EdgeprofError(f"{paths.config}: {error}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise EdgeprofError(f"{paths.config} is not a readable {RUN_FORMAT} run configuration: {error}") from None
    if scenario.system_name != trainer.system:
        raise EdgeprofError(f"{paths.config}: {trainer.name} trains on system {trainer.system}, not "
                            f"{scenario.system_name}")
    return Run(Path(rundir), trainer, config, scenario, record.get("scenario_name", ""))


def _check_resumable(paths: RunPaths, config: Any, scenario: Scenario) -> None:
    if not paths.checkpoint.is_file():
        raise EdgeprofError(f"nothing to resume in {paths.root}: no checkpoint at {paths.checkpoint}")
    stored_run = load_run(paths.root)
    stored, wanted = asdict(stored_run.config), asdict(config)
    changed = sorted(name for name in stored.keys() | wanted.keys()
                     if name not in RESUMABLE_CHANGES and stored.get(name) != wanted.get(name))
    if json.dumps(stored_run.scenario.fields, sort_keys=True) != json.dumps(scenario.fields, sort_keys=True):
        changed.append("scenario")
    if changed:
        raise EdgeprofError(f"{paths.root} was trained with other settings ({', '.join(changed)}): resume with the "
                            "same command line (only --iterations and --checkpoint-every may change)")


def _check_location(paths: RunPaths) -> None:
    if paths.root.exists() and not paths.root.is_dir():
        raise EdgeprofError(f"cannot use {paths.root} as a run directory: it is not a directory")
    make_parents(paths.root, "run folder")


def _check_fresh(paths: RunPaths) -> None:
    if paths.config.exists() or paths.log.exists() or paths.checkpoint.parent.exists():
        raise EdgeprofError(f"{paths.root} already holds a training run: add --resume to continue it, or choose "
                            "another directory")


def _write_log(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


def train(config: Any, scenario: Scenario, workload: Any, rundir: str | Path, resume: bool = False,
          scenario_name: str = "", progress: Callable[[int, int, dict[str, Any]], None] | None = None
          ) -> list[dict[str, Any]]:
    """Train `config.algorithm` into `rundir` until `config.iterations` iterations are done; returns every
    iteration's log row.

    Writes config.json, log.csv (rewritten whole after every iteration) and checkpoints/latest.pt (at the start,
    every `checkpoint_every` iterations and at the end). `resume` continues from the checkpoint: the rows and state
    after it are dropped and recomputed, identically to an uninterrupted run.
    """
    trainer_info = get_trainer(config.algorithm)
    if scenario.system_name != trainer_info.system:
        raise EdgeprofError(f"{trainer_info.name} trains on system {trainer_info.system}; scenario is a "
                            f"{scenario.system_name} scenario")
    paths = RunPaths(Path(rundir))
    _check_location(paths)
    if resume and not paths.root.is_dir():
        raise EdgeprofError(f"nothing to resume in {paths.root}: it does not exist")
    with folder_lock(paths.root, "run folder"):
        if resume:
            _check_resumable(paths, config, scenario)
        else:
            _check_fresh(paths)
        return _train_locked(trainer_info, config, scenario, workload, paths, resume, scenario_name, progress)


def _train_locked(trainer_info: TrainerInfo, config: Any, scenario: Scenario, workload: Any, paths: RunPaths,
                  resume: bool, scenario_name: str, progress: Callable[[int, int, dict[str, Any]], None] | None
                  ) -> list[dict[str, Any]]:
    trainer = trainer_info.make_trainer(config, scenario, workload)
    rows: list[dict[str, Any]] = []
    if resume:
        checkpoint = load_checkpoint(paths.checkpoint, trainer.components())
        trainer.iteration, rows = checkpoint.iteration, list(checkpoint.extra["log"])
    try:
        paths.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgeprofError(f"cannot create {paths.checkpoint.parent}: {error.strerror or error}") from None
    if not resume:  # a run stopped before its first periodic checkpoint resumes from its start
        save_checkpoint(paths.checkpoint, 0, trainer.components(), extra={"log": rows})
    write_json_atomic(paths.config, _record(config, scenario, scenario_name))
    _write_log(paths.log, rows, trainer_info.log_columns)
    while trainer.iteration < config.iterations:
        rows.append(trainer.run_iteration())
        _write_log(paths.log, rows, trainer_info.log_columns)
        if trainer.iteration % config.checkpoint_every == 0 or trainer.iteration == config.iterations:
            save_checkpoint(paths.checkpoint, trainer.iteration, trainer.components(), extra={"log": rows})
        if progress:
            progress(trainer.iteration, config.iterations, rows[-1])
    return rows


def check_layers(trainer: TrainerInfo, layers: Collection[str]) -> None:
    """Refuse action layers the trainer does not have."""
    unknown = sorted(set(layers) - set(trainer.layers))
    if unknown:
        raise EdgeprofError(f"unknown layer(s) {', '.join(unknown)} of {trainer.name}: use "
                            f"{', '.join(trainer.layers) or 'none (it has no separately drawn layers)'}")


def evaluate_run(rundir: str | Path, slots: int, seeds: Sequence[int],
                 progress: Callable[[int, int], None] | None = None, draw: Collection[str] = (),
                 extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The trained policies of `rundir`, greedy except the action layers in `draw`, which draw their actions as
    in training, each episode from its own seed: one row of the system's metrics per seed, as `edgeprof solve`
    gives for a solver (the same seeds give the same episodes)."""
    run = load_run(rundir)
    check_layers(run.trainer, draw)
    workload = load_workload(run.scenario)
    make_policy = run.trainer.make_policy(run, workload, tuple(draw))
    return run_episodes(run.algorithm, run.scenario, workload, make_policy, slots, seeds, progress, extra)
