"""Seed 003's system, `cerl`: one task's layers run as a chain of blocks over several nodes (CERL's paper).

One MEC server (node 0) and N devices (nodes 1..N) stand in a square area; every slot each device receives
Poisson-many inference tasks of one L-layer model. Per slot, every active task takes one hop: a node d, the end
j of its next block of layers [i..j], a compute share r in 1..100% of that node, and, when the task moves, an
OFDMA subcarrier w for its intermediate data. The equations (sec. 2.1):

    eq. 1  T_comp  = C[i..j] / r                            r = share x R_max(d), in cycles/s
    eq. 2  R       = (B / S) log2(1 + g p / delta^2)         g = d^-4 (distance in metres)
    eq. 3  T_trans = O / R                                  0 when the block stays on the task's node
    eq. 4  E_comp  = k0 C[i..j] r^2                         on every node, the MEC included
    eq. 5  E_trans = p T_trans
    eq. 6  cost    = w_e (E_comp + E_trans) + w_d (T_comp + T_trans), summed over hops and tasks
    eq. 7  one task per subcarrier per slot;  eq. 8  shares of a node <= 100% per slot
    eq. 9  every task runs all L layers, in order;  eq. 10  a task's summed delay <= T
    eq. 13 reward  = -(eq. 6 of the hop) - P if the task failed (per task q; the system's sums every task's)

C[i..j] = xi x (device_flops(j) - device_flops(i - 1)) and O = upload_bytes(i - 1), the data block [i..j]
reads, from a profile's partition points (`sim.workload`): the shipped `cerl-net` profile (`task.workload =
"profile"`) or the paper's own table of sec. 5.1 (`"paper-table"`, `edgeprof/data/papers/cerl-net.json`: the
paper's operation counts with 8-byte values).

Where the paper is silent, the choice is a named field (below) or stated here:
- a slot is one hop of every active task: the hops of one slot run together, so they share each node (eq. 8)
  and the band (eq. 7); a task is decided when its turn comes (oldest first), with the masks updated after
  every choice (`ChainEnv.masks`);
- a task enters at its source device; moving to another node sends the block's input over the link (which
  must exist: nodes within `system.link_range_m`, the MEC included); the result is not sent back (the
  profile's z = L uploads nothing; the paper's 72-byte result would take well under a millisecond);
- a task fails when its summed delay passes T (eq. 10), or when its turn comes and no node can take it (the
  shares of every reachable node used up, or no subcarrier left to leave a full node); every hop's cost
  counts, failed or not; P = `cost.failure_penalty_tasks` x the largest cost one task can incur while meeting
  T (`failure_penalty`);
- positions and capacities are drawn once per episode (no mobility), so every link's rate is fixed in it; all
  subcarriers have the same gain (eq. 2 with g = d^-4), so which free one a task gets changes nothing but
  eq. 7;
- arrivals stop after the episode's slots; the episode runs on until every task has completed or failed.

The state graph (sec. 3.1) is `StateGraph`: compute nodes and the layer nodes of every active task, with the
square adjacency over both sets (the paper writes |V_a| x |V_b|, but a GCN needs a square one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.sim.fields import Range, declare
from edgeprof.sim.radio import dbm_to_watts
from edgeprof.sim.systems import System, register_system

PAPER_TABLE = "paper-table"
SHARES = 100  # compute shares are whole percents, 1..100 (sec. 3.2)


@dataclass(frozen=True)
class SystemFields:
    """The nodes, where they stand and how often tasks arrive."""

    num_devices: int = declare("N, edge devices (node 0 is the MEC server; sec. 5.1: N = 5, 10, ..., 50)",
                               low=1, high=1000)
    mec_capacity_ghz: float = declare("R_max of the MEC server, GHz (sec. 5.1: 10)", above=0)
    device_capacity_ghz: Range = declare("R_max of a device, drawn uniformly per episode, GHz (sec. 5.1: "
                                         "[0.1, 1.0])", above=0)
    area_m: float = declare("side of the square area, metres; devices uniform over it, the MEC at its centre "
                            "(ours: the paper gives no geometry)", above=0)
    link_range_m: float = declare("two nodes (the MEC included) have a link when at most this far apart; a "
                                  "task moves only along a link (ours: the paper names links but no range)",
                                  above=0)
    min_distance_m: float = declare("distances below this are clamped (g = d^-4 diverges at 0)", above=0)
    arrivals_per_slot: float = declare("Poisson mean of the tasks each device receives per slot (ours: the "
                                       "paper says Poisson, no rate)", above=0, high=100)
    deadline_s: float = declare("T of eq. 10: the largest summed delay of a task, seconds (sec. 5.1: 3)", above=0)


@dataclass(frozen=True)
class RadioFields:
    """OFDMA links between nodes (eq. 2, 3, 5)."""

    bandwidth_mhz: float = declare("B, the whole band, MHz (sec. 5.1: 20)", above=0)
    subcarriers: int = declare("S: subcarriers of B / S each; one task per subcarrier per slot (eq. 7; ours: "
                               "the paper gives no S)", low=1, high=1024)
    tx_power_w: float = declare("p, the transmit power of every node, W (sec. 5.1: 1)", above=0)
    noise_dbm: float = declare("delta^2, the noise power of a subcarrier, dBm (sec. 5.1: -113)", low=-300,
                               high=100)
    path_loss_exponent: float = declare("g = d^-n (sec. 5.1: n = 4)", above=0, high=10)


@dataclass(frozen=True)
class TaskFields:
    """The model every task runs, from a profile's partition points."""

    workload: str = declare("profile (the profile of task.model: shipped, or task.profile_path) or paper-table "
                            "(sec. 5.1's table as a profile: the paper's operation counts, 8-byte values)",
                            choices=("profile", PAPER_TABLE))
    model: str = declare("the model of workload = profile (shipped: cerl-net, CERL's 8-layer device model)")
    profile_path: str = declare("an edgeprof.profile/1 file of task.model to use instead of the shipped one "
                                "(\"\": the shipped profile)")
    cycles_per_flop: float = declare("xi: CPU cycles per operation (sec. 5.1: 10)", above=0)


