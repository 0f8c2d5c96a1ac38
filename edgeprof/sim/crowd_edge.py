"""Seed 004's system, `crowd-edge`: mobile devices (MDs) offload tasks to edge servers or to nearby MDs over
capacitated links, with compute backlogs and link virtual queues (mixed MAPPO's paper, sections III-V).

The graph G(V, E) (`Layout`, fixed for a scenario): B base stations (BSs) along the long side of the area, each
with an edge server; the BSs are wired (`network.wired_links`, a full mesh by default); MD clusters are placed
uniformly in the area and each attaches to its nearest BS (its cell); every MD has one wireless link to its BS.
An optional cloud node sits behind a backbone link per BS (Fig. 6). Every MD is an agent that generates tasks
and serves others: a task may go to any reachable edge server, to the cloud, or to an available MD of its own
cell (itself included: local processing, no link).

Units are the paper's, because eq. 7's cost and eq. 13's reward add them up: work in gigacycles (1 GHz x 1 s,
footnote 3), speeds in GHz, data in megabytes, link capacities in MB/s (the fields' Mbit/s / 8), time in
seconds. Each equation is one function below:

- eq. 2 with Neely's [.]^+ (eq. 19 flips eq. 2's sign and neither clips at 0): V_l(t+1) = [V_l(t) +
  sum_{i in H_l(t)} x_i(t) dt - c_l dt]^+, where x_i(t) dt is the data task i offers link l during slot t;
- eq. 4 with [.]^+: Q_u(t+1) = [Q_u(t) + sum_{i in A_u(t)} s_i - F_u(t) dt]^+;
- eq. 5: P_{i,u} = (Q_u + s_i) / F_u; the tasks placed on u in the same slot join its backlog one after
  another in a random order, so Q_u includes the slot's earlier arrivals (all at once they would all see the
  same empty queue);
- eq. 6: E_i = P_{i,u} + o_i / x-bar_i, with x-bar_i = o_i / tau_i the task's average rate over its transfer
  time tau_i = D_i + its own transmission: eq. 14's D_i = sum_{l in U_i} V_l / c_l drains the data already
  queued on its links; then, by default (`links.rate_levels = 0`), the task offers all its data in its slot
  (x_i = o_i / dt) and each link is processor-shared among the tasks that use it in that slot (the slowest of
  its links sets its time); with n >= 1 rate levels the task picks x_i = c_bottleneck k / n and sends o_i / x_i
  seconds, offering x_i dt to its links in each slot of its transfer;
- eq. 7: alpha E_i + beta R_u s_i; eq. 12: V sum_i (alpha E_i + beta R_u s_i) + sum_l (V_l / c_l)(sum x_i -
  c_l), with the penalty V_i = {c_l} of eq. 22 normalising the drift term; eq. 13: the reward is minus that.
  Split by task (eq. 21-22, sec. V-A) an agent's reward is minus V g_i + D_i x_i of each of its tasks; the
  action-independent -sum_l V_l is all that separates the agents' sum from eq. 13.

Choices where the paper is silent, each a named field (documented in the preset file):

- arrivals: "Poisson lambda1" and "inter-arrival U[5, 20] s" conflict: `tasks.arrivals = "batches"` (default)
  gives each MD a batch of Poisson(lambda1) tasks every U[5, 20] s; `"per_slot"` Poisson(lambda1) tasks every
  slot (the other reading: 12.5x the work, which no capacity the paper suggests keeps stable);
- capacities: edge servers 40 GHz (the paper only says edge >> MD; 20 GHz leaves cases II and III unstable:
  the offered load of each preset is in every episode's `offered_load`), MDs U[1, 2] GHz, available or not by
  a two-state Markov chain (an unavailable MD serves nothing and takes no new task; its backlog waits); fees
  R_edge = 2 R_MD = 0.02 per gigacycle, so that fees break near-ties of delay (at 1 per gigacycle a case-I
  task's fee difference, 24, outweighs 20 s of delay and drift-plus-penalty fills the slow MDs); alpha = beta =
  V = 1; the layout seed (5) puts MDs in every cell;
- an action picks a destination for every task of the agent's slot; the mask allows reachable edges, the cloud
  and available MDs of the own cell.

Metrics of an episode (`run_episode`): AD (s per MB: every task's eq. 6 delay over every task's data), ANLR
(Q_u / F_u over nodes and slots, with an MD's capacity when available, as its F is 0 when not), E2E and E2D
(V_l / c_l over BS-BS and BS-MD links and slots), the mean delay per task, eq. 12's objective per slot, the
compute backlog's growth rate (least-squares slope of sum_u Q_u over the slots, gigacycles per second: ~0 for a
stable system, ~(load - 1) x capacity for an overloaded one), the share of tasks sent to edge servers, and the
scenario's offered load (expected work over expected capacity).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.sim.fields import IntRange, Names, Paths, Range, declare
from edgeprof.sim.model import _time_for
from edgeprof.sim.systems import System, register_system

NAME = "crowd-edge"
CASES = {"I": (1.0, 24.0, 6.0), "II": (6.0, 6.0, 1.0), "III": (12.0, 3.0, 0.5)}  # (lambda1, lambda2, lambda3)
MBIT_PER_MB = 8.0
EDGE, MD, CLOUD = 0, 1, 2  # node kinds
WIRELESS, WIRED, BACKBONE = 0, 1, 2  # link kinds
MAX_LAYOUT_ENTRIES = 50_000_000  # MDs x candidates x path length: about 400 MB per array of the layout


# ---------------------------------------------------------------------------------------------------------------
# Scenario fields


@dataclass(frozen=True)
class NetworkFields:
    """The graph: base stations with edge servers, MD clusters, links (section VI-A)."""

    num_base_stations: int = declare("BSs, each with one edge server, evenly spaced along the area's long side",
                                     low=1, high=64)
    area_m: Range = declare("the area's width and length, metres (300 x 900 in sec. VI-A)", above=0,
                            high=1e7)
    num_clusters: int = declare("MD clusters, placed uniformly in the area; each attaches to its nearest BS",
                                low=1, high=1000)
    mds_per_cluster: IntRange = declare("MDs in a cluster, an integer drawn uniformly from this range (5-10)",
                                        low=1, high=1000)
    layout_seed: int = declare("seed of the cluster positions, sizes and MD capacities: the graph is fixed for a "
                               "scenario, so every episode (and every trained policy) sees the same one")
    wired_links: Names = declare("BS pairs joined by a wire, as \"a-b\" (BS indices from 0); the paper says the BSs "
                                 "are wired, not how: a full mesh by default", unique=True)
    wired_mbps: float = declare("capacity of a BS-BS wire, Mbit/s", above=0, high=1e9)
    wireless_mbps: float = declare("capacity of an MD's wireless link to its BS, Mbit/s (shared by what it sends "
                                   "and what it receives)", above=0, high=1e9)


@dataclass(frozen=True)
class NodesFields:
    """Compute nodes: F_u and the unit fees R_u (not given in the paper)."""

    edge_ghz: float = declare("F of an edge server, GHz. The paper only says edge >> MD; 40 keeps every case "
                              "stable under drift-plus-penalty at the default size (20 does not for II and III)",
                              above=0, high=1e6)
    md_ghz: Range = declare("F of an MD when available, GHz, drawn per MD (fixed with the layout)", above=0,
                             high=1e6)
    md_off_probability: float = declare("per slot, the chance an available MD becomes unavailable (its owner uses "
                                        "it): a two-state Markov chain", high=1)
    md_on_probability: float = declare("per slot, the chance an unavailable MD becomes available again",
                                       above=0, high=1)
    edge_fee: float = declare("R_u of an edge server, per gigacycle (eq. 7); the paper gives none: 2 x an MD's, small "
                              "enough that fees only break near-ties of delay", high=1e6)
    md_fee: float = declare("R_u of an MD, per gigacycle (eq. 7)", high=1e6)


@dataclass(frozen=True)
class CloudFields:
    """The optional cloud node (Fig. 6: it takes what exceeds the edge), behind one backbone link per BS."""

    enabled: bool = declare("offer the cloud as a destination")
    ghz: float = declare("F of the cloud, GHz", above=0, high=1e6)
    fee: float = declare("R_u of the cloud, per gigacycle", high=1e6)
    backbone_mbps: float = declare("capacity of each BS's link to the cloud, Mbit/s", above=0, high=1e9)


@dataclass(frozen=True)
class TasksFields:
    """Task arrivals and sizes (section VI-A); the case sets lambda1, lambda2, lambda3."""

    case: str = declare("I (lambda 1, 24, 6: few large tasks), II (6, 6, 1: media), III (12, 3, 0.5: "
                        "crowdsensing)", choices=tuple(CASES))
    arrivals: str = declare("batches: each MD gets Poisson(lambda1) tasks every U[batch_interval_s] seconds; "
                            "per_slot: Poisson(lambda1) tasks every slot (the paper states both)",
                            choices=("batches", "per_slot"))
    batch_interval_s: Range = declare("time between an MD's batches, uniform range, seconds", above=0, high=1e6)
    slot_s: float = declare("dt, the slot length, seconds", above=0, high=1e4)
    compute_scale: float = declare("multiplies lambda2 (the mean work of a task): load tests", above=0, high=1e6)
    workload: str = declare("poisson: s ~ Poisson(lambda2) gigacycles, o ~ Poisson(lambda3) MB; profiles: each task "
                            "runs one of `models` on `samples_per_task` inputs, s from the profile's FLOPs, o from "
                            "its input bytes", choices=("poisson", "profiles"))
    models: Names = declare("DNN models of profile-based tasks (shipped profiles, or tasks.profiles)", unique=True)
    profiles: Paths = declare("model name -> path of an edgeprof.profile/1 file, replacing the shipped one")
    samples_per_task: IntRange = declare("inputs per profile-based task, an integer drawn uniformly", low=1,
                                          high=1_000_000)
    flops_per_cycle: float = declare("FLOPs a node does per cycle: turns a profile's FLOPs into gigacycles",
                                     above=0, high=1e6)


@dataclass(frozen=True)
class LinksFields:
    """How a task's data uses its links (x_i; the paper gives no rule)."""

    rate_levels: int = declare("0: a task offers all its data in its slot and links are processor-shared among "
                               "the slot's tasks; n >= 1: each task also picks its rate, c_bottleneck x k / n for "
                               "k = 1..n (actions become destination x level)", high=16)


