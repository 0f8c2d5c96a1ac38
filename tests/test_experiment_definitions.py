"""Every experiment definition names things that exist: its system's presets, solvers, trainers and metrics."""

from __future__ import annotations

import pytest

from edgeprof.experiments.definitions import BUDGETS, EXPERIMENTS
from edgeprof.optimize.solve import solvers_for
from edgeprof.rl.trainers import trainers
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.systems import get_system


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_a_definition_names_its_systems_presets_methods_and_metrics(name):
    experiment = EXPERIMENTS[name]
    system = get_system(experiment.system)
    assert set(experiment.metrics) <= set(system.metrics) | {"lowest_cost_share"}, experiment.metrics
    for budget in BUDGETS:
        preset = experiment.budgets[budget].preset or experiment.preset
        assert load_scenario(preset, list(experiment.budgets[budget].overrides)).system_name == experiment.system
    for method in experiment.methods:
        registry = solvers_for(experiment.system) if method.kind == "solver" else trainers(experiment.system)
        assert method.name in registry, f"{name}: {method.kind} {method.name} is not one of {sorted(registry)}"
    assert set(experiment.references) <= {method.name for method in experiment.methods}
    for number in experiment.paper_numbers:
        assert number.method in {method.name for method in experiment.methods}
        assert number.metric in experiment.metrics or number.metric == "lowest_cost_share"