@dataclass(frozen=True)
class CostFields:
    """Eq. 4, 6 and 13."""

    energy_weight: float = declare("w_e of eq. 6 (sec. 5.1: 0.8)")
    delay_weight: float = declare("w_d of eq. 6 (sec. 5.1: 0.2)")
    energy_coefficient: float = declare("k0 of eq. 4, J per cycle per (cycle/s)^2 (sec. 5.1: 1e-26)", above=0)
    failure_penalty_tasks: float = declare(
        "P of eq. 13 as a multiple of the largest cost one task can incur while meeting T (ours: the paper "
        "says 'relatively large'; 10)")


@dataclass(frozen=True)
class ChainWorkload:
    """The model every task runs, per layer (SI units: cycles, bytes); layers are numbered 1..L.

    `prefix_cycles[z]` is the work of layers 1..z (z = 0..L), so a block [i..j] costs `prefix_cycles[j] -
    prefix_cycles[i - 1]`; `input_bytes_of[l - 1]` is what layer l reads (the raw input for l = 1)."""

    model: str
    source: str
    prefix_cycles: np.ndarray
    input_bytes_of: np.ndarray
    layer_names: tuple[str, ...]

    @property
    def num_layers(self) -> int:
        return len(self.input_bytes_of)

    @property
    def total_cycles(self) -> float:
        return float(self.prefix_cycles[-1])

    @property
    def layer_cycles(self) -> np.ndarray:
        return np.diff(self.prefix_cycles)

    def block_cycles(self, first: int, last: int) -> float:
        """C[first..last] (1-based, inclusive)."""
        return float(self.prefix_cycles[last] - self.prefix_cycles[first - 1])


def paper_table_path() -> Any:
    """Sec. 5.1's table as an `edgeprof.profile/1` file shipped with the package."""
    from importlib import resources

    return resources.files("edgeprof.data").joinpath("papers", "cerl-net.json")


def workload_from_profile(profile: dict[str, Any], cycles_per_flop: float, source: str) -> ChainWorkload:
    """The chain workload of a profile: per-point prefix sums (`sim.workload.service_table_from_profiles`)."""
    from edgeprof.sim.workload import service_table_from_profiles

    name = profile["model"]["name"]
    table = service_table_from_profiles([name], [profile], 1, require_leakage=False)
    points = int(table.num_points[0])
    prefix = table.device_flops[0, : points + 1] * cycles_per_flop
    uploads = table.upload_bytes[0, :points]
    return ChainWorkload(model=name, source=source, prefix_cycles=prefix, input_bytes_of=uploads.copy(),
                         layer_names=tuple(layer["name"] for layer in profile["layers"]))


def load_workload(scenario: Any) -> ChainWorkload:
    """The scenario's task model: a profile (shipped or a file) or the paper's table."""
    from edgeprof.profiler.schema import load_profile
    from edgeprof.sim.workload import read_profile

    xi = scenario["task.cycles_per_flop"]
    if scenario["task.workload"] == PAPER_TABLE:
        return workload_from_profile(load_profile(str(paper_table_path())), xi, PAPER_TABLE)
    model = scenario["task.model"]
    return workload_from_profile(read_profile(model, scenario["task.profile_path"] or None), xi, "profile")


