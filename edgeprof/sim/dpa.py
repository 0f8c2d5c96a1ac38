"""Seed 001's system, `dpa`: deployment, partition and allocation at the edge (HC-MAPPO-L's paper).

J edge servers and K users; every delta-T slots each server chooses which of the I services it holds (storage,
C7); every slot each user's request picks a server and a partition point, and each server shares its compute
and bandwidth among its users (C5, C6). Scores: delay (eq. 4-5), energy (eq. 6-9), privacy cost (eq. 10-11) and
their weighted cost (eq. 12) under a long-term delay limit tau-bar. The episode itself is `sim.env.EdgeSystem`
(batched core: `sim.core`, equations: `sim.model`); the policy protocol is `sim.rollout.Policy`.

The fields below are declared once; the `paper` preset is seed 001's Table I plus the public configuration's
values (research/hcmappo.md section 2.2), `small` a system small enough for exact solvers. Where the paper is
silent, the choice is a named field and its documentation says so. Upper limits are far beyond any real
system; they keep the arithmetic finite (a J/FLOP of 1e300 overflows the energy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.sim.fields import IntRange, Names, Paths, Range, declare
from edgeprof.sim.systems import System, register_system

MAX_ENTRIES = 200_000_000  # envs x users x servers x services beyond this do not fit in this simulator's arrays


@dataclass(frozen=True)
class SystemFields:
    """The system's size, placement and time scales."""

    num_servers: int = declare("J, edge servers", low=1, high=10_000)
    num_users: int = declare("K, users", low=1, high=1_000_000)
    area_m: float = declare("side of the square area, metres", above=0, high=1e7)
    server_placement: str = declare("grid (the most even grid of J points, cell centres) or random",
                                    choices=("grid", "random"))
    user_placement: str = declare("random (uniform over the area)", choices=("random",))
    slots_per_deployment: int = declare("delta-T: slots between deployment decisions", low=1)
    delay_constraint_s: float = declare("tau-bar: the long-term average delay limit (C8), seconds", above=0,
                                        high=1e6)
    failure_delay_s: float = declare(
        "tau_fail: the delay charged to a request whose service is not deployed at its server (eq. 5). The paper "
        "says 'much larger than tau-bar'; the public configuration used tau-bar itself, which hides failures "
        "from the constraint; default 10 x tau-bar", above=0, high=1e9)
    request_deadline_s: float = declare(
        "a request whose delay (eq. 4) would exceed this fails, and counts as an unhosted one: tau_fail of delay, "
        "R_fail as the user's reward, no energy or privacy cost (ours: seed 001's eq. 5 fails only requests whose "
        "service is not at their server, so one request over a starved link could take hours and outweigh "
        "thousands of others in the mean delay; 1e12 turns it off)", above=0, high=1e12)


@dataclass(frozen=True)
class ServicesFields:
    """The services: base models from profiles, how often each is offered, and the requests."""

    models: Names = declare("base models; each must have a profile (shipped, or in services.profiles)",
                            unique=True)
    services_per_model: int = declare(
        "each base model is offered as this many distinct services (I = models x this)", low=1)
    zipf_exponent: float = declare("service popularity: P(rank r) proportional to r^-s", high=100)
    batch_range: IntRange = declare("D_in: samples per request, an integer drawn uniformly from this range",
                                    low=1, high=1_000_000)
    profiles: Paths = declare(
        "model name -> path of an edgeprof.profile/1 file with leakage, replacing the shipped one")


@dataclass(frozen=True)
class UsersFields:
    """The users' devices, drawn uniformly from each range."""

    compute_gflops: Range = declare("f_k, uniform range, GFLOP/s", above=0, high=1e9)
    storage_gb: Range = declare("user storage for the prefix cache, uniform range, GB (1e9 bytes)", high=1e6)
    energy_per_flop_j: Range = declare("epsilon_k, uniform range, J/FLOP", high=1e-3)
    tx_power_dbm: Range = declare("P_k, uniform range, dBm", low=-100, high=100)
    privacy_preference: Range = declare("Pre_k, uniform range in [0, 1]", high=1)
    prefix_cache: bool = declare(
        "keep downloaded prefix parameters in user storage (LRU by model): a later request of the same model "
        "downloads only the layers not yet held")


@dataclass(frozen=True)
class ServersFields:
    """The edge servers, drawn uniformly from each range."""

    compute_gflops: Range = declare("f_j, uniform range, GFLOP/s", above=0, high=1e9)
    storage_gb: Range = declare("S_j for deployed models (C7), uniform range, GB", high=1e6)
    bandwidth_mhz: Range = declare("B_j shared by its users (C6), uniform range, MHz", above=0, high=1e6)
    tx_power_dbm: Range = declare("P_j, uniform range, dBm", low=-100, high=100)
    cloud_rate_mbps: Range = declare("R_C2E: cloud-to-edge model download rate (eq. 23), uniform range, Mbit/s",
                                     above=0, high=1e9)