@dataclass(frozen=True)
class CostFields:
    """Eq. 7's weights and the drift-plus-penalty parameter V (eq. 12)."""

    alpha: float = declare("alpha of eq. 7, per second", high=1)
    beta: float = declare("beta of eq. 7", high=1)
    penalty_v: float = declare("V of eq. 12-13 (the penalty's weight against the links' drift)", high=1e6)


# ---------------------------------------------------------------------------------------------------------------
# The paper's equations, one function each (numpy, any leading axes)


def link_queue_update(backlog_mb: Any, offered_mb: Any, capacity_mb_s: Any, slot_s: float) -> np.ndarray:
    """Eq. 2 with [.]^+: V_l(t+1) = max(V_l + sum_i x_i dt - c_l dt, 0); `offered_mb` is sum_i x_i dt."""
    return np.maximum(np.asarray(backlog_mb) + offered_mb - np.asarray(capacity_mb_s) * slot_s, 0.0)


def compute_backlog_update(backlog_gcycles: Any, work_gcycles: Any, speed_ghz: Any, slot_s: float) -> np.ndarray:
    """Eq. 4 with [.]^+: Q_u(t+1) = max(Q_u + sum_i s_i - F_u dt, 0)."""
    return np.maximum(np.asarray(backlog_gcycles) + work_gcycles - np.asarray(speed_ghz) * slot_s, 0.0)


