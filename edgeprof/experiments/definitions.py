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
    papers' training-curve reading), and with only its deployment drawn where it has that layer (`sweep`)."""

    kind: str  # "solver" or "trainer"
    name: str


@dataclass(frozen=True)
class Budget:
    """What one run may cost. `slots`: evaluation slots per episode (a solver's whole episode); trainers also
    get `iterations` with `train_settings` (their configuration's fields) and `hyperparameters` (NAME=VALUE, as
    `edgeprof train --hparam`); `preset` (None: the experiment's) and `overrides` set the system at this budget
    (a smoke run uses a smaller one); `seeds` replicates unless `--seeds` says otherwise."""

    seeds: int
    slots: int
    iterations: int = 0
    train_settings: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    hyperparameters: tuple[str, ...] = ()


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
    references: tuple[str, ...] = ()  # methods the report takes paired differences to (same seed, mode, value)

    def points(self, budget: str) -> tuple[Any, ...]:
        return self.values.get(budget, (None,)) if self.vary else (None,)


# Seed 001 (HC-MAPPO-L): the learners of Fig. 5 and the optimizers beside them -----------------------------------

LEARNERS = tuple(Method("trainer", name) for name in
                 ("hc-mappo-l", "hc-ippo-l", "heuristic-mappo-l", "h-mappo", "h-ippo"))
OPTIMIZERS = tuple(Method("solver", name) for name in ("primal-dual", "greedy", "edge-only", "local-only"))
# controls beside Fig. 5's methods: hc-mappo-l over an untrained, always drawn deployment; random actions
RANDOM_FILL, RANDOM = Method("trainer", "random-fill"), Method("solver", "random")
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
              notes: str = "", references: tuple[str, ...] = ()) -> Experiment:
    """A seed 001 experiment: the paper preset at the paper budget, the small preset at the smoke budget."""
    return Experiment(name=name, reference=f"seed 001 (HC-MAPPO-L), {figure}", title=title, system="dpa",
                      preset="paper", vary=vary, values={"paper": paper, "smoke": smoke}, methods=methods,
                      metrics=SEED_001_METRICS, budgets=SEED_001_BUDGETS, paper_numbers=numbers, notes=notes,
                      references=references)