# ---------------------------------------------------------------------------------------------------------------
# Equations (sec. 2.1): plain functions of numbers, SI units


def compute_delay_s(cycles: float, rate_hz: float) -> float:
    """Eq. 1: T_comp = C / r."""
    return cycles / rate_hz


def link_rate_bps(bandwidth_hz: float, subcarriers: int, gain: float, power_w: float, noise_w: float) -> float:
    """Eq. 2: R = (B / S) log2(1 + g p / delta^2), bit/s."""
    return bandwidth_hz / subcarriers * math.log2(1.0 + gain * power_w / noise_w)


def transfer_delay_s(data_bytes: float, rate_bps: float) -> float:
    """Eq. 3: T_trans = O / R (O in bytes, sent as 8 O bits)."""
    return 8.0 * data_bytes / rate_bps


def compute_energy_j(cycles: float, rate_hz: float, coefficient: float) -> float:
    """Eq. 4: E_comp = k0 C r^2."""
    return coefficient * cycles * rate_hz ** 2


def transfer_energy_j(power_w: float, delay_s: float) -> float:
    """Eq. 5: E_trans = p T_trans."""
    return power_w * delay_s


def weighted_cost(energy_j: float, delay_s: float, energy_weight: float, delay_weight: float) -> float:
    """Eq. 6, one term: w_e E + w_d T."""
    return energy_weight * energy_j + delay_weight * delay_s


def channel_gains(distance_m: np.ndarray, exponent: float, min_distance_m: float) -> np.ndarray:
    """g = d^-n with d clamped at `min_distance_m`."""
    return np.maximum(distance_m, min_distance_m) ** -exponent


def task_cost_rate_bounds(workload: ChainWorkload, scenario: Any) -> tuple[float, float]:
    """(r*, r_T): the rate that minimises a whole task's w_e k0 C r^2 + w_d C / r, (w_d / (2 w_e k0))^(1/3),
    and the least rate that meets the deadline, C / T."""
    w_e, w_d, k0 = scenario["cost.energy_weight"], scenario["cost.delay_weight"], scenario["cost.energy_coefficient"]
    best = (w_d / (2.0 * w_e * k0)) ** (1.0 / 3.0) if w_e > 0 else math.inf
    return best, workload.total_cycles / scenario["system.deadline_s"]


def cost_bound_per_task(workload: ChainWorkload, scenario: Any) -> float:
    """A lower bound on the eq. 6 cost of any task that completes: C (w_e k0 r^2 + w_d / r) at r = max(r*, r_T).

    Per cycle a block at rate r costs w_e k0 r^2 + w_d / r, convex in u = 1/r; by Jensen's inequality a chain of
    blocks at several rates costs at least its cycle-weighted mean u, which the deadline keeps at or below
    T / C; transfers only add. So no completed task, however it is split, costs less (the paper's table: 0.966,
    r = 0.248 GHz)."""
    best, needed = task_cost_rate_bounds(workload, scenario)
    rate = max(best, needed)
    c = workload.total_cycles
    return (scenario["cost.energy_weight"] * compute_energy_j(c, rate, scenario["cost.energy_coefficient"])
            + scenario["cost.delay_weight"] * compute_delay_s(c, rate))


def largest_capacity_hz(scenario: Any) -> float:
    return max(scenario["system.mec_capacity_ghz"], scenario["system.device_capacity_ghz"][1]) * 1e9


def failure_penalty(workload: ChainWorkload, scenario: Any) -> float:
    """P of eq. 13: `failure_penalty_tasks` x the largest cost one task can incur while meeting T. Per cycle the
    cost is convex in the rate, so over the rates that meet T (C / T up to the fastest node) it is largest at an
    end: the whole model at the fastest node's full capacity (the MEC: 595 for the paper's table) or at C / T."""
    c = workload.total_cycles
    w_e, w_d, k0 = scenario["cost.energy_weight"], scenario["cost.delay_weight"], scenario["cost.energy_coefficient"]
    largest = max(w_e * compute_energy_j(c, rate, k0) + w_d * compute_delay_s(c, rate)
                  for rate in (c / scenario["system.deadline_s"], largest_capacity_hz(scenario)))
    return scenario["cost.failure_penalty_tasks"] * largest