def processing_delay_s(backlog_gcycles: Any, work_gcycles: Any, speed_ghz: Any) -> np.ndarray:
    """Eq. 5 (Little's law): P = (Q_u + s_i) / F_u: waiting for the backlog, then serving the task."""
    return _time_for(np.asarray(backlog_gcycles) + work_gcycles, speed_ghz)


def execution_delay_s(processing_s: Any, data_mb: Any, rate_mb_s: Any) -> np.ndarray:
    """Eq. 6: E = P + o_i / x-bar_i (no data moves in no time; data at rate 0 never arrives)."""
    return np.asarray(processing_s) + _time_for(data_mb, rate_mb_s)


def offloading_cost(delay_s: Any, fee: Any, work_gcycles: Any, alpha: float, beta: float) -> np.ndarray:
    """Eq. 7: alpha E_i + beta R_u s_i."""
    return alpha * np.asarray(delay_s) + beta * np.asarray(fee) * work_gcycles


def path_delay_s(backlogs_mb: Any, capacities_mb_s: Any) -> np.ndarray:
    """Eq. 14: D_i = sum over the path's links of V_l / c_l (last axis: the links; pad with 0 backlog)."""
    return np.sum(np.asarray(backlogs_mb) / np.asarray(capacities_mb_s), axis=-1)


def shared_transfer_s(data_mb: np.ndarray, group: np.ndarray, capacity_mb_s: np.ndarray) -> np.ndarray:
    """Processor sharing of a link among tasks that start together: task i of `group` g finishes after
    sum_{j in g} min(o_j, o_i) / c_g (every task gets an equal rate until the smaller ones are done).
    `group` labels each task's link (any integers), `capacity_mb_s` is each task's link capacity."""
    data_mb = np.asarray(data_mb, dtype=np.float64)
    if data_mb.size == 0:
        return np.zeros(0)
    order = np.lexsort((data_mb, group))
    data, labels = data_mb[order], group[order]
    starts = np.r_[True, labels[1:] != labels[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(data)), 0))
    sizes = np.diff(np.r_[np.flatnonzero(starts), len(data)])
    rank = np.arange(len(data)) - first
    before = np.cumsum(data) - data
    smaller = before - before[first]  # the data of the group's smaller tasks (ties count once each)
    shared = smaller + (np.repeat(sizes, sizes) - rank) * data
    out = np.empty_like(data)
    out[order] = shared
    return _time_for(out, capacity_mb_s)


def queue_growth_rate(totals: np.ndarray, slot_s: float) -> float:
    """The least-squares slope of a backlog series (per second): ~0 when the queues are stable."""
    if len(totals) < 2:
        return 0.0
    times = np.arange(len(totals)) * slot_s
    return float(np.polyfit(times, totals, 1)[0])


# ---------------------------------------------------------------------------------------------------------------
# The layout: graph, capacities, candidates and paths


@dataclass(frozen=True)
class Layout:
    """The scenario's graph (numpy arrays). Nodes: edge servers 0..B-1, MDs B..B+N-1, then the cloud if enabled.
    Links: MD j's wireless link is j, then the wires, then the backbone link of each BS. Agent i's candidates:
    the B edge servers, the cloud, then the MDs of its cell (padded with -1 up to the largest cell), each with
    the links of its path (`paths`, -1 padded) and whether it can be reached at all."""

    num_base_stations: int
    md_cell: np.ndarray  # (N,) the BS of each MD
    md_cluster: np.ndarray  # (N,)
    cluster_xy_m: np.ndarray  # (C, 2)
    bs_xy_m: np.ndarray  # (B, 2)
    node_kind: np.ndarray  # (U,)
    node_speed_ghz: np.ndarray  # (U,) nominal (an MD's when available)
    node_fee: np.ndarray  # (U,)
    link_kind: np.ndarray  # (L,)
    link_capacity_mb_s: np.ndarray  # (L,)
    candidates: np.ndarray  # (N, A) node or -1
    paths: np.ndarray  # (N, A, H) link or -1
    reachable: np.ndarray  # (N, A) bool

    @property
    def num_mds(self) -> int:
        return len(self.md_cell)

    @property
    def num_nodes(self) -> int:
        return len(self.node_kind)

    @property
    def num_links(self) -> int:
        return len(self.link_kind)

    @property
    def num_candidates(self) -> int:
        return self.candidates.shape[1]


def parse_wired_links(names: tuple[str, ...], num_base_stations: int) -> list[tuple[int, int]]:
    """BS pairs from "a-b" names; a link to a missing BS, a loop or a repeated pair is refused."""
    pairs, seen = [], set()
    for name in names:
        parts = name.split("-")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise EdgeprofError(f"scenario field network.wired_links: {name!r} must name two BSs as \"a-b\" "
                                "(indices from 0)")
        a, b = sorted(int(part) for part in parts)
        if b >= num_base_stations:
            raise EdgeprofError(f"scenario field network.wired_links: link {name} names BS {b}, but there are "
                                f"{num_base_stations} (0-{num_base_stations - 1}): fix the link or "
                                "network.num_base_stations")
        if a == b:
            raise EdgeprofError(f"scenario field network.wired_links: link {name} joins BS {a} to itself")
        if (a, b) in seen:
            raise EdgeprofError(f"scenario field network.wired_links: BSs {a} and {b} are joined twice")
        seen.add((a, b))
        pairs.append((a, b))
    return pairs