@dataclass(frozen=True)
class RadioFields:
    """The wireless channel between users and servers."""

    reference_path_loss_db: float = declare("path loss at 1 m, dB", low=-300, high=300)
    path_loss_exponent: float = declare("PL(d) = PL(1 m) + 10 n log10(d / 1 m)", above=0, high=10)
    shadowing_db: float = declare("log-normal shadowing standard deviation, dB", low=0, high=100)
    shadowing: str = declare("per_slot (redrawn every slot: quasi-static within a slot) or per_episode",
                             choices=("per_slot", "per_episode"))
    noise_dbm_per_hz: float = declare("thermal noise density N0, dBm/Hz", low=-300, high=0)
    noise_figure_db: float = declare("receiver noise figure, dB (noise power = N0 x B x NF)", low=0, high=100)
    carrier_ghz: float = declare("carrier frequency (recorded; the path-loss model does not use it)", above=0,
                                 high=1000)
    min_distance_m: float = declare("distances below this are clamped (the path-loss model diverges at 0)",
                                    above=0, high=1e6)


@dataclass(frozen=True)
class PrivacyFields:
    """Eq. 10's privacy cost."""

    alpha1: float = declare("alpha_1 of eq. 10", high=1e6)
    alpha2: float = declare("alpha_2 of eq. 10", high=1e6)
    data_unit_bytes: float = declare(
        "D_raw in eq. 10 is counted in units of this many bytes (1e6: megabytes), which puts privacy cost on the "
        "scale of energy in joules", above=0, high=1e15)


@dataclass(frozen=True)
class CostFields:
    """The weights of the cost (eq. 12) and of the rewards (eq. 24-25)."""

    mu_privacy: float = declare("mu_1 of eq. 12", high=1e9)
    mu_energy: float = declare("mu_2 of eq. 12", high=1e9)
    mu_delay_violation: float = declare("mu_3 of eq. 25: user reward per second of delay above tau-bar", high=1e9)
    failure_reward: float = declare(
        "R_fail of eq. 25: a user's reward when its service is not at its server", low=-1e9, high=0)
    mu_hit: float = declare(
        "mu_hit of eq. 24 (an interval's deployment reward: its hits minus the migration at its start)", high=1e9)
    mu_migration: float = declare("mu_mig of eq. 24 (every tuned public run used 0.02)", high=1e9)


DELAY_DISTRIBUTION = ("delay_median_s", "delay_p99_s", "delay_max_s", "delay_top1pct_share")
REPORTED = ("objective", "cost", "delay_s", "energy_j", "privacy_cost", "success_rate", *DELAY_DISTRIBUTION)


def load_workload(scenario: Any) -> Any:
    """The scenario's service table (profiles with leakage at every interior point: eq. 10 needs it)."""
    from edgeprof.sim.workload import load_service_table

    return load_service_table(scenario)


def check(scenario: Any, table: Any) -> None:
    """Refuse a system too big for memory, or one where no server could ever hold any model (C7): every
    request would fail."""
    entries = scenario["system.num_users"] * scenario["system.num_servers"] * max(table.num_services, 1)
    if entries > MAX_ENTRIES:
        raise EdgeprofError(f"scenario too large: users x servers x services = {entries:,} exceeds "
                            f"{MAX_ENTRIES:,}; this simulator keeps arrays of that size per environment")
    largest_storage = scenario.si_range("servers.storage_gb")[1]
    smallest = int(table.model_bytes.argmin())
    if table.model_bytes[smallest] > largest_storage:
        name = table.base_names[table.base_model[smallest]]
        raise EdgeprofError(f"infeasible scenario: servers.storage_gb is at most {largest_storage / 1e9:.3g} GB, "
                            f"below the smallest model ({name}, {table.model_bytes[smallest] / 1e9:.3g} GB): no "
                            "service can ever be deployed")


def run_episode(scenario: Any, table: Any, make_policy: Callable[[Any, int], Any], slots: int, seed: int,
                num_envs: int = 1, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One episode of `slots` slots of `num_envs` environments drawn from `seed`, acted by
    `make_policy(system, seed)` (a `sim.rollout.Policy`): `sim.rollout.run_policy`'s metrics."""
    from edgeprof.sim.env import EdgeSystem
    from edgeprof.sim.rollout import run_policy

    system = EdgeSystem(scenario, table, num_envs=num_envs, seed=seed)
    return run_policy(system, make_policy(system, seed), slots, progress)


SYSTEM = register_system(System(
    name="dpa",
    description="Seed 001 (HC-MAPPO-L): model deployment, user association, partition points and per-server "
                "compute and bandwidth allocation under a long-term delay limit.",
    sections={"system": SystemFields, "services": ServicesFields, "users": UsersFields, "servers": ServersFields,
              "radio": RadioFields, "privacy": PrivacyFields, "cost": CostFields},
    default_preset="paper",
    metrics=REPORTED,
    bounded_metrics={**dict.fromkeys(("objective", "cost", "delay_s", "energy_j", "privacy_cost",
                                      "delay_median_s", "delay_p99_s", "delay_max_s"), (0.0, math.inf)),
                     "success_rate": (0.0, 1.0), "delay_top1pct_share": (0.0, 1.0)},
    rate_trials={"success_rate": "requests"},  # users x slots x environments
    load_workload=load_workload,
    run_episode=run_episode,
    check=check,
))