def check(scenario: Any, workload: ChainWorkload) -> None:
    """Refuse a system in which no node could finish a task within T, even alone and at full capacity."""
    _, needed = task_cost_rate_bounds(workload, scenario)
    fastest = largest_capacity_hz(scenario)
    if fastest < needed:
        raise EdgeprofError(f"infeasible scenario: a task of {workload.model} needs {needed / 1e9:.3g} GHz to "
                            f"finish within system.deadline_s = {scenario['system.deadline_s']:g} s, but the "
                            f"fastest node has {fastest / 1e9:.3g} GHz: raise the deadline or the capacities")


# ---------------------------------------------------------------------------------------------------------------
# The episode


class Action(NamedTuple):
    """One task's hop: node (0 = MEC), the block's last layer `end` (1..L; the block starts at the task's next
    layer), `share` in percent (1..100) and `subcarrier` (0..S-1; ignored, -1 by convention, when the block
    stays on the task's node)."""

    node: int
    end: int
    share: int
    subcarrier: int = -1


@dataclass(frozen=True)
class ActionMasks:
    """What the task whose turn it is may do (eq. 7-9 and the links): `node` (N+1,) allowed nodes, `end` (L,)
    allowed block ends (index j - 1), `share_limit` (N+1,) the most percent each node can still give, `subcarriers`
    (S,) the free ones, `location` the node holding the task's data."""

    node: np.ndarray
    end: np.ndarray
    share_limit: np.ndarray
    subcarriers: np.ndarray
    location: int


@dataclass
class Task:
    """An inference task in flight: its next layer, where its data is, what it has spent."""

    task_id: int
    source: int
    arrival_slot: int
    next_layer: int  # i: the first layer of its next block (1-based)
    location: int
    layer_nodes: np.ndarray  # (L,) the node each layer ran on, -1 while pending
    elapsed_s: float = 0.0
    cost: float = 0.0
    energy_j: float = 0.0
    hops: int = 0


@dataclass(frozen=True)
class Hop:
    """The outcome of one action (eq. 1-6)."""

    compute_s: float
    transfer_s: float
    compute_j: float
    transfer_j: float
    cost: float


@dataclass
class Totals:
    """What an episode has done so far."""

    tasks: int = 0
    completed: int = 0
    failed_deadline: int = 0
    failed_blocked: int = 0
    cost: float = 0.0
    energy_j: float = 0.0
    completed_cost: float = 0.0
    completed_delay_s: float = 0.0
    collaborations: int = 0
    penalties: float = 0.0
    decisions: int = 0


class StepResult(NamedTuple):
    """`reward` = -(the hop's eq. 6 cost) - P x (tasks that failed on the way to the next decision: the acting
    task if it `missed_deadline`, and the `blocked` ones, which found nothing allowed at their turn)."""

    reward: float
    hop: Hop
    failed: int
    completed: bool
    missed_deadline: bool
    blocked: tuple[int, ...]


COMPUTE_FEATURES = ("is_mec", "capacity", "log_capacity", "free_share", "free_vs_need", "needed_share", "is_location",
                    "reachable", "transfer")
LAYER_FEATURES = ("work", "output", "done", "next", "focus", "time_left", "log_block_rate")
PAIR_FEATURES = ("needed_share", "full_share_energy")
HOP_COST_TERMS = ("share_squared", "inverse_share", "constant", "full_share_delay_s", "slack_s", "penalty")