def _wired_routes(pairs: list[tuple[int, int]], num_bs: int, first_wire: int) -> dict[tuple[int, int], list[int]]:
    """The fewest-hop wire path (link ids) between every two connected BSs (breadth-first search)."""
    neighbours: dict[int, list[tuple[int, int]]] = {bs: [] for bs in range(num_bs)}
    for index, (a, b) in enumerate(pairs):
        neighbours[a].append((b, first_wire + index))
        neighbours[b].append((a, first_wire + index))
    routes = {}
    for source in range(num_bs):
        found = {source: []}
        frontier = [source]
        while frontier:
            following = []
            for bs in frontier:
                for other, link in neighbours[bs]:
                    if other not in found:
                        found[other] = [*found[bs], link]
                        following.append(other)
            frontier = following
        routes.update({(source, target): links for target, links in found.items()})
    return routes


def build_layout(scenario: Any) -> Layout:
    """The scenario's graph, drawn from `network.layout_seed`."""
    rng = np.random.default_rng(scenario["network.layout_seed"])
    num_bs = scenario["network.num_base_stations"]
    width, length = scenario["network.area_m"]
    bs_xy = np.stack([np.full(num_bs, width / 2), (np.arange(num_bs) + 0.5) * length / num_bs], axis=1)
    num_clusters = scenario["network.num_clusters"]
    cluster_xy = rng.uniform((0.0, 0.0), (width, length), size=(num_clusters, 2))
    cluster_cell = np.linalg.norm(cluster_xy[:, None] - bs_xy[None], axis=-1).argmin(axis=1)
    low, high = scenario["network.mds_per_cluster"]
    sizes = rng.integers(low, high + 1, size=num_clusters)
    md_cluster = np.repeat(np.arange(num_clusters), sizes)
    md_cell = cluster_cell[md_cluster]
    num_mds = len(md_cell)
    md_speed = rng.uniform(*scenario["nodes.md_ghz"], size=num_mds)
    cloud = scenario["cloud.enabled"]

    node_kind = np.r_[np.full(num_bs, EDGE), np.full(num_mds, MD), np.full(int(cloud), CLOUD)]
    node_speed = np.r_[np.full(num_bs, scenario["nodes.edge_ghz"]), md_speed, [scenario["cloud.ghz"]] * cloud]
    node_fee = np.r_[np.full(num_bs, scenario["nodes.edge_fee"]), np.full(num_mds, scenario["nodes.md_fee"]),
                     [scenario["cloud.fee"]] * cloud]
    pairs = parse_wired_links(scenario["network.wired_links"], num_bs)
    link_kind = np.r_[np.full(num_mds, WIRELESS), np.full(len(pairs), WIRED), np.full(num_bs * cloud, BACKBONE)]
    link_capacity = np.r_[np.full(num_mds, scenario["network.wireless_mbps"]),
                          np.full(len(pairs), scenario["network.wired_mbps"]),
                          np.full(num_bs * cloud, scenario["cloud.backbone_mbps"])] / MBIT_PER_MB
    routes = _wired_routes(pairs, num_bs, num_mds)
    backbone = num_mds + len(pairs)

    cells = [np.flatnonzero(md_cell == bs) for bs in range(num_bs)]
    largest = max(len(members) for members in cells)
    fixed = num_bs + int(cloud)
    num_candidates = fixed + largest
    hops = max(2, 1 + max(len(links) for links in routes.values()))
    if num_mds * num_candidates * hops > MAX_LAYOUT_ENTRIES:
        raise EdgeprofError(f"scenario: {num_mds} MDs with up to {largest} in one cell make a graph of "
                            f"{num_mds * num_candidates * hops:,} path entries (the limit is {MAX_LAYOUT_ENTRIES:,}): "
                            "lower network.num_clusters or network.mds_per_cluster, or add base stations")
    candidates = np.full((num_mds, num_candidates), -1)
    paths = np.full((num_mds, num_candidates, hops), -1)
    for md in range(num_mds):
        cell = md_cell[md]
        for bs in range(num_bs):
            if (cell, bs) in routes:
                candidates[md, bs] = bs
                route = [md, *routes[(cell, bs)]]
                paths[md, bs, :len(route)] = route
        if cloud:
            candidates[md, num_bs] = num_bs + num_mds
            paths[md, num_bs, :2] = (md, backbone + cell)
        for slot, other in enumerate(cells[cell]):
            candidates[md, fixed + slot] = num_bs + other
            if other != md:
                paths[md, fixed + slot, :2] = (md, other)
    return Layout(num_bs, md_cell, md_cluster, cluster_xy, bs_xy, node_kind, node_speed, node_fee, link_kind,
                  link_capacity, candidates, paths, candidates >= 0)


# ---------------------------------------------------------------------------------------------------------------
# Workload: the layout and where task sizes come from


@dataclass(frozen=True)
class Workload:
    """What episodes need besides the scenario: the graph and where task sizes come from."""

    layout: Layout
    lambdas: tuple[float, float, float]  # (lambda1, lambda2 x compute_scale, lambda3)
    mean_work_gcycles: float  # of a task
    mean_data_mb: float
    model_gcycles: np.ndarray | None = None  # profile-based tasks: per model, gigacycles per input
    model_mb: np.ndarray | None = None  # profile-based tasks: per model, MB per input


