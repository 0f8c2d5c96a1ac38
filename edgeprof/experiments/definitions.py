"""The papers' experiments as definitions: what a figure or table varies, which methods it compares, at what
budget, and the numbers its text gives (`edgeprof experiment list`).

An experiment varies one scenario field over a list of values (the paper's, or a few for the `smoke` budget
that runs on a laptop in minutes) and runs every method (a solver, or a trainer then evaluated) at every value
with every replicate seed. The replicate seed is the episode seed, as in `edgeprof solve`, so every method sees
the same episodes and comparisons are paired; a trainer is trained with the same seed. Where the paper gives a
number its text states, it is kept with the metric and the point it belongs to; elsewhere the report says
"trend only". Cost units differ between the papers and edgeprof (seed 001's cost is not ours: README), so
comparisons are of orderings and ratios.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeprof.errors import EdgeprofError

BUDGETS = ("smoke", "paper")


@dataclass(frozen=True)
class Method:
    """A solver of the system, or a trainer whose run is evaluated greedily and sampled (every action drawn, the
    papers' training-curve reading)."""

    kind: str  # "solver" or "trainer"
    name: str


@dataclass(frozen=True)
class Budget:
    """What one run may cost. `slots`: evaluation slots per episode (a solver's whole episode); trainers also
    get `iterations` with `train_settings` (their configuration's fields); `preset` (None: the experiment's)
    and `overrides` set the system at this budget (a smoke run uses a smaller one); `seeds` replicates unless
    `--seeds` says otherwise."""

    seeds: int
    slots: int
    iterations: int = 0
    train_settings: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperNumber:
    """A number the paper's text gives: `method`'s `metric` at `value` of the varied field (None: every value,
    or the only setting)."""

    method: str
    metric: str
    number: float
    value: Any = None
    note: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    reference: str  # paper and figure
    title: str
    system: str
    preset: str
    vary: str | None  # the scenario field varied (section.field), or None: one setting
    values: Mapping[str, tuple[Any, ...]]  # budget -> the field's values (TOML values)
    methods: tuple[Method, ...]
    metrics: tuple[str, ...]
    budgets: Mapping[str, Budget]
    paper_numbers: tuple[PaperNumber, ...] = ()
    notes: str = ""

    def points(self, budget: str) -> tuple[Any, ...]:
        return self.values.get(budget, (None,)) if self.vary else (None,)


# Seed 001 (HC-MAPPO-L): the learners of Fig. 5 and the optimizers beside them -----------------------------------

LEARNERS = tuple(Method("trainer", name) for name in
                 ("hc-mappo-l", "hc-ippo-l", "heuristic-mappo-l", "h-mappo", "h-ippo"))
OPTIMIZERS = tuple(Method("solver", name) for name in ("primal-dual", "greedy", "edge-only", "local-only"))
SEED_001_METRICS = ("cost", "delay_s", "energy_j", "privacy_cost", "success_rate")
SEED_001_BUDGETS = {
    # the `small` system, two iterations of 12 slots: every code path, in seconds a run
    "smoke": Budget(seeds=2, slots=12, iterations=2, preset="small", overrides=("system.slots_per_deployment=4",),
                    train_settings={"slots_per_iteration": 12, "num_envs": 1}),
    # seed 001 section V-A: 1000 iterations of 200 slots; evaluation on 100 slots
    "paper": Budget(seeds=5, slots=100, iterations=1000, train_settings={"slots_per_iteration": 200,
                                                                        "num_envs": 1}),
}


def _seed_001(name: str, figure: str, title: str, vary: str | None, paper: tuple, smoke: tuple,
              methods: tuple[Method, ...] = LEARNERS + OPTIMIZERS, numbers: tuple[PaperNumber, ...] = (),
              notes: str = "") -> Experiment:
    """A seed 001 experiment: the paper preset at the paper budget, the small preset at the smoke budget."""
    return Experiment(name=name, reference=f"seed 001 (HC-MAPPO-L), {figure}", title=title, system="dpa",
                      preset="paper", vary=vary, values={"paper": paper, "smoke": smoke}, methods=methods,
                      metrics=SEED_001_METRICS, budgets=SEED_001_BUDGETS, paper_numbers=numbers, notes=notes)


EXPERIMENTS: dict[str, Experiment] = {experiment.name: experiment for experiment in (
    _seed_001("seed001-fig4", "Fig. 4", "energy-privacy weight ratio mu_2 / mu_1 (mu_1 = 5)", "cost.mu_energy",
              (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0), (1.0, 5.0, 25.0), methods=(Method("trainer", "hc-mappo-l"),),
              numbers=(PaperNumber("hc-mappo-l", "energy_j", 16.5, 5.0, "15-18 J at r = 1"),
                       PaperNumber("hc-mappo-l", "privacy_cost", 11.0, 5.0, "10-12 at r = 1"))),
    _seed_001("seed001-fig5", "Fig. 5", "training convergence under tau-bar = 3 s", None, (), (),
              numbers=(PaperNumber("hc-mappo-l", "delay_s", 2.74), PaperNumber("hc-ippo-l", "delay_s", 2.65),
                       PaperNumber("heuristic-mappo-l", "delay_s", 2.94),
                       PaperNumber("h-mappo", "delay_s", 4.38), PaperNumber("h-ippo", "delay_s", 4.76),
                       PaperNumber("hc-mappo-l", "cost", 131.35, note="the paper's cost unit, not ours"),
                       PaperNumber("hc-mappo-l", "energy_j", 14.87),
                       PaperNumber("hc-mappo-l", "privacy_cost", 10.09))),
    _seed_001("seed001-fig6", "Fig. 6", "per-user cost rank (share of users for whom each method is cheapest)",
              None, (), (), numbers=(PaperNumber("hc-mappo-l", "lowest_cost_share", 0.54,
                                                 note="about 54% of users incur their lowest cost"),)),
    _seed_001("seed001-fig7", "Fig. 7", "number of users K", "system.num_users", (30, 40, 50, 60, 70), (4, 8),
              notes="The text gives no K range (its Fig. 7 paragraph repeats Fig. 8's): 30..70 around K = 50 is "
                    "ours."),
    _seed_001("seed001-fig8", "Fig. 8", "number of edge servers J", "system.num_servers", (8, 11, 14, 17, 20),
              (2, 3), numbers=(PaperNumber("hc-mappo-l", "energy_j", 19.0, note="about 19 J at every J"),
                               PaperNumber("hc-mappo-l", "privacy_cost", 11.5, note="about 11.5 at every J")),
              notes="Text: hc-mappo-l's cost about 12% below heuristic-mappo-l's and 21% below the unconstrained "
                    "methods'; constrained methods under 3 s, unconstrained above 4.5 s."),
    _seed_001("seed001-fig9", "Figs. 9-10", "services per model", "services.services_per_model", (1, 2, 3, 4, 5),
              (1, 2), numbers=(PaperNumber("hc-mappo-l", "cost", 158.38, 5, "at the most services"),
                               PaperNumber("hc-mappo-l", "success_rate", 0.96, 5, "at the most services"))),
    _seed_001("seed001-fig11", "Fig. 11", "delay limit tau-bar (s)", "system.delay_constraint_s",
              (2.0, 2.5, 3.0, 3.5, 4.0), (2.0, 2.5, 3.0, 3.5, 4.0),
              notes="Text: hc-ippo-l over the stricter limits by 12-29%; hc-mappo-l under all; its energy +18% "
                    "from 2.0 to 3.5 s."),
    _seed_001("seed001-fig12", "Fig. 12", "user compute (GFLOP/s range)", "users.compute_gflops",
              ([10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [70.0, 80.0]), ([10.0, 20.0], [70.0, 80.0]),
              numbers=(PaperNumber("hc-mappo-l", "energy_j", 12.2, [10.0, 20.0]),
                       PaperNumber("hc-mappo-l", "energy_j", 19.7, [70.0, 80.0]),
                       PaperNumber("hc-mappo-l", "privacy_cost", 18.7, [10.0, 20.0]),
                       PaperNumber("hc-mappo-l", "privacy_cost", 12.1, [70.0, 80.0]))),
    _seed_001("seed001-fig13", "Fig. 13", "server compute (GFLOP/s range)", "servers.compute_gflops",
              ([400.0, 600.0], [1000.0, 1500.0], [2000.0, 3000.0]), ([400.0, 600.0], [2000.0, 3000.0]),
              notes="The text gives the span 400..3000 GFLOP/s, not the steps: ours. Text: hc-mappo-l's cost "
                    "changes by 1.2% over the span."),
    _seed_001("seed001-fig14", "Fig. 14", "server storage (GB range)", "servers.storage_gb",
              ([1.8, 2.2], [2.8, 3.2], [3.3, 3.7], [4.8, 5.2]), ([0.11, 0.13], [0.14, 0.16]),
              numbers=(PaperNumber("hc-mappo-l", "success_rate", 0.94, [1.8, 2.2]),
                       PaperNumber("hc-mappo-l", "success_rate", 0.99, [4.8, 5.2])),
              notes="The smoke values are the small system's storage (its models are smaller). Text: "
                    "hc-mappo-l's cost -7.8%, greedy's -22.9% from the least to the most storage."),
)}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise EdgeprofError(f"unknown experiment {name!r}: `edgeprof experiment list` shows them")
    return EXPERIMENTS[name]


def check_budget(experiment: Experiment, budget: str) -> Budget:
    if budget not in experiment.budgets:
        raise EdgeprofError(f"{experiment.name} has no budget {budget!r}: use one of {', '.join(experiment.budgets)}")
    return experiment.budgets[budget]