@dataclass(frozen=True)
class StateGraph:
    """The state of sec. 3.1 for the task whose turn it is (the focus, task 0 below).

    V_a: the N + 1 compute nodes, features `COMPUTE_FEATURES` (N+1, 9): MEC flag, R_max / R_max of the MEC,
    log10(R_max / 1 GHz), free share, free compute over the rate the focus task needs to finish its layers in
    time (capped at 4, / 4), the share of the node that rate is (capped at 2, / 2), whether the focus task's data
    is there, whether it can reach the node, its transfer time there over its time left.
    V_b: the L layers of each active task, the focus first, features `LAYER_FEATURES` (Q, L, 7): work over the
    model's, output bytes over the input's, done, next to run, focus flag, time left / T, and log10 of the rate
    (in GHz) at which the block from the task's next layer to this one would end within its time left (0 for
    done layers; clipped to [-3, 3]): with log10(R_max) it gives the share a block needs on a node.
    Edges: E_a the links between compute nodes, E_b layer l - l+1 of a task, E_ab a layer and the node it ran on
    (done) or holding its input (pending). `adjacency()` is the square (N+1+QL) x (N+1+QL) matrix.
    Pair features `PAIR_FEATURES` (N+1, L, 2) of each compute node n and focus layer l (0 for done layers): the
    share of n the block from the focus task's next layer to l needs to end within its time left, and that
    block's eq. 4 energy at n's full capacity over a whole task's at the deadline rate (k0 C (C / T)^2).
    `hop_cost` (N+1, L, 6), `HOP_COST_TERMS`: what the focus task's own hop to node n ending at layer l with share
    s = r / 100 costs, a s^2 + b / s + c + P [d / s > e], a = w_e k0 C R_max^2, b = w_d C / R_max, c = (w_e p +
    w_d) T_trans (eq. 1-6 exactly, as `ChainEnv.hop`; c = 0 for nodes out of reach), and P (eq. 13) when the
    hop's compute time d / s, d = C / R_max, passes e = the task's time left less T_trans (eq. 10): known before
    acting, so a Q-network need not learn it."""

    compute: np.ndarray
    layers: np.ndarray
    layer_node: np.ndarray
    links: np.ndarray
    pairs: np.ndarray
    hop_cost: np.ndarray

    @property
    def num_nodes(self) -> int:
        return self.compute.shape[0] + self.layers.shape[0] * self.layers.shape[1]

    def features(self) -> np.ndarray:
        """X: (V, 9 + 7), compute nodes first, then the layer nodes task by task; each set's columns zero for
        the other set."""
        nc, fc = self.compute.shape
        q, num_layers, fl = self.layers.shape
        x = np.zeros((self.num_nodes, fc + fl), dtype=np.float32)
        x[:nc, :fc] = self.compute
        x[nc:, fc:] = self.layers.reshape(q * num_layers, fl)
        return x

    def adjacency(self) -> np.ndarray:
        """A: (V, V) symmetric 0/1 over compute nodes then layer nodes; no self-loops (the GCN adds them)."""
        nc = self.compute.shape[0]
        q, num_layers = self.layer_node.shape
        a = np.zeros((self.num_nodes, self.num_nodes), dtype=np.float32)
        a[:nc, :nc] = self.links
        layer = nc + np.arange(q * num_layers).reshape(q, num_layers)
        a[layer[:, :-1], layer[:, 1:]] = a[layer[:, 1:], layer[:, :-1]] = 1.0
        a[layer.ravel(), self.layer_node.ravel()] = a[self.layer_node.ravel(), layer.ravel()] = 1.0
        return a