def load_workload(scenario: Any) -> Workload:
    """The layout and the task sizes' source (profiles read when `tasks.workload = "profiles"`)."""
    layout = build_layout(scenario)
    rate, work, data = CASES[scenario["tasks.case"]]
    work *= scenario["tasks.compute_scale"]
    if scenario["tasks.workload"] == "poisson":
        return Workload(layout, (rate, work, data), work, data)
    from edgeprof.sim.workload import read_profile

    paths = scenario["tasks.profiles"]
    profiles = [read_profile(name, paths.get(name)) for name in scenario["tasks.models"]]
    gcycles = np.array([float(p["totals"]["flops"]) for p in profiles]) * scenario["tasks.compute_scale"] / (
        scenario["tasks.flops_per_cycle"] * 1e9)
    megabytes = np.array([float(p["model"]["input_bytes"]) for p in profiles]) / 1e6
    low, high = scenario["tasks.samples_per_task"]
    samples = (low + high) / 2
    return Workload(layout, (rate, work, data), samples * float(gcycles.mean()), samples * float(megabytes.mean()),
                    gcycles, megabytes)


def availability(scenario: Any) -> float:
    """The stationary share of slots an MD is available (two-state Markov chain)."""
    off, on = scenario["nodes.md_off_probability"], scenario["nodes.md_on_probability"]
    return on / (on + off)


def tasks_per_second(scenario: Any, workload: Workload) -> float:
    """The mean number of tasks an MD generates per second."""
    rate = workload.lambdas[0]
    if scenario["tasks.arrivals"] == "per_slot":
        return rate / scenario["tasks.slot_s"]
    low, high = scenario["tasks.batch_interval_s"]
    return rate / max((low + high) / 2, scenario["tasks.slot_s"])


def offered_load(scenario: Any, workload: Workload) -> dict[str, float]:
    """Expected work per second against expected capacity (edge servers, MDs x availability, the cloud): the load
    factor, below 1 for a system that any policy could keep stable; and each MD's data rate against its link."""
    layout = workload.layout
    work, data = workload.mean_work_gcycles, workload.mean_data_mb
    rate = tasks_per_second(scenario, workload)
    demand = layout.num_mds * rate * work
    speeds, kinds = layout.node_speed_ghz, layout.node_kind
    capacity = float(speeds[kinds == EDGE].sum() + availability(scenario) * speeds[kinds == MD].sum()
                     + speeds[kinds == CLOUD].sum())
    return {"demand_ghz": demand, "capacity_ghz": capacity, "load": demand / capacity,
            "md_data_mbps": rate * data * MBIT_PER_MB, "wireless_mbps": scenario["network.wireless_mbps"]}


# ---------------------------------------------------------------------------------------------------------------
# The batched environment


@dataclass
class Tasks:
    """The tasks of the current slot, (E, N, K) per quantity (K: the most tasks any agent has; `valid` marks
    real ones)."""

    work_gcycles: np.ndarray
    data_mb: np.ndarray
    valid: np.ndarray

    @property
    def count(self) -> np.ndarray:
        """(E, N) tasks per agent."""
        return self.valid.sum(axis=-1)


@dataclass
class Placement:
    """What one slot's tasks did, flattened over tasks in (environment, agent, task) order: where each came from,
    where it went, its delay, cost and reward."""

    env: np.ndarray
    agent: np.ndarray
    slot: np.ndarray  # the task's index among its agent's tasks (`Tasks` axis K)
    node: np.ndarray
    work_gcycles: np.ndarray
    data_mb: np.ndarray
    delay_s: np.ndarray
    cost: np.ndarray  # eq. 7
    drift: np.ndarray  # sum_{l in U_i} (V_l / c_l) x_i
    reward: np.ndarray  # -(V cost + drift): the task's share of eq. 13


class Policy(Protocol):
    """Acts in a `CrowdEdge`: an action index per task of the slot (destination, x level when rate levels are
    on: `CrowdEdge.action_mask`); entries of `tasks.valid == False` are ignored."""

    name: str

    def act(self, env: CrowdEdge) -> np.ndarray:
        """(E, N, K) int actions for `env.tasks`."""