EXPERIMENTS: dict[str, Experiment] = {experiment.name: experiment for experiment in (
    _seed_001("seed001-fig4", "Fig. 4", "energy-privacy weight ratio mu_2 / mu_1 (mu_1 = 5)", "cost.mu_energy",
              (1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0), (1.0, 5.0, 25.0), methods=(Method("trainer", "hc-mappo-l"),),
              numbers=(PaperNumber("hc-mappo-l", "energy_j", 16.5, 5.0, "15-18 J at r = 1"),
                       PaperNumber("hc-mappo-l", "privacy_cost", 11.0, 5.0, "10-12 at r = 1"))),
    _seed_001("seed001-fig5", "Fig. 5", "training convergence under tau-bar = 3 s", None, (), (),
              methods=LEARNERS + (RANDOM_FILL,) + OPTIMIZERS + (RANDOM,), references=("hc-mappo-l", "random-fill"),
              notes="Controls beside the paper's methods: random-fill (is the learned deployment better than a "
                    "random fill?) and the random solver.",
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


# Seed 002 (FOCI): Table 1 and the Fig. 4 ablation --------------------------------------------------------------

SEED_002_METRICS = ("latency_ms", "max_latency_ms", "energy_mj", "max_energy_mj", "switches_per_hour", "qos_cost",
                    "max_qos_cost", "violation_rate", "offload_rate")
SEED_002_BUDGETS = {
    # foci-small (24 devices, 3 edges), two 24-step episodes: every code path in seconds a run
    "smoke": Budget(seeds=2, slots=24, iterations=2, preset="foci-small",
                    train_settings={"slots_per_iteration": 24, "learning_starts": 50}),
    # App. B.3: 1-h episodes of 240 steps; 300 episodes is ours (epsilon 0.99^300 = 0.05)
    "paper": Budget(seeds=5, slots=240, iterations=300, train_settings={"slots_per_iteration": 240}),
}
# Table 1 (ALP, NSG, IQL, AMFQ, FOCI): avg/max latency ms, avg/max energy mJ, avg switch cost, avg/max reward
TABLE_1 = {
    "alp": {"latency_ms": 34.20, "max_latency_ms": 39.51, "energy_mj": 60.24, "max_energy_mj": 71.44,
            "switches": None, "reward": 1.248, "max_reward": 1.417},
    "nsg": {"latency_ms": 32.77, "max_latency_ms": 62.72, "energy_mj": 22.16, "max_energy_mj": 62.55,
            "switches": 2.88, "reward": 1.157, "max_reward": 2.193},
    "iql": {"latency_ms": 27.83, "max_latency_ms": 30.08, "energy_mj": 23.95, "max_energy_mj": 38.48,
            "switches": 3.06, "reward": 0.988, "max_reward": 1.065},
    "amfq": {"latency_ms": 27.33, "max_latency_ms": 27.96, "energy_mj": 25.87, "max_energy_mj": 35.16,
             "switches": 3.35, "reward": 0.971, "max_reward": 0.997},
    "foci": {"latency_ms": 26.82, "max_latency_ms": 27.20, "energy_mj": 24.50, "max_energy_mj": 33.50,
             "switches": 1.52, "reward": 0.953, "max_reward": 0.973},
}


def _table_1_numbers() -> tuple[PaperNumber, ...]:
    """Table 1's numbers in our metrics' names; its reward row is not our cost's unit (near 1 from unit weights
    on ms and mJ cannot be), so it is left out."""
    names = {"latency_ms": "latency_ms", "max_latency_ms": "max_latency_ms", "energy_mj": "energy_mj",
             "max_energy_mj": "max_energy_mj", "switches": "switches_per_hour"}
    return tuple(PaperNumber(method, names[key], number, note="switches: unit not given" if key == "switches" else "")
                 for method, row in TABLE_1.items() for key, number in row.items()
                 if key in names and number is not None)


def _seed_002(name: str, figure: str, title: str, solvers: tuple[str, ...], trainers: tuple[str, ...],
              numbers: tuple[PaperNumber, ...] = (), notes: str = "") -> Experiment:
    methods = tuple(Method("solver", n) for n in solvers) + tuple(Method("trainer", n) for n in trainers)
    return Experiment(name=name, reference=f"seed 002 (FOCI), {figure}", title=title, system="foci", preset="foci",
                      vary=None, values={}, methods=methods, metrics=SEED_002_METRICS, budgets=SEED_002_BUDGETS,
                      paper_numbers=numbers, notes=notes)


EXPERIMENTS.update({experiment.name: experiment for experiment in (
    _seed_002("seed002-table1", "Table 1", "latency, energy and switches of every method (M = 240, N = 11)",
              ("random", "alp", "nsg"), ("iql", "amfq", "foci"), _table_1_numbers(),
              notes="Claims: FOCI's max latency -56% and max energy -46% against NSG, switch cost halved against "
                    "IQL. The paper's reward row (near 1) cannot come from unit weights on SI units: our qos_cost "
                    "is -R in SI units, compared by ordering only."),
    _seed_002("seed002-fig4", "Fig. 4", "ablation: oracle-shaped reward (OFR) and competitor records (COA)",
              ("nsg",), ("foci-ofr", "foci-coa", "foci"),
              notes="The figure gives bars, not numbers: trend only (FOCI lowest max latency and energy)."),
)})


# Seed 003 (CERL): Fig. 4 (cost after training), Fig. 6 (collaborations), Fig. 7 (against the offloading schemes) ---

SEED_003_METRICS = ("cost", "cost_per_task", "completion_rate", "collaborations", "objective")


def _seed_003_budgets(devices: int | None = None) -> dict[str, Budget]:
    """cerl-small (N = 5) for a smoke run; the paper's 200 epochs (sec. 5.2.1) otherwise, at N = `devices`."""
    return {"smoke": Budget(seeds=2, slots=10, iterations=2, preset="cerl-small",
                            train_settings={"slots_per_iteration": 5, "learning_starts": 16}),
            "paper": Budget(seeds=5, slots=20, iterations=200, train_settings={"slots_per_iteration": 20},
                            overrides=(f"system.num_devices={devices}",) if devices else ())}


_CERL_LEARNERS = tuple(Method("trainer", name) for name in ("cerl", "d2qn", "ddqn"))
_CERL_SCHEMES = tuple(Method("solver", name) for name in ("lc", "ec", "random"))


def _seed_003(name: str, figure: str, title: str, vary: str | None, paper: tuple, smoke: tuple,
              methods: tuple[Method, ...], budgets: dict[str, Budget], numbers: tuple[PaperNumber, ...] = (),
              notes: str = "") -> Experiment:
    return Experiment(name=name, reference=f"seed 003 (CERL), {figure}", title=title, system="cerl", preset="cerl",
                      vary=vary, values={"paper": paper, "smoke": smoke}, methods=methods, metrics=SEED_003_METRICS,
                      budgets=budgets, paper_numbers=numbers, notes=notes)


# Seed 004 (mixed MAPPO): Table III per case, Fig. 4 (test delay) ------------------------------------------------

SEED_004_METRICS = ("ad_s_per_mb", "anlr", "e2e", "e2d", "delay_s", "objective", "edge_share")
SEED_004_BUDGETS = {
    # crowd-edge-small (7 MDs), two iterations of 10 slots
    "smoke": Budget(seeds=2, slots=20, iterations=2, preset="crowd-edge-small",
                    train_settings={"slots_per_iteration": 10, "num_envs": 1}),
    # sec. VI: 50,000 s of training data (500 iterations of 50 slots in 2 environments); tested on 500 slots
    "paper": Budget(seeds=5, slots=500, iterations=500, train_settings={"slots_per_iteration": 50, "num_envs": 2}),
}
TABLE_III = {  # AD, ANLR, E2E, E2D per case (the paper's units and capacities: compare orderings)
    "I": {"madqn": (220, 5190.76, 0.06889, 0.949), "maa3c": (1.215, 0.01887, 0.11644, 0.77633),
          "mappo": (1.18, 3.3796, 0.005, 0.05833), "m2appo": (1.08, 3.56947, 0.005, 0.10286)},
    "II": {"madqn": (26.3, 5839.45, 58.26, 0.32), "maa3c": (1.185, 0.013, 0.14756, 0.71667),
           "mappo": (0.84286, 2.20613, 0.01, 0.07867), "m2appo": (0.84286, 1.89587, 0.005, 0.08867)},
    "III": {"madqn": (1.3673, 289.27, 0.13178, 0.65267), "maa3c": (1.18666, 0.001, 0.16533, 0.60917),
            "mappo": (1.114173, 0.3953, 0.005, 0.0515), "m2appo": (1.01048, 0.0307, 0.005, 0.08883)},
}
_CROWD_LEARNERS = tuple(Method("trainer", name) for name in ("madqn", "maa3c", "mappo", "m2appo"))
_CROWD_SOLVERS = tuple(Method("solver", name) for name in ("dpp", "random"))


def _seed_004(name: str, figure: str, title: str, vary: str | None, values: tuple, numbers=(), notes="",
              methods: tuple[Method, ...] = _CROWD_LEARNERS + _CROWD_SOLVERS) -> Experiment:
    return Experiment(name=name, reference=f"seed 004 (mixed MAPPO), {figure}", title=title, system="crowd-edge",
                      preset="crowd-edge", vary=vary, values={"paper": values, "smoke": values}, methods=methods,
                      metrics=SEED_004_METRICS, budgets=SEED_004_BUDGETS, paper_numbers=numbers, notes=notes)


EXPERIMENTS.update({experiment.name: experiment for experiment in (
    _seed_003("seed003-fig4", "Fig. 4", "cost after training, CERL against D2QN and DDQN", "system.num_devices",
              (10, 30, 50), (5,), _CERL_LEARNERS, _seed_003_budgets(),
              numbers=(PaperNumber("cerl", "cost", 2.0, 10, "read from the figure: about 2"),
                       PaperNumber("d2qn", "cost", 5.0, 10, "about 5"),
                       PaperNumber("ddqn", "cost", 7.0, 10, "about 7"),
                       PaperNumber("cerl", "cost", 40.0, 50, "about 40"),
                       PaperNumber("d2qn", "cost", 70.0, 50, "about 70"),
                       PaperNumber("ddqn", "cost", 70.0, 50, "about 70")),
              notes="Units unknown: compare orderings and ratios (paper: CERL < D2QN < DDQN). The figure is per "
                    "epoch; `edgeprof plot` draws the runs' curves (train/ in each run folder)."),
    _seed_003("seed003-fig6", "Fig. 6", "collaborations between nodes (N = 30)", None, (), (),
              _CERL_LEARNERS + _CERL_SCHEMES, _seed_003_budgets(30),
              notes="The figure gives bars, not numbers: trend only (CERL collaborates most, at the lowest cost)."),
    _seed_003("seed003-fig7", "Fig. 7", "cost and completion against the offloading schemes",
              "system.num_devices", (10, 20, 30, 40, 50), (3, 5), (Method("trainer", "cerl"),) + _CERL_SCHEMES,
              _seed_003_budgets(), numbers=(PaperNumber("cerl", "completion_rate", 1.0, note="CERL completes every "
                                                                                             "task"),),
              notes="Text: CERL's cost -65.7% and completion +57.5% against LC."),
    _seed_004("seed004-table3", "Table III", "AD, ANLR, E2E and E2D per traffic case", "tasks.case",
              ("I", "II", "III"),
              numbers=tuple(PaperNumber(method, metric, number, case)
                            for case, rows in TABLE_III.items() for method, numbers in rows.items()
                            for metric, number in zip(SEED_004_METRICS[:4], numbers, strict=True)),
              notes="Units and capacities differ from the paper's: compare orderings (paper: M2APPO lowest AD in "
                    "every case, MADQN highest)."),
    _seed_004("seed004-fig4", "Fig. 4", "users' end-to-end delay at test (case I)", None, (),
              notes="The figure gives curves, not numbers: trend only (M2APPO lowest). Fig. 3 (training curves) "
                    "and Fig. 5 (critic loss) are the trainers' logs: `edgeprof plot` on the runs' train/ folders."),
)})


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise EdgeprofError(f"unknown experiment {name!r}: `edgeprof experiment list` shows them")
    return EXPERIMENTS[name]


def check_budget(experiment: Experiment, budget: str) -> Budget:
    if budget not in experiment.budgets:
        raise EdgeprofError(f"{experiment.name} has no budget {budget!r}: use one of {', '.join(experiment.budgets)}")
    return experiment.budgets[budget]
