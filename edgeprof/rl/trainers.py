"""The registry of trainers: every learning method of every system (`edgeprof train --list`).

A trainer module declares its methods with `register_trainer` when imported; the built-in modules are imported
the first time a trainer is looked up or listed, other packages' through the `edgeprof.plugins` entry points
(`sim.systems`). `train`, `evaluate` and `plot` dispatch on a run's algorithm through this registry, and the
run folder (`rl.runs`) is shared by every trainer.

What a trainer provides (`TrainerInfo`):

- `make_config(**settings)`: its settings dataclass (fields `seed`, `iterations`, `checkpoint_every` at least),
  validated; `config_from_record(dict)` rebuilds it from a run's `config.json`;
- `hyperparameters`: the settings `--hparam NAME=VALUE` may change (`rl.hyperparameters.parse`);
- `make_trainer(config, scenario, workload)`: an object with `iteration`, `run_iteration() -> log row` and
  `components()` (what a checkpoint holds: objects with `state_dict`/`load_state_dict`);
- `log_columns` (the log's columns) and `timing_columns` (wall-clock columns a resumed run does not repeat);
- `make_policy(run, workload, draw)`: the trained policies as a `sim.evaluation.MakePolicy`, greedy except the
  action layers in `draw` (`layers`), which draw as in training;
- `panels`: the training curves `edgeprof plot` draws; `summary(row)`: one line about a log row.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.sim.systems import load_plugins


@dataclass(frozen=True)
class Panel:
    """One training-curve panel: a log column, its title, a log scale, and the log column that holds a limit to
    draw as a dashed line (`limit_label` names it)."""

    column: str
    title: str
    log_scale: bool = False
    limit_column: str | None = None
    limit_label: str = "limit"


@dataclass(frozen=True)
class TrainerInfo:
    """A learning method of one system (the module docstring lists what each field does)."""

    name: str
    system: str
    description: str
    make_config: Callable[..., Any]
    config_from_record: Callable[[dict[str, Any]], Any]
    hyperparameters: Callable[[list[str]], dict[str, Any]]
    make_trainer: Callable[[Any, Any, Any], Any]
    log_columns: tuple[str, ...]
    timing_columns: tuple[str, ...]
    make_policy: Callable[[Any, Any, tuple[str, ...]], Callable[[Any, int], Any]]
    panels: tuple[Panel, ...]
    summary: Callable[[dict[str, Any]], str]
    layers: tuple[str, ...] = ()


_BUILTIN_MODULES = ("edgeprof.rl.hc_mappo_l", "edgeprof.rl.foci", "edgeprof.rl.cerl", "edgeprof.rl.m2appo",
                    "edgeprof.rl.madqn")
_REGISTERED: dict[str, TrainerInfo] = {}
_builtins_loaded = False


def register_trainer(info: TrainerInfo) -> TrainerInfo:
    """Make `info` known to `train`, `evaluate` and `plot` (a name may be registered once)."""
    existing = _REGISTERED.get(info.name)
    if existing is not None and existing is not info:
        raise ValueError(f"a trainer named {info.name!r} is already registered")
    _REGISTERED[info.name] = info
    return info


def unregister_trainer(name: str) -> None:
    """Forget a trainer (tests register toy trainers and clean up after themselves)."""
    _REGISTERED.pop(name, None)


def _load_all() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
    load_plugins()


def trainers(system: str | None = None) -> dict[str, TrainerInfo]:
    """Every trainer by name (of `system` only, when given)."""
    _load_all()
    return {name: info for name, info in _REGISTERED.items() if system is None or info.system == system}


def get_trainer(name: str) -> TrainerInfo:
    """The trainer called `name`; an unknown name is refused with the known ones."""
    known = trainers()
    if name not in known:
        raise EdgeprofError(f"unknown algorithm {name!r}: use one of {', '.join(known)} (`edgeprof train --list`)")
    return known[name]