class ChainEnv:
    """One seeded episode: positions, capacities and arrivals come from `seed` alone (not from the decisions),
    so every policy sees the same episode. Call `masks()`, then `step(action)` for the task whose turn it is,
    until `done`."""

    def __init__(self, scenario: Any, workload: ChainWorkload, slots: int, seed: int) -> None:
        if slots < 1:
            raise EdgeprofError(f"an episode needs at least 1 slot, got {slots}")
        self.scenario, self.workload, self.slots = scenario, workload, slots
        rng = np.random.default_rng(seed)
        n = scenario["system.num_devices"]
        self.num_nodes = n + 1
        self.num_layers = workload.num_layers
        self.num_subcarriers = scenario["radio.subcarriers"]
        area = scenario["system.area_m"]
        self.positions = np.vstack([[area / 2, area / 2], rng.uniform(0.0, area, size=(n, 2))])
        low, high = scenario["system.device_capacity_ghz"]
        self.capacity_hz = np.concatenate([[scenario["system.mec_capacity_ghz"]], rng.uniform(low, high, n)]) * 1e9
        self.arrivals = rng.poisson(scenario["system.arrivals_per_slot"], size=(slots, n))
        offsets = self.positions[:, None, :] - self.positions[None, :, :]
        self.distance_m = np.sqrt((offsets ** 2).sum(-1))
        self.links = (self.distance_m <= scenario["system.link_range_m"]) & ~np.eye(self.num_nodes, dtype=bool)
        gains = channel_gains(self.distance_m, scenario["radio.path_loss_exponent"], scenario["system.min_distance_m"])
        noise = float(dbm_to_watts(scenario["radio.noise_dbm"]))
        self.power_w = scenario["radio.tx_power_w"]
        band = scenario["radio.bandwidth_mhz"] * 1e6
        self.rate_bps = band / self.num_subcarriers * np.log2(1.0 + gains * self.power_w / noise)
        self.deadline_s = scenario["system.deadline_s"]
        self.penalty = failure_penalty(workload, scenario)
        self.energy_weight, self.delay_weight = scenario["cost.energy_weight"], scenario["cost.delay_weight"]
        self.k0 = scenario["cost.energy_coefficient"]
        self.totals = Totals()
        self.slot = -1
        self.active: list[Task] = []
        self.turn = 0  # index into `active` of the task whose turn it is
        self.free_share = np.zeros(self.num_nodes, dtype=np.int64)
        self.free_subcarriers = np.zeros(self.num_subcarriers, dtype=bool)
        self.done = False
        self._next_id = 0
        self._blocked: list[int] = []
        self._start_next_slot()

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def focus(self) -> Task:
        """The task whose turn it is."""
        if self.done:
            raise EdgeprofError("the episode is over")
        return self.active[self.turn]

    def masks(self, task: Task | None = None) -> ActionMasks:
        """What `task` (default: the focus) may do now: nodes it can reach (a link, or its own node) with a free
        share, and, to move, a free subcarrier (eq. 7, 8); block ends from its next layer to L (eq. 9)."""
        task = task or self.focus
        loc = task.location
        reach = self.links[loc].copy()
        reach[loc] = True
        can_move = bool(self.free_subcarriers.any())
        node = reach & (self.free_share >= 1)
        if not can_move:
            node &= np.arange(self.num_nodes) == loc
        end = np.arange(1, self.num_layers + 1) >= task.next_layer
        return ActionMasks(node=node, end=end, share_limit=self.free_share.copy(),
                           subcarriers=self.free_subcarriers.copy(), location=loc)

    def time_left_s(self, task: Task) -> float:
        return self.deadline_s - task.elapsed_s

    def hop(self, task: Task, action: Action) -> Hop:
        """Eq. 1-6 of `action` for `task` (no state changes)."""
        cycles = self.workload.block_cycles(task.next_layer, action.end)
        rate = action.share / SHARES * self.capacity_hz[action.node]
        compute_s = compute_delay_s(cycles, rate)
        compute_j = compute_energy_j(cycles, rate, self.k0)
        transfer_s = transfer_j = 0.0
        if action.node != task.location:
            transfer_s = transfer_delay_s(self.workload.input_bytes_of[task.next_layer - 1],
                                          self.rate_bps[task.location, action.node])
            transfer_j = transfer_energy_j(self.power_w, transfer_s)
        cost = weighted_cost(compute_j + transfer_j, compute_s + transfer_s, self.energy_weight, self.delay_weight)
        return Hop(compute_s, transfer_s, compute_j, transfer_j, cost)

    def check_action(self, action: Action, masks: ActionMasks | None = None) -> None:
        """Raise ValueError unless `action` satisfies the masks (a policy's bug, not a user's error)."""
        masks = masks or self.masks()
        node, end, share, subcarrier = (int(v) for v in action)
        if not (0 <= node < self.num_nodes and masks.node[node]):
            raise ValueError(f"node {node} is not allowed now (allowed: {np.flatnonzero(masks.node).tolist()})")
        if not (1 <= end <= self.num_layers and masks.end[end - 1]):
            raise ValueError(f"block end {end} is not allowed (the next layer is {self.focus.next_layer})")
        if not 1 <= share <= masks.share_limit[node]:
            raise ValueError(f"share {share}% is not allowed on node {node} (1..{masks.share_limit[node]} free)")
        if node != masks.location and not (0 <= subcarrier < self.num_subcarriers and masks.subcarriers[subcarrier]):
            raise ValueError(f"subcarrier {subcarrier} is not free (free: "
                             f"{np.flatnonzero(masks.subcarriers).tolist()})")

    # -- dynamics ------------------------------------------------------------------------------------------

    def step(self, action: Action) -> StepResult:
        """Run the focus task's hop, then pass the turn on (to the next task, or the next slot with its
        arrivals); tasks whose turn comes with nothing allowed fail on the way."""
        self.check_action(action)
        task = self.focus
        action = Action(int(action.node), int(action.end), int(action.share),
                        int(action.subcarrier) if action.node != task.location else -1)
        outcome = self.hop(task, action)
        self.free_share[action.node] -= action.share
        if action.subcarrier >= 0:
            self.free_subcarriers[action.subcarrier] = False
        task.layer_nodes[task.next_layer - 1: action.end] = action.node
        task.next_layer, task.location = action.end + 1, action.node
        task.elapsed_s += outcome.compute_s + outcome.transfer_s
        task.cost += outcome.cost
        task.energy_j += outcome.compute_j + outcome.transfer_j
        task.hops += 1
        self.totals.cost += outcome.cost
        self.totals.energy_j += outcome.compute_j + outcome.transfer_j
        self.totals.decisions += 1
        self._blocked = []
        missed = task.elapsed_s > self.deadline_s
        completed = not missed and task.next_layer > self.num_layers
        if missed or completed:
            self._finish(task, "deadline" if missed else "completed")
        self.turn += 1
        self._advance()
        failed = missed + len(self._blocked)
        return StepResult(-outcome.cost - self.penalty * failed, outcome, failed, completed, missed,
                          tuple(self._blocked))

    def _finish(self, task: Task, how: str) -> None:
        task.next_layer = -1  # marks it done; it leaves `active` at the end of the slot
        if how == "completed":
            self.totals.completed += 1
            self.totals.completed_cost += task.cost
            self.totals.completed_delay_s += task.elapsed_s
        else:
            self.totals.penalties += self.penalty
            if how == "deadline":
                self.totals.failed_deadline += 1
            else:
                self.totals.failed_blocked += 1
                self._blocked.append(task.task_id)
        if len(set(task.layer_nodes[task.layer_nodes >= 0].tolist())) > 1:
            self.totals.collaborations += 1

    def _advance(self) -> None:
        """Move the turn to the next task that can act, failing those that cannot; start slots as needed."""
        while True:
            while self.turn < len(self.active):
                task = self.active[self.turn]
                if task.next_layer > 0:
                    if self.masks(task).node.any():
                        return
                    self._finish(task, "blocked")
                self.turn += 1
            if not self._start_next_slot():
                return

    def _start_next_slot(self) -> bool:
        """Drop finished tasks, add the next slot's arrivals, free every share and subcarrier; False (and
        `done`) when no slot with a task is left."""
        while True:
            self.active = [task for task in self.active if task.next_layer > 0]
            self.slot += 1
            if self.slot < self.slots:
                for device in np.repeat(np.arange(1, self.num_nodes), self.arrivals[self.slot]):
                    self.active.append(Task(self._next_id, int(device), self.slot, 1, int(device),
                                            np.full(self.num_layers, -1, dtype=np.int64)))
                    self._next_id += 1
                    self.totals.tasks += 1
            elif not self.active:
                self.done = True
                return False
            if self.active:
                self.free_share[:] = SHARES
                self.free_subcarriers[:] = True
                self.turn = 0
                return True

    # -- the state graph (sec. 3.1) ------------------------------------------------------------------------

    def graph(self, max_tasks: int | None = None) -> StateGraph:
        """The state for the focus task: it and the other active, unfinished tasks (at most `max_tasks` in
        all, in turn order after it)."""
        focus = self.focus
        others = [task for task in self.active if task is not focus and task.next_layer > 0]
        tasks = [focus, *others][:max_tasks]
        time_left = max(self.time_left_s(focus), 0.0)
        need_hz = (self.workload.total_cycles - self.workload.prefix_cycles[focus.next_layer - 1]) / max(time_left,
                                                                                                       1e-9)
        loc = focus.location
        reach = self.links[loc].copy()
        reach[loc] = True
        free_hz = self.free_share / SHARES * self.capacity_hz
        with np.errstate(divide="ignore"):
            transfer = np.where(reach, 8.0 * self.workload.input_bytes_of[focus.next_layer - 1] / self.rate_bps[loc],
                                np.inf)
        transfer[loc] = 0.0
        compute = np.stack([
            np.arange(self.num_nodes) == 0,
            self.capacity_hz / self.capacity_hz[0],
            np.log10(self.capacity_hz / 1e9),
            self.free_share / SHARES,
            np.minimum(free_hz / need_hz, 4.0) / 4.0,
            np.minimum(need_hz / self.capacity_hz, 2.0) / 2.0,
            np.arange(self.num_nodes) == loc,
            reach,
            np.minimum(transfer / max(time_left, 1e-9), 1.0),
        ], axis=1).astype(np.float32)
        layer_index = np.arange(1, self.num_layers + 1)
        work = self.workload.layer_cycles / self.workload.total_cycles
        output = np.append(self.workload.input_bytes_of[1:], 0.0) / self.workload.input_bytes_of[0]
        layers = np.zeros((len(tasks), self.num_layers, len(LAYER_FEATURES)), dtype=np.float32)
        layer_node = np.zeros((len(tasks), self.num_layers), dtype=np.int64)
        for q, task in enumerate(tasks):
            done = task.layer_nodes >= 0
            left = max(self.time_left_s(task), 1e-9)
            block = self.workload.prefix_cycles[1:] - self.workload.prefix_cycles[task.next_layer - 1]
            with np.errstate(divide="ignore"):
                block_rate = np.clip(np.log10(np.maximum(block, 1.0) / left / 1e9), -3.0, 3.0)
            layers[q, :, 0] = work
            layers[q, :, 1] = output
            layers[q, :, 2] = done
            layers[q, :, 3] = layer_index == task.next_layer
            layers[q, :, 4] = q == 0
            layers[q, :, 5] = max(self.time_left_s(task), 0.0) / self.deadline_s
            layers[q, :, 6] = np.where(done, 0.0, block_rate)
            layer_node[q] = np.where(done, task.layer_nodes, task.location)
        block = np.maximum(self.workload.prefix_cycles[1:] - self.workload.prefix_cycles[focus.next_layer - 1], 0.0)
        reference = self.k0 * self.workload.total_cycles ** 3 / self.deadline_s ** 2
        pairs = np.stack([np.minimum(block[None, :] / (self.capacity_hz[:, None] * max(time_left, 1e-9)), 100.0),
                          self.k0 * block[None, :] * self.capacity_hz[:, None] ** 2 / reference], -1)
        capacity = self.capacity_hz[:, None]
        transfer_s = np.where(reach, transfer, 0.0)[:, None]
        transfer_cost = (self.energy_weight * self.power_w + self.delay_weight) * transfer_s
        hop_cost = np.stack(np.broadcast_arrays(self.energy_weight * self.k0 * block[None, :] * capacity ** 2,
                                                self.delay_weight * block[None, :] / capacity, transfer_cost,
                                                block[None, :] / capacity, self.time_left_s(focus) - transfer_s,
                                                self.penalty), -1)
        return StateGraph(compute=compute, layers=layers, layer_node=layer_node, links=self.links.copy(),
                          pairs=pairs.astype(np.float32), hop_cost=hop_cost.astype(np.float32))

    # -- what the episode reports --------------------------------------------------------------------------

    def metrics(self) -> dict[str, float | None]:
        """`REPORTED` and the counts behind them (per slot: over the `slots` slots that had arrivals). A per-task
        mean over no task (none completed, or none ended) is None: undefined, not 0."""
        t = self.totals
        ended = t.completed + t.failed_deadline + t.failed_blocked
        values = {
            "cost": t.cost / self.slots,
            "cost_per_task": t.completed_cost / t.completed if t.completed else None,
            "completion_rate": t.completed / ended if ended else None,
            "ended_tasks": ended,
            "collaborations": t.collaborations,
            "energy_j": t.energy_j / self.slots,
            "delay_s": t.completed_delay_s / t.completed if t.completed else None,
            "objective": (t.cost + t.penalties) / self.slots,
            "tasks": t.tasks,
            "failed_deadline": t.failed_deadline,
            "failed_blocked": t.failed_blocked,
            "decisions": t.decisions,
        }
        return {name: None if value is None else float(value) for name, value in values.items()}


