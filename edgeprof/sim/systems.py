"""The registry of systems: every paper's edge system (and a user's own) is one `System`.

A system declares its scenario sections (typed dataclasses, `sim.fields`), names its default preset, loads its
workload from a scenario, and runs one episode of a policy. Everything that acts in a system registers
elsewhere, downstream: solvers in `edgeprof.optimize.solve`, trainers in `edgeprof.rl.trainers`; the commands
dispatch through these registries, so adding a system touches no command.

Built-in systems are imported on first use. Other packages plug in through the entry-point group
`edgeprof.plugins`: each entry names a module that calls `register_system` (and `register_solver`,
`register_trainer`) when imported; they are loaded the first time a name is not found or the systems are listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeprof.errors import EdgeprofError

PLUGIN_GROUP = "edgeprof.plugins"


@dataclass(frozen=True)
class System:
    """One edge system.

    - `sections`: section name -> frozen dataclass of `sim.fields.declare`d fields, in file order;
    - `default_preset`: the shipped preset `edgeprof train` uses when no scenario is given (None: none ships);
    - `metrics`: what one episode reports, in the order `solve` and `evaluate` print and write them;
    - `bounded_metrics`: metric -> (low, high) where values cannot leave a range (rates);
    - `rate_trials`: rate metric -> the episode result that counts its trials (requests, tasks): the rate is a
      share of them. Rows carry these counts and summaries give such rates a binomial interval
      (`sim.evaluation.metric_interval`); a rate in [0, 1] that is not a share of counted trials (a share of
      total delay) is left out and keeps the clipped Student-t interval;
    - `load_workload(scenario)`: what the episodes need besides the scenario (e.g. a service table);
    - `check(scenario, workload)`: refusals that need several fields or the workload (raise `EdgeprofError`);
    - `run_episode(scenario, workload, make_policy, slots, seed, num_envs, progress)`: one seeded episode of
      the policy `make_policy(env, seed)`, returning at least `metrics`.
    """

    name: str
    description: str
    sections: Mapping[str, type]
    default_preset: str | None
    metrics: tuple[str, ...]
    load_workload: Callable[[Any], Any]
    run_episode: Callable[..., dict[str, Any]]
    check: Callable[[Any, Any], None] | None = None
    bounded_metrics: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    rate_trials: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rate in self.rate_trials:
            if rate not in self.metrics or self.bounded_metrics.get(rate) != (0.0, 1.0):
                raise ValueError(f"system {self.name!r}: rate_trials names {rate!r}, which is not a reported metric "
                                 "bounded to [0, 1]")


_BUILTIN = {"dpa": "edgeprof.sim.dpa", "foci": "edgeprof.sim.foci", "cerl": "edgeprof.sim.cerl",
            "crowd-edge": "edgeprof.sim.crowd_edge"}
_REGISTERED: dict[str, System] = {}
_plugins_loaded = False


def register_system(system: System) -> System:
    """Make `system` known to every command (a name may be registered once)."""
    existing = _REGISTERED.get(system.name)
    if existing is not None and existing is not system:
        raise ValueError(f"a system named {system.name!r} is already registered")
    _REGISTERED[system.name] = system
    return system


def unregister_system(name: str) -> None:
    """Forget a registered system (tests register toy systems and clean up after themselves)."""
    _REGISTERED.pop(name, None)


def load_plugins() -> None:
    """Import every module of the `edgeprof.plugins` entry-point group once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()
        except Exception as error:  # a broken plugin must not take the built-in systems down with it
            raise EdgeprofError(f"the edgeprof plugin {entry.name} ({entry.value}) failed to load: {error}") from None


def system_names() -> list[str]:
    """Every known system, built-in first."""
    load_plugins()
    return [*_BUILTIN, *(name for name in _REGISTERED if name not in _BUILTIN)]


def get_system(name: str) -> System:
    """The system called `name`; unknown names are refused with the known ones."""
    if name not in _REGISTERED and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])  # registers itself
    if name not in _REGISTERED:
        load_plugins()
    if name not in _REGISTERED:
        raise EdgeprofError(f"unknown system {name!r}: known systems are {', '.join(system_names())}")
    return _REGISTERED[name]