class CrowdEdge:
    """E environments of one layout stepped together. Arrivals, task sizes and MD availability come from the
    episode's seed alone (the same for every policy); the order in which a slot's tasks join their queues comes
    from a second stream of the same seed."""

    def __init__(self, scenario: Any, workload: Workload, num_envs: int = 1, seed: int = 0) -> None:
        self.scenario, self.workload, self.layout = scenario, workload, workload.layout
        self.num_envs = num_envs
        self.slot_s = scenario["tasks.slot_s"]
        self.levels = scenario["links.rate_levels"]
        self.alpha, self.beta, self.penalty = scenario["cost.alpha"], scenario["cost.beta"], scenario["cost.penalty_v"]
        layout = self.layout
        self.is_md = layout.node_kind == MD
        md_nodes = np.flatnonzero(self.is_md)
        self.candidate_md = np.where(layout.candidates >= 0, np.isin(layout.candidates, md_nodes), False)
        self.candidate_md_index = np.where(self.candidate_md, layout.candidates - layout.num_base_stations, 0)
        padded = np.r_[layout.link_capacity_mb_s, np.inf]  # index -1: no link
        self.path_capacity = padded[layout.paths]  # (N, A, H)
        self.bottleneck_mb_s = self.path_capacity.min(axis=-1)  # inf for local processing
        self.reset(seed)

    @property
    def num_agents(self) -> int:
        return self.layout.num_mds

    @property
    def num_actions(self) -> int:
        return self.layout.num_candidates * max(self.levels, 1)

    def reset(self, seed: int) -> None:
        """A new episode: empty queues, every MD available, each MD's first batch within one interval."""
        streams = np.random.SeedSequence(seed).spawn(2)
        self.rng, self.order_rng = np.random.default_rng(streams[0]), np.random.default_rng(streams[1])
        shape = (self.num_envs, self.num_agents)
        self.t = 0
        self.backlog_gcycles = np.zeros((self.num_envs, self.layout.num_nodes))
        self.link_mb = np.zeros((self.num_envs, self.layout.num_links))
        self.in_flight_mb = np.zeros((self.num_envs, self.layout.num_links, 1))  # offers to links in later slots
        self.available = np.ones(shape, dtype=bool)
        self.next_batch_s = self.rng.uniform(0.0, self.scenario["tasks.batch_interval_s"][1], size=shape)
        self.tasks = self._draw_tasks()
        self._mask = None  # destination_mask of the current slot

    # State and observations ---------------------------------------------------------------------------------

    @property
    def speed_ghz(self) -> np.ndarray:
        """(E, U) F_u(t): an unavailable MD's is 0."""
        speed = np.broadcast_to(self.layout.node_speed_ghz, self.backlog_gcycles.shape).copy()
        speed[:, self.is_md] *= self.available
        return speed

    def destination_mask(self) -> np.ndarray:
        """(E, N, A) the candidates each agent may send a task to now: reachable, and available if an MD."""
        if self._mask is None:
            md_available = self.available[:, self.candidate_md_index]
            self._mask = self.layout.reachable[None] & (~self.candidate_md[None] | md_available)
        return self._mask

    def action_mask(self) -> np.ndarray:
        """(E, N, A x levels) the allowed actions (each destination's levels follow it)."""
        mask = self.destination_mask()
        return np.repeat(mask, self.levels, axis=-1) if self.levels else mask

    def candidate_backlog(self) -> np.ndarray:
        """(E, N, A) Q_u of each candidate (0 for padding)."""
        nodes = np.maximum(self.layout.candidates, 0)
        return self.backlog_gcycles[:, nodes]

    def candidate_speed(self) -> np.ndarray:
        """(E, N, A) F_u(t) of each candidate (0 for padding)."""
        return np.where(self.layout.candidates >= 0, self.speed_ghz[:, np.maximum(self.layout.candidates, 0)], 0.0)

    def path_delay(self) -> np.ndarray:
        """(E, N, A) eq. 14's D of each candidate's path."""
        padded = np.concatenate([self.link_mb, np.zeros((self.num_envs, 1))], axis=1)
        return path_delay_s(padded[:, self.layout.paths], self.path_capacity)

    def global_state(self) -> np.ndarray:
        """(E, 2U + L) the critics' state S = {Q, V, F} (sec. IV): log(1 + Q_u / F_u), F_u(t) / F_u and
        log(1 + V_l / c_l), with each node's nominal F."""
        speed = self.layout.node_speed_ghz
        return np.concatenate([np.log1p(self.backlog_gcycles / speed), self.speed_ghz / speed,
                               np.log1p(self.link_mb / self.layout.link_capacity_mb_s)], axis=1)

    def local_observation(self) -> np.ndarray:
        """(E, N, 5 + 4A) what an agent observes (sec. IV-V: delays, not the network): its availability, its
        tasks (count, mean work and data, in units of the case's means), its own backlog in seconds; then per
        candidate, for its mean task: eq. 5's processing delay, eq. 14's path delay, the transfer time at the
        path's bottleneck, and the fee R_u s (all log(1 + x); 0 where the candidate is not allowed)."""
        count = self.tasks.count
        safe = np.maximum(count, 1)
        work = (self.tasks.work_gcycles * self.tasks.valid).sum(-1) / safe
        data = (self.tasks.data_mb * self.tasks.valid).sum(-1) / safe
        own_node = self.layout.num_base_stations + np.arange(self.num_agents)
        own_wait = self.backlog_gcycles[:, own_node] / self.layout.node_speed_ghz[own_node]
        mask = self.destination_mask()
        processing = np.where(mask, processing_delay_s(self.candidate_backlog(), work[..., None],
                                                       np.where(mask, self.candidate_speed(), 1.0)), 0.0)
        transfer = np.where(mask, _time_for(data[..., None], self.bottleneck_mb_s[None]), 0.0)
        fee = self.layout.node_fee[np.maximum(self.layout.candidates, 0)][None] * work[..., None]
        per_candidate = np.stack([processing, np.where(mask, self.path_delay(), 0.0), transfer,
                                  np.where(mask, fee, 0.0)], axis=-1)
        own = np.stack([self.available.astype(float), np.log1p(count), work / self.workload.mean_work_gcycles,
                        data / max(self.workload.mean_data_mb, 1e-9), np.log1p(own_wait)], axis=-1)
        return np.concatenate([own, np.log1p(per_candidate).reshape(*count.shape, -1)], axis=-1)

    # Dynamics -----------------------------------------------------------------------------------------------

    def _draw_tasks(self) -> Tasks:
        """This slot's arrivals: batches whose time has come (or Poisson every slot) and their sizes."""
        shape = (self.num_envs, self.num_agents)
        rate = self.workload.lambdas[0]
        if self.scenario["tasks.arrivals"] == "per_slot":
            counts = self.rng.poisson(rate, size=shape)
        else:
            due = self.next_batch_s <= 0
            counts = np.where(due, self.rng.poisson(rate, size=shape), 0)
            low, high = self.scenario["tasks.batch_interval_s"]
            self.next_batch_s = self.next_batch_s + np.where(due, self.rng.uniform(low, high, size=shape), 0.0)
            self.next_batch_s -= self.slot_s
        width = max(int(counts.max()), 1)
        valid = np.arange(width) < counts[..., None]
        if self.workload.model_gcycles is None:
            work = self.rng.poisson(self.workload.lambdas[1], size=(*shape, width)).astype(float)
            data = self.rng.poisson(self.workload.lambdas[2], size=(*shape, width)).astype(float)
        else:
            model = self.rng.integers(len(self.workload.model_gcycles), size=(*shape, width))
            low, high = self.scenario["tasks.samples_per_task"]
            samples = self.rng.integers(low, high + 1, size=(*shape, width))
            work, data = samples * self.workload.model_gcycles[model], samples * self.workload.model_mb[model]
        return Tasks(np.where(valid, work, 0.0), np.where(valid, data, 0.0), valid)

    def _place(self, actions: np.ndarray, order: np.ndarray) -> tuple[Placement, np.ndarray, np.ndarray]:
        """Score the slot's tasks under `actions` (eq. 5-7, 14), the slot's tasks joining each queue in `order`;
        also the work arriving at each node (E, U) and what the slot's tasks offer each link, (E, L, slots ahead)
        (one slot unless rate levels spread transfers). Changes no state."""
        layout, tasks = self.layout, self.tasks
        actions = np.asarray(actions)
        if actions.shape != tasks.valid.shape:
            raise ValueError(f"actions must have shape (E, N, K) = {tasks.valid.shape}, got {actions.shape}")
        env, agent, slot = np.nonzero(tasks.valid)
        action = actions[env, agent, slot].astype(np.int64)
        allowed = self.action_mask()
        if ((action < 0) | (action >= self.num_actions)).any() or not allowed[env, agent, action].all():
            raise ValueError("an action sends a task where it may not go (see CrowdEdge.action_mask)")
        levels = max(self.levels, 1)
        candidate, level = action // levels, action % levels
        work, data = tasks.work_gcycles[env, agent, slot], tasks.data_mb[env, agent, slot]
        node = layout.candidates[agent, candidate]

        # eq. 5, each task behind the work queued before it (earlier slots, then this slot's in `order`)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        by_node = np.lexsort((rank, node, env))
        keys = env[by_node] * layout.num_nodes + node[by_node]
        starts = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, dtype=bool)
        queued = np.cumsum(work[by_node]) - work[by_node]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0)) if len(keys) else starts
        ahead = np.empty_like(work)
        ahead[by_node] = queued - queued[group_start]
        speed = self.speed_ghz[env, node]
        processing = processing_delay_s(self.backlog_gcycles[env, node] + ahead, work, speed)

        # eq. 14 and the transfer: links of each task's path
        links = layout.paths[agent, candidate]  # (T, H)
        on_path = links >= 0
        capacity = np.where(on_path, layout.link_capacity_mb_s[np.maximum(links, 0)], np.inf)
        queued_data = np.where(on_path, self.link_mb[env[:, None], np.maximum(links, 0)], 0.0)
        waiting = path_delay_s(queued_data, capacity)
        bottleneck = capacity.min(axis=1)
        task_index, hop = np.nonzero(on_path)
        link = links[task_index, hop]
        if self.levels:
            rate = bottleneck * (level + 1) / self.levels
            rate = np.where(np.isfinite(rate), rate, 0.0)
            sending = _time_for(data, rate)
            offered = self._schedule(env, task_index, link, data, rate)
        else:
            rate = data / self.slot_s
            shared = shared_transfer_s(data[task_index], env[task_index] * layout.num_links + link,
                                       layout.link_capacity_mb_s[link])
            sending = np.zeros(len(data))
            np.maximum.at(sending, task_index, shared)
            offered = np.zeros((self.num_envs, layout.num_links, 1))
            np.add.at(offered[..., 0], (env[task_index], link), data[task_index])
        transfer = np.where(data > 0, waiting + sending, 0.0)
        delay = processing + transfer  # eq. 6 with x-bar = o / transfer
        cost = offloading_cost(delay, layout.node_fee[node], work, self.alpha, self.beta)
        drift = np.where(on_path, queued_data / capacity, 0.0).sum(axis=1) * rate
        arriving = np.zeros((self.num_envs, layout.num_nodes))
        np.add.at(arriving, (env, node), work)
        reward = -(self.penalty * cost + drift)
        return Placement(env, agent, slot, node, work, data, delay, cost, drift, reward), arriving, offered

    def _schedule(self, env: np.ndarray, task_index: np.ndarray, link: np.ndarray, data: np.ndarray,
                  rate: np.ndarray) -> np.ndarray:
        """Rate levels: each task offers x_i dt to each of its links in every slot of its transfer (in the last
        slot what is left): (E, L, slots ahead)."""
        per_slot = rate * self.slot_s
        slots = np.where(data > 0, np.ceil(data / np.where(per_slot > 0, per_slot, 1.0) - 1e-9), 0).astype(np.int64)
        reps = slots[task_index]
        offered = np.zeros((self.num_envs, self.layout.num_links, max(int(reps.max(initial=0)), 1)))
        incidence = np.repeat(np.arange(len(task_index)), reps)
        step = np.arange(len(incidence)) - np.repeat(np.cumsum(reps) - reps, reps)
        owner = task_index[incidence]
        amount = np.minimum(per_slot[owner], data[owner] - step * per_slot[owner])
        np.add.at(offered, (env[owner], link[incidence], step), amount)
        return offered

    def step(self, actions: np.ndarray) -> tuple[Placement, np.ndarray]:
        """Place the slot's tasks (`actions`, (E, N, K)), update every queue (eq. 2, 4), move MD availability on
        and draw the next slot's tasks. Returns the placement and each agent's reward (E, N): minus
        V g_i + D_i x_i summed over its tasks (eq. 21-22)."""
        placement, arriving, offered = self._place(actions, self.order_rng.permutation(int(self.tasks.valid.sum())))
        ahead = max(offered.shape[2], self.in_flight_mb.shape[2])
        in_flight = np.zeros((*offered.shape[:2], ahead))
        in_flight[..., :offered.shape[2]] += offered
        in_flight[..., :self.in_flight_mb.shape[2]] += self.in_flight_mb
        self.in_flight_mb = np.concatenate([in_flight[..., 1:], np.zeros_like(in_flight[..., :1])], axis=2)
        self.backlog_gcycles = compute_backlog_update(self.backlog_gcycles, arriving, self.speed_ghz, self.slot_s)
        self.link_mb = link_queue_update(self.link_mb, in_flight[..., 0], self.layout.link_capacity_mb_s, self.slot_s)
        switch = self.rng.random(self.available.shape)
        off, on = self.scenario["nodes.md_off_probability"], self.scenario["nodes.md_on_probability"]
        self.available = np.where(self.available, switch >= off, switch < on)
        self.t += 1
        self.tasks = self._draw_tasks()
        self._mask = None
        rewards = np.zeros((self.num_envs, self.num_agents))
        np.add.at(rewards, (placement.env, placement.agent), placement.reward)
        return placement, rewards

    def slot_objective(self, placement: Placement, link_mb: np.ndarray) -> np.ndarray:
        """(E,) eq. 12 of the slot: V sum_i g_i + sum_l (V_l / c_l)(sum x_i - c_l) with the slot-start V_l."""
        terms = np.zeros(self.num_envs)
        np.add.at(terms, placement.env, -placement.reward)
        return terms - link_mb.sum(axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Episodes and metrics


REPORTED = ("ad_s_per_mb", "anlr", "e2e", "e2d", "delay_s", "objective", "queue_growth_ghz", "edge_share",
            "offered_load")


class Metrics:
    """Running sums over the slots of an episode (all environments together)."""

    def __init__(self, env: CrowdEdge) -> None:
        self.env = env
        self.delay = self.data = self.tasks = self.edge_tasks = 0.0
        self.load, self.e2e, self.e2d, self.objective = [], [], [], []
        self.totals: list[np.ndarray] = []

    def add(self, placement: Placement, link_mb_before: np.ndarray) -> None:
        env, layout = self.env, self.env.layout
        self.delay += float(placement.delay_s.sum())
        self.data += float(placement.data_mb.sum())
        self.tasks += len(placement.delay_s)
        self.edge_tasks += float((layout.node_kind[placement.node] == EDGE).sum())
        self.load.append(float((env.backlog_gcycles / layout.node_speed_ghz).mean()))
        ratio = env.link_mb / layout.link_capacity_mb_s
        kinds = layout.link_kind
        self.e2e.append(float(ratio[:, kinds == WIRED].mean()) if (kinds == WIRED).any() else 0.0)
        self.e2d.append(float(ratio[:, kinds == WIRELESS].mean()))
        self.objective.append(float(env.slot_objective(placement, link_mb_before).mean()))
        self.totals.append(env.backlog_gcycles.sum(axis=1))

    def summary(self) -> dict[str, float]:
        totals = np.array(self.totals)  # (slots, E)
        growth = np.mean([queue_growth_rate(totals[:, e], self.env.slot_s) for e in range(totals.shape[1])])
        return {"ad_s_per_mb": self.delay / self.data if self.data else 0.0,
                "anlr": float(np.mean(self.load)), "e2e": float(np.mean(self.e2e)), "e2d": float(np.mean(self.e2d)),
                "delay_s": self.delay / self.tasks if self.tasks else 0.0, "objective": float(np.mean(self.objective)),
                "queue_growth_ghz": float(growth), "edge_share": self.edge_tasks / self.tasks if self.tasks else 0.0,
                "offered_load": offered_load(self.env.scenario, self.env.workload)["load"], "tasks": self.tasks}


def run_policy(env: CrowdEdge, policy: Policy, slots: int, progress: Callable[[int], None] | None = None
               ) -> dict[str, float]:
    """Run `policy` for `slots` slots from the environment's current state: the episode's metrics."""
    metrics = Metrics(env)
    for slot in range(slots):
        before = env.link_mb.copy()
        placement, _ = env.step(policy.act(env))
        metrics.add(placement, before)
        if progress:
            progress(slot + 1)
    return metrics.summary()


def run_episode(scenario: Any, workload: Workload, make_policy: Callable[[Any, int], Policy], slots: int, seed: int,
                num_envs: int = 1, progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """One episode of `slots` slots of `num_envs` environments drawn from `seed`, acted by
    `make_policy(env, seed)` (a `Policy`)."""
    env = CrowdEdge(scenario, workload, num_envs=num_envs, seed=seed)
    return run_policy(env, make_policy(env, seed), slots, progress)


SYSTEM = register_system(System(
    name=NAME,
    description="Seed 004 (mixed MAPPO): mobile devices offload tasks to edge servers or nearby devices over "
                "capacitated links; compute backlogs and link virtual queues (drift-plus-penalty).",
    sections={"network": NetworkFields, "nodes": NodesFields, "cloud": CloudFields, "tasks": TasksFields,
              "links": LinksFields, "cost": CostFields},
    default_preset=NAME,
    metrics=REPORTED,
    bounded_metrics={**dict.fromkeys(("ad_s_per_mb", "anlr", "e2e", "e2d", "delay_s"), (0.0, math.inf)),
                     "edge_share": (0.0, 1.0)},
    rate_trials={"edge_share": "tasks"},  # placed tasks, every environment
    load_workload=load_workload,
    run_episode=run_episode,
))