REPORTED = ("cost", "cost_per_task", "completion_rate", "collaborations", "energy_j", "delay_s", "objective",
            "tasks")


class Policy(Protocol):
    """What acts in this system: the action of the task whose turn it is (`env.focus`), within `env.masks()`."""

    def act(self, env: ChainEnv) -> Action: ...


def play(env: ChainEnv, policy: Policy, progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """Run `policy` until the episode ends; the episode's metrics."""
    while not env.done:
        env.step(policy.act(env))
        if progress:
            progress(min(env.slot, env.slots))
    return env.metrics()


def run_episode(scenario: Any, workload: ChainWorkload, make_policy: Callable[[ChainEnv, int], Policy], slots: int,
                seed: int, num_envs: int = 1, progress: Callable[[int], None] | None = None) -> dict[str, float]:
    """One episode with arrivals during `slots` slots, drawn from `seed`, acted by `make_policy(env, seed)`."""
    if num_envs != 1:
        raise EdgeprofError(f"the cerl system runs one environment per episode, got {num_envs}")
    env = ChainEnv(scenario, workload, slots, seed)
    return play(env, make_policy(env, seed), progress)


SYSTEM = register_system(System(
    name="cerl",
    description="Seed 003 (CERL): chained multi-node inference; per slot and task a node, a block of layers, a "
                "compute share and a subcarrier; cost w_e E + w_d T under a deadline.",
    sections={"system": SystemFields, "radio": RadioFields, "task": TaskFields, "cost": CostFields},
    default_preset="cerl",
    metrics=REPORTED,
    bounded_metrics={"completion_rate": (0.0, 1.0), **dict.fromkeys(
        ("cost", "cost_per_task", "collaborations", "energy_j", "delay_s", "objective", "tasks"), (0.0, math.inf))},
    rate_trials={"completion_rate": "ended_tasks"},  # completed or failed (by deadline or blocked)
    load_workload=load_workload,
    run_episode=run_episode,
    check=check,
))
