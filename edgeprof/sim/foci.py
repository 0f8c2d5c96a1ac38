"""Seed 002's system, `foci`: mobile devices share edges' SMs for split inference, judged by max-min QoS (FOCI).

M battery-powered devices roam an area served by N edges. Every step each device picks an action: edge n with
cut k (layers 1..k on the device, the rest on the edge; k in 0..K-1) or fully local inference (k = K), so
phi = N K + 1 actions (`action_of`, `decode`). Each edge splits its L streaming multiprocessors (SMs) among the
devices connected to it. Per device and step (section 3, eq. 11):

    D   = D_lo + D_tr + D_re             D_lo = device FLOPs(k) / (F_dev x clock ratio)
                                         D_tr = upload bytes(k) x 8 / uplink rate to the edge
                                         D_re(l) = (L / l) x edge FLOPs(k) / F_edge (the suffix on the whole edge)
    E   = P(ratio) x D_lo + P_tx x D_tr  P(ratio) = P_idle + P_dyn x ratio^3 (P_dyn = kappa f_max^3)
    C   = 1 if the chosen edge (local counts as one) differs from the last step's, else 0
    QoS R = -(alpha E + beta D + gamma C)   in SI units (J, s, switches); `qos_cost` is -R, lower is better

and D <= D_st (eq. 2). The fairness oracle's terms (P-EDGE-2) are Rc = alpha E + beta (D_lo + D_tr) + gamma C
and Rf = beta L x suffix latency, so that -R = Rc + Rf / l (`edges.oracle_switch_term = "literal"` moves gamma C
into Rf, as eq. 11 literally writes it). The oracle itself lives downstream (`optimize.fairness`); it
registers here (`register_oracle`) so that `edges.runtime_allocator = "oracle"` can use it.

Where the paper is silent, our choice, each a named field (`edgeprof scenario show foci` documents them):

- Radio: seed 001's model (`sim.radio`, log-distance path loss, Shannon rate) with a dedicated uplink of
  `radio.bandwidth_mhz` per device (the paper models contention only on SMs), at the step's distances.
- The perception radius r_p of a device (section 4.2) is the largest distance at which its fastest offload
  meets D_st with the whole edge (`perception_radius_m`). Actions that cannot meet D_st even with the whole
  edge are masked (`action_mask`): eq. 2 "ensures valid actions". Local inference is always allowed.
- Runtime allocator (`edges.runtime_allocator`): the paper's oracle only shapes rewards and the edges' own
  allocator is not given; default `equal`: floor(L / |M_n|) each, the remainder one each to the devices with
  the most edge work (then the lowest index). An edge with more devices than SMs serves the L with the
  strongest uplinks; the others run locally (`overflow_rate`).
- Switch cost: 1 per change of the chosen edge, local counting as one; none at the first step.
- Step 15 s (`system.step_s`; Porto's fixes are 15 s apart), 240 steps per 1-h episode; every device runs
  `system.inferences_per_s` (24) inferences a second, which drain its battery by E each.
- DVFS: latency / ratio; a battery -> clock-ratio controller, linear from the floor ratio at
  `device.floor_clock_battery_wh` to 1 at `device.full_clock_battery_wh` (App. B.3's controller, Fig. 5c, is
  not given numerically). `device.power_model = "profile"` fits F_dev, P_idle and P_dyn to the profile's
  operating points (`device.operating_points`: latency and energy at several clocks) instead of the fields.
- Edges: seeded k-means (`edges.placement_seed`) on the density of device positions: a trace's fixes, or
  positions the random-waypoint generator visits over an hour.
- Defaults calibrated to Table 1's ALP row: F_dev = 16.87 GFLOP/s makes all-local MobileNetV3-large take
  39.51 ms (ALP's max) at the 0.65 floor, and P(1) = 2.78 W gives ALP's max energy 71.44 mJ at full clock.
  The edge's effective 300 GFLOP/s (1.44 ms for the whole model on all 24 SMs) is our choice.

Metrics of an episode (`run_episode`): means over device-steps (`latency_ms`, `energy_mj`, `qos_cost`), the
worst case over device-steps (`max_*`: Table 1's "max", the tail the paper's claims are about), the worst
device's episode mean (`worst_device_*`, the view of the max-min objective P-MARL), switches per device-hour,
and the rates of D_st violations, offloading and overflow (devices an edge could not serve).
The policy protocol: `policy.act(env) -> (M,) int actions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.sim import model, radio
from edgeprof.sim.fields import Range, declare
from edgeprof.sim.mobility import RandomWaypoint, TraceMobility, kmeans, read_trace
from edgeprof.sim.systems import System, register_system

PLACEMENT_SAMPLE_S = 3600.0  # the random-waypoint positions edges are placed on: one hour of motion
PLACEMENT_MAX_POINTS = 20_000  # k-means runs on at most this many positions (seeded subsample)
MAX_DEVICE_ACTIONS = 50_000_000  # devices x actions beyond this do not fit in one step's tables


@dataclass(frozen=True)
class SystemFields:
    """Size, time and the latency limit."""

    num_devices: int = declare("M, mobile devices", low=1, high=100_000)
    num_edges: int = declare("N, edges", low=1, high=1_000)
    area_m2: float = declare("the square area random-waypoint devices roam (App. B.3: 2.5 km^2); a trace "
                             "brings its own extent", above=0)
    step_s: float = declare("seconds per step (ours: 15 s, Porto's fix interval; 240 steps = a 1-h episode)",
                            above=0)
    latency_limit_s: float = declare("D_st of eq. 2 (1/24 s)", above=0)
    inferences_per_s: float = declare("inferences each device runs per second; each drains E from its "
                                      "battery (ours: 24, the frame rate behind D_st)")


@dataclass(frozen=True)
class ModelFields:
    """The inference model, from a profile."""

    name: str = declare("the model every device runs (section 5: mobilenet_v3_large); a shipped profile or "
                        "model.profile")
    profile: str = declare("path of an edgeprof.profile/1 file of that model; empty: the shipped profile")


@dataclass(frozen=True)
class DeviceFields:
    """The devices: compute, power, radio, battery and DVFS."""

    compute_gflops: float = declare("F_dev at full clock, GFLOP/s (ours: 16.87, so all-local MobileNetV3-large "
                                    "takes Table 1's ALP max 39.51 ms at the 0.65 floor)", above=0)
    idle_power_w: float = declare("P_idle of P(ratio) = P_idle + P_dyn ratio^3, W (ours: 1.0)")
    dynamic_power_w: float = declare("P_dyn = kappa f_max^3, W (ours: 1.78, so P(1) x 25.68 ms = ALP's max "
                                     "71.44 mJ)")
    power_model: str = declare("fields (the values above) or profile (fit F_dev, P_idle and P_dyn to the "
                               "profile's device.operating_points)", choices=("fields", "profile"))
    tx_power_dbm: float = declare("P_tx, uplink transmit power, dBm", low=-100, high=100)
    battery_wh: Range = declare("initial battery, uniform range, Wh (App. B.3: 3-12)")
    min_clock_ratio: float = declare("the clock-ratio floor (App. B.3: 0.65)", above=0, high=1)
    floor_clock_battery_wh: float = declare("controller: at or below this battery the clock runs at the floor")
    full_clock_battery_wh: float = declare("controller: at or above this battery the clock runs at full speed; "
                                           "linear in between", above=0)


@dataclass(frozen=True)
class EdgeFields:
    """The edges: SMs, speed, placement, allocation and the fairness oracle."""

    sms: int = declare("L, allocatable SMs per edge (section 5's '2x12s': 24)", low=1, high=100_000)
    compute_gflops: float = declare("F_edge, effective speed of the whole edge (all L SMs) on the model, "
                                    "GFLOP/s (ours: 300)", above=0)
    placement_seed: int = declare("seed of the k-means edge placement (edges stay put across episodes)")
    runtime_allocator: str = declare("how edges split SMs at run time: equal (ours, the paper gives none) or "
                                     "oracle (the fairness oracle)", choices=("equal", "oracle"))
    oracle_method: str = declare("the fairness oracle: min-risk (IPLS + min-risk rounding, App. A) or greedy "
                                 "(the exact integer optimum)", choices=("min-risk", "greedy"))
    oracle_tolerance: float = declare("eps of IPLS's (1 + eps) grid", above=0, high=1)
    oracle_switch_term: str = declare("gamma C in the oracle's cost: constant (in Rc, ours) or literal (divided "
                                      "by l, as eq. 11 writes it)", choices=("constant", "literal"))


@dataclass(frozen=True)
class RadioFields:
    """The uplink (seed 001's radio model, no shadowing)."""

    bandwidth_mhz: float = declare("uplink bandwidth of each device (dedicated), MHz", above=0)
    reference_path_loss_db: float = declare("path loss at 1 m, dB", low=-300, high=300)
    path_loss_exponent: float = declare("PL(d) = PL(1 m) + 10 n log10(d / 1 m)", above=0, high=10)
    noise_dbm_per_hz: float = declare("thermal noise density N0, dBm/Hz", low=-300, high=0)
    noise_figure_db: float = declare("receiver noise figure, dB", low=0, high=100)
    min_distance_m: float = declare("distances below this are clamped", above=0)


@dataclass(frozen=True)
class MobilityFields:
    """How devices move."""

    source: str = declare("random_waypoint (the seeded generator) or trace (mobility.trace, a trace CSV: "
                          "README, `edgeprof trace porto` converts Porto's taxi data)",
                          choices=("random_waypoint", "trace"))
    trace: str = declare("path of the trace CSV when source = trace")
    speed_mps: Range = declare("random waypoint: speed of each leg, uniform range, m/s", above=0)
    pause_s: Range = declare("random waypoint: pause at each waypoint, uniform range, s")


@dataclass(frozen=True)
class QosFields:
    """Weights of the QoS (section 3; App. B.3: all 1), on SI units."""

    energy_weight: float = declare("alpha, per joule")
    latency_weight: float = declare("beta, per second (positive: the oracle divides the edge term by l)",
                                    above=0)
    switch_weight: float = declare("gamma, per switch")


@dataclass(frozen=True)
class FociWorkload:
    """What episodes need besides the scenario: per cut k = 0..K (K: local) the device FLOPs, edge FLOPs and
    upload bytes; the device's speed and power model; the edges' positions; the area; the trace's trips in
    metres (None for random waypoint)."""

    model: str
    device_flops: np.ndarray
    edge_flops: np.ndarray
    upload_bytes: np.ndarray
    device_flops_per_s: float
    idle_power_w: float
    dynamic_power_w: float
    edge_positions: np.ndarray
    extent_m: np.ndarray
    trip_times_s: tuple[np.ndarray, ...] | None = None
    trip_positions_m: tuple[np.ndarray, ...] | None = None

    @property
    def num_cuts(self) -> int:
        """K: cuts 0..K-1 offload, K is local."""
        return len(self.device_flops) - 1


# DVFS


def clock_ratio(battery_wh: np.ndarray, floor: float, floor_wh: float, full_wh: float) -> np.ndarray:
    """The documented battery -> clock-ratio controller: `floor` at or below `floor_wh`, 1 at or above `full_wh`,
    linear in between."""
    span = max(full_wh - floor_wh, 1e-12)
    fraction = np.clip((np.asarray(battery_wh, dtype=np.float64) - floor_wh) / span, 0.0, 1.0)
    return floor + (1.0 - floor) * fraction


def device_power_w(ratio: np.ndarray, idle_w: float, dynamic_w: float) -> np.ndarray:
    """P(f) = P_idle + kappa f^3 with f = ratio x f_max (dynamic_w = kappa f_max^3)."""
    return idle_w + dynamic_w * np.asarray(ratio, dtype=np.float64) ** 3


def fit_power_model(ratios: np.ndarray, powers_w: np.ndarray) -> tuple[float, float]:
    """(P_idle, P_dyn) of P = P_idle + P_dyn ratio^3 by least squares (both kept non-negative)."""
    ratios, powers = np.asarray(ratios, dtype=np.float64), np.asarray(powers_w, dtype=np.float64)
    if len(ratios) < 2 or len(np.unique(ratios)) < 2:
        raise EdgeprofError("fitting the power model needs measurements at two clocks or more")
    design = np.stack([np.ones_like(ratios), ratios ** 3], axis=-1)
    (idle, dynamic), *_ = np.linalg.lstsq(design, powers, rcond=None)
    if idle < 0 or dynamic < 0:  # refit with the offending term at 0
        if idle < 0:
            idle, dynamic = 0.0, float(np.dot(ratios ** 3, powers) / np.dot(ratios ** 3, ratios ** 3))
        else:
            idle, dynamic = float(powers.mean()), 0.0
    return float(idle), float(dynamic)


def operating_point_model(profile: dict[str, Any], name: str) -> tuple[float, float, float]:
    """(F_dev at the highest clock, P_idle, P_dyn) from a profile's `device.operating_points`: the whole model on
    the device (the last point) gives each clock's latency and power (energy / latency)."""
    points = (profile.get("device") or {}).get("operating_points") or []
    measured = [(p["clock_hz"], p["device_latency_ms"][-1], (p.get("device_energy_mj") or [None])[-1])
                for p in points]
    measured = [(clock, latency, energy) for clock, latency, energy in measured if latency and energy]
    if len(measured) < 2:
        raise EdgeprofError(f"device.power_model = profile needs the {name} profile to hold device.operating_points "
                            "with latency and energy at two clocks or more")
    clocks = np.array([m[0] for m in measured])
    latency_s = np.array([m[1] for m in measured]) * 1e-3
    power_w = np.array([m[2] for m in measured]) * 1e-3 / latency_s
    fastest = int(clocks.argmax())
    flops = float(profile["partition_points"][-1]["device_flops"])
    idle, dynamic = fit_power_model(clocks / clocks[fastest], power_w)
    return flops / latency_s[fastest], idle, dynamic


# Workload


def _random_waypoint(scenario: Any, rng: np.random.Generator, extent: np.ndarray) -> RandomWaypoint:
    return RandomWaypoint(rng, scenario["system.num_devices"], extent, scenario["mobility.speed_mps"],
                          scenario["mobility.pause_s"])


def placement_points(scenario: Any, extent: np.ndarray, trips: tuple[np.ndarray, ...] | None) -> np.ndarray:
    """The positions edges are placed on: every fix of the trace, or an hour of random-waypoint motion of M
    devices seeded by the placement seed; at most PLACEMENT_MAX_POINTS of them (seeded subsample)."""
    rng = np.random.default_rng(scenario["edges.placement_seed"])
    if trips is not None:
        points = np.concatenate(trips)
    else:
        motion = _random_waypoint(scenario, rng, extent)
        steps = max(1, round(PLACEMENT_SAMPLE_S / scenario["system.step_s"]))
        points = np.concatenate([motion.advance(scenario["system.step_s"]).copy() for _ in range(steps)])
    if len(points) > PLACEMENT_MAX_POINTS:
        points = points[rng.choice(len(points), PLACEMENT_MAX_POINTS, replace=False)]
    return points


def load_workload(scenario: Any) -> FociWorkload:
    """The model's per-cut work (from its profile, leakage not needed), the device model, the trace and the
    edges' positions."""
    from edgeprof.sim.workload import read_profile, service_table_from_profiles

    name = scenario["model.name"]
    profile = read_profile(name, scenario["model.profile"] or None)
    table = service_table_from_profiles([name], [profile], 1, require_leakage=False)
    if scenario["device.power_model"] == "profile":
        flops_per_s, idle, dynamic = operating_point_model(profile, name)
    else:
        flops_per_s = scenario["device.compute_gflops"] * 1e9
        idle, dynamic = scenario["device.idle_power_w"], scenario["device.dynamic_power_w"]
    trip_times = trip_positions = None
    if scenario["mobility.source"] == "trace":
        if not scenario["mobility.trace"]:
            raise EdgeprofError("mobility.source = trace needs mobility.trace, the path of a trace CSV")
        trace = read_trace(scenario["mobility.trace"])
        trip_times, trip_positions = trace.times_s, trace.positions_m()
        every = np.concatenate(trip_positions)
        extent = np.maximum(every.max(axis=0), 1.0)
    else:
        side = math.sqrt(scenario["system.area_m2"])
        extent = np.array([side, side])
    edges = kmeans(placement_points(scenario, extent, trip_positions), scenario["system.num_edges"],
                   scenario["edges.placement_seed"])
    return FociWorkload(name, table.device_flops[0].copy(), table.edge_flops[0].copy(), table.upload_bytes[0].copy(),
                        float(flops_per_s), float(idle), float(dynamic), edges, extent, trip_times, trip_positions)


def check(scenario: Any, workload: FociWorkload) -> None:
    """Refuse settings that only make sense together."""
    if scenario["device.floor_clock_battery_wh"] >= scenario["device.full_clock_battery_wh"]:
        raise EdgeprofError("device.floor_clock_battery_wh must lie below device.full_clock_battery_wh")
    actions = scenario["system.num_edges"] * workload.num_cuts + 1
    if scenario["system.num_devices"] * actions > MAX_DEVICE_ACTIONS:
        raise EdgeprofError(f"scenario too large: devices x actions = {scenario['system.num_devices'] * actions:,} "
                            f"exceeds {MAX_DEVICE_ACTIONS:,}")


# The runtime allocators


Allocator = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (Rc, Rf, L) -> integer SMs, >= 1 each, sum L
_ORACLES: dict[str, Callable[[np.ndarray, np.ndarray, int, float], np.ndarray]] = {}


def register_oracle(method: str, allocate: Callable[[np.ndarray, np.ndarray, int, float], np.ndarray]) -> None:
    """Make the fairness oracle `method` (Rc, Rf, L, eps) -> SMs available to `edges.runtime_allocator =
    "oracle"` (`optimize.fairness` registers its methods when imported)."""
    _ORACLES[method] = allocate


def equal_split(rc: np.ndarray, rf: np.ndarray, total: int) -> np.ndarray:
    """floor(L / M) SMs each; the remainder one each to the devices with the most edge work (Rf), ties to the
    lowest index."""
    count = len(rf)
    sms = np.full(count, total // count, dtype=np.int64)
    sms[np.argsort(-np.asarray(rf), kind="stable")[: total - sms.sum()]] += 1
    return sms


def runtime_allocator(scenario: Any) -> Allocator:
    """The scenario's runtime allocator: `equal_split`, or the registered fairness oracle."""
    if scenario["edges.runtime_allocator"] == "equal":
        return equal_split
    method, eps = scenario["edges.oracle_method"], scenario["edges.oracle_tolerance"]
    if method not in _ORACLES:
        raise EdgeprofError(f"edges.runtime_allocator = oracle needs the {method} oracle: import "
                            "edgeprof.optimize.fairness, which registers it")
    oracle = _ORACLES[method]
    return lambda rc, rf, total: oracle(rc, rf, total, eps)


# The episode


def action_of(edge: np.ndarray, cut: np.ndarray, num_edges: int, num_cuts: int) -> np.ndarray:
    """Action index of (edge n, cut k), with edge = num_edges (or cut = num_cuts) meaning local: n K + k, or N K."""
    edge, cut = np.asarray(edge), np.asarray(cut)
    local = (edge >= num_edges) | (cut >= num_cuts)
    return np.where(local, num_edges * num_cuts, edge * num_cuts + np.minimum(cut, num_cuts - 1))


def decode(actions: np.ndarray, num_edges: int, num_cuts: int) -> tuple[np.ndarray, np.ndarray]:
    """(edge, cut) of each action: edge N and cut K for local."""
    actions = np.asarray(actions)
    local = actions == num_edges * num_cuts
    return np.where(local, num_edges, actions // num_cuts), np.where(local, num_cuts, actions % num_cuts)


@dataclass(frozen=True)
class StepOutcome:
    """What one step did, per device (M,): the chosen edge (N: local) and cut, the edge that served it (-1:
    local, by choice or overflow) with its SMs (0 if none), latency, energy, switch, the QoS cost -R, and the
    oracle's terms Rc, Rf (0 for local devices)."""

    choice: np.ndarray
    cut: np.ndarray
    served_by: np.ndarray
    sms: np.ndarray
    latency_s: np.ndarray
    energy_j: np.ndarray
    switched: np.ndarray
    cost: np.ndarray
    rc: np.ndarray
    rf: np.ndarray
    overflow: np.ndarray
    violation: np.ndarray


class FociEnv:
    """One episode of the `foci` system from a seed (batteries, starting positions, motion).

    After construction and after each `step`, the state of the step about to be decided is exposed: positions,
    distances and uplink rates to every edge, clock ratios, the whole-edge latency and energy of every action
    (M, phi), the action mask, perception radii, and the edges' records of the last step's cuts."""

    def __init__(self, scenario: Any, workload: FociWorkload, seed: int) -> None:
        self.scenario, self.workload = scenario, workload
        self.num_devices, self.num_edges = scenario["system.num_devices"], scenario["system.num_edges"]
        self.num_cuts = workload.num_cuts
        self.num_actions = self.num_edges * self.num_cuts + 1
        self.sms, self.step_s = scenario["edges.sms"], scenario["system.step_s"]
        self.limit_s = scenario["system.latency_limit_s"]
        self.weights = (scenario["qos.energy_weight"], scenario["qos.latency_weight"], scenario["qos.switch_weight"])
        self.allocate = runtime_allocator(scenario)
        self.bandwidth_hz = scenario["radio.bandwidth_mhz"] * 1e6
        self.tx_power_w = float(radio.dbm_to_watts(scenario["device.tx_power_dbm"]))
        self.edge_flops_per_s = scenario["edges.compute_gflops"] * 1e9
        self.suffix_s = model.edge_delay_s(1, workload.edge_flops, self.edge_flops_per_s)  # (K + 1,) whole edge
        self.rng = np.random.default_rng(seed)
        self.battery_wh = self.rng.uniform(*scenario["device.battery_wh"], self.num_devices)
        if workload.trip_times_s is None:
            self.mobility = _random_waypoint(scenario, self.rng, workload.extent_m)
        else:
            self.mobility = TraceMobility(self.rng, self.num_devices, workload.trip_times_s, workload.trip_positions_m)
        self.positions = self.mobility.positions.copy()
        self.t = 0
        self.previous_choice = np.full(self.num_devices, -1)  # edge index, N for local; -1 before the first step
        self.last_actions = np.full(self.num_devices, -1)
        self.records = np.zeros((self.num_edges, self.num_cuts), dtype=np.int64)  # F^n of the last step (eq. 5)
        self._observe()

    def _observe(self) -> None:
        scenario, workload = self.scenario, self.workload
        self.clock_ratio = clock_ratio(self.battery_wh, scenario["device.min_clock_ratio"],
                                       scenario["device.floor_clock_battery_wh"],
                                       scenario["device.full_clock_battery_wh"])
        self.power_w = device_power_w(self.clock_ratio, workload.idle_power_w, workload.dynamic_power_w)
        self.distances_m = radio.distances_m(self.positions, workload.edge_positions,
                                             scenario["radio.min_distance_m"])  # (M, N)
        gain = radio.channel_gain(radio.path_loss_db(self.distances_m, scenario["radio.reference_path_loss_db"],
                                                     scenario["radio.path_loss_exponent"]))
        self.uplink_bps = radio.shannon_rate_bps(self.bandwidth_hz, self.tx_power_w, gain,
                                                 scenario["radio.noise_dbm_per_hz"], scenario["radio.noise_figure_db"])
        speed = workload.device_flops_per_s * self.clock_ratio
        self.local_latency_s = model.local_delay_s(1, workload.device_flops[None, :], speed[:, None])  # (M, K + 1)
        k = self.num_cuts
        upload_s = model.upload_delay_s(1, workload.upload_bytes[None, None, :k], self.uplink_bps[:, :, None])
        latency = self.local_latency_s[:, None, :k] + upload_s + self.suffix_s[None, None, :k]  # (M, N, K)
        energy = self.power_w[:, None, None] * self.local_latency_s[:, None, :k] + model.transmit_energy_j(
            self.tx_power_w, upload_s)
        local = self.local_latency_s[:, k]
        self.whole_edge_latency_s = np.concatenate([latency.reshape(self.num_devices, -1), local[:, None]], axis=1)
        self.whole_edge_energy_j = np.concatenate([energy.reshape(self.num_devices, -1),
                                                   (self.power_w * local)[:, None]], axis=1)
        self.mask = self.whole_edge_latency_s <= self.limit_s
        self.mask[:, -1] = True
        self.perception_radius_m = self._perception_radius()

    def _perception_radius(self) -> np.ndarray:
        """r_p (M,): the largest distance at which some cut meets D_st with the whole edge (0: none does)."""
        scenario, k = self.scenario, self.num_cuts
        slack = self.limit_s - self.local_latency_s[:, :k] - self.suffix_s[None, :k]  # (M, K)
        upload_bits = model.BITS_PER_BYTE * self.workload.upload_bytes[None, :k]
        needed_bps = np.where(slack > 0, upload_bits / np.where(slack > 0, slack, 1.0), np.inf)
        reach = radio.distance_for_rate_m(needed_bps, self.bandwidth_hz, self.tx_power_w,
                                          scenario["radio.noise_dbm_per_hz"], scenario["radio.noise_figure_db"],
                                          scenario["radio.reference_path_loss_db"],
                                          scenario["radio.path_loss_exponent"])
        return np.where(np.isfinite(needed_bps), reach, 0.0).max(axis=1)

    def competitor_records(self) -> np.ndarray:
        """F^m_{t-1} of eq. 5 (M, N, K): each edge's histogram of the last step's cuts where the edge lies within
        the device's perception radius, zeros elsewhere."""
        near = self.distances_m <= self.perception_radius_m[:, None]
        return np.where(near[:, :, None], self.records[None, :, :], 0)

    def step(self, actions: np.ndarray) -> StepOutcome:
        """Score every device's action (M,) and move on by one step (batteries, positions, records)."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_devices,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be ({self.num_devices},) integers, got {actions.shape} {actions.dtype}")
        if actions.min() < 0 or actions.max() >= self.num_actions:
            raise ValueError(f"actions must lie in [0, {self.num_actions})")
        alpha, beta, gamma = self.weights
        devices = np.arange(self.num_devices)
        choice, cut = decode(actions, self.num_edges, self.num_cuts)
        switched = (self.previous_choice >= 0) & (choice != self.previous_choice)
        switch_cost = gamma * switched
        offload = choice < self.num_edges
        edge = np.where(offload, choice, 0)
        upload_s = np.where(offload, model.upload_delay_s(1, self.workload.upload_bytes[cut],
                                                          self.uplink_bps[devices, edge]), 0.0)
        served_by = np.where(offload, choice, -1)
        overflow = np.zeros(self.num_devices, dtype=bool)
        for n in range(self.num_edges):
            members = np.flatnonzero(served_by == n)
            if len(members) > self.sms:  # the strongest uplinks are served, the rest run locally
                order = members[np.lexsort((members, -self.uplink_bps[members, n]))]
                overflow[order[self.sms:]] = True
        served_by = np.where(overflow, -1, served_by)
        at_edge = served_by >= 0
        cut_run = np.where(at_edge, cut, self.num_cuts)
        local_s = self.local_latency_s[devices, cut_run]
        upload_s = np.where(at_edge, upload_s, 0.0)
        energy = self.power_w * local_s + model.transmit_energy_j(self.tx_power_w, upload_s)
        rf = np.where(at_edge, beta * self.sms * self.suffix_s[cut_run], 0.0)
        rc = alpha * energy + beta * (local_s + upload_s)
        if self.scenario["edges.oracle_switch_term"] == "literal":
            rf = np.where(at_edge, rf + switch_cost, 0.0)
            rc = np.where(at_edge, rc, rc + switch_cost)
        else:
            rc = rc + switch_cost
        sms = np.zeros(self.num_devices, dtype=np.int64)
        records = np.zeros_like(self.records)
        for n in range(self.num_edges):
            members = np.flatnonzero(served_by == n)
            if len(members):
                sms[members] = self.allocate(rc[members], rf[members], self.sms)
                records[n] = np.bincount(cut_run[members], minlength=self.num_cuts)[: self.num_cuts]
        remote_s = model.edge_delay_s(1, self.workload.edge_flops[cut_run],
                                      self.edge_flops_per_s * sms / self.sms)
        latency = local_s + upload_s + remote_s
        cost = alpha * energy + beta * latency + switch_cost
        outcome = StepOutcome(choice, cut, served_by, sms, latency, energy, switched, cost, rc, rf, overflow,
                              latency > self.limit_s * (1 + 1e-12))
        drain_j = energy * self.scenario["system.inferences_per_s"] * self.step_s
        self.battery_wh = np.maximum(self.battery_wh - drain_j / 3600.0, 0.0)
        self.positions = self.mobility.advance(self.step_s).copy()
        self.previous_choice, self.last_actions, self.records = choice, actions.copy(), records
        self.t += 1
        self._observe()
        return outcome


class EpisodeTotals:
    """Running sums and maxima of an episode, per device, and what `run_episode` reports from them."""

    def __init__(self, num_devices: int) -> None:
        self.sums = {name: np.zeros(num_devices) for name in ("latency", "energy", "cost", "switches")}
        self.peaks = dict.fromkeys(("latency", "energy", "cost"), 0.0)
        self.counts = dict.fromkeys(("violations", "offloads", "overflows", "device_steps"), 0)
        self.steps = 0

    def add(self, outcome: StepOutcome) -> None:
        values = {"latency": outcome.latency_s, "energy": outcome.energy_j, "cost": outcome.cost}
        for name, value in values.items():
            self.sums[name] += value
            self.peaks[name] = max(self.peaks[name], float(value.max()))
        self.sums["switches"] += outcome.switched
        self.counts["violations"] += int(outcome.violation.sum())
        self.counts["offloads"] += int((outcome.served_by >= 0).sum())
        self.counts["overflows"] += int(outcome.overflow.sum())
        self.counts["device_steps"] += len(outcome.cost)
        self.steps += 1

    def metrics(self, step_s: float) -> dict[str, float]:
        mean = {name: values / max(self.steps, 1) for name, values in self.sums.items()}
        hours = self.steps * step_s / 3600.0
        device_steps = max(self.counts["device_steps"], 1)
        return {
            "latency_ms": 1e3 * float(mean["latency"].mean()),
            "max_latency_ms": 1e3 * self.peaks["latency"],
            "worst_device_latency_ms": 1e3 * float(mean["latency"].max()),
            "energy_mj": 1e3 * float(mean["energy"].mean()),
            "max_energy_mj": 1e3 * self.peaks["energy"],
            "worst_device_energy_mj": 1e3 * float(mean["energy"].max()),
            "switches_per_hour": float(self.sums["switches"].mean() / hours) if hours else 0.0,
            "qos_cost": float(mean["cost"].mean()),
            "max_qos_cost": self.peaks["cost"],
            "worst_device_qos_cost": float(mean["cost"].max()),
            "violation_rate": self.counts["violations"] / device_steps,
            "offload_rate": self.counts["offloads"] / device_steps,
            "overflow_rate": self.counts["overflows"] / device_steps,
            "device_steps": self.counts["device_steps"],
        }


REPORTED = ("latency_ms", "max_latency_ms", "worst_device_latency_ms", "energy_mj", "max_energy_mj",
            "worst_device_energy_mj", "switches_per_hour", "qos_cost", "max_qos_cost", "worst_device_qos_cost",
            "violation_rate", "offload_rate", "overflow_rate")


def run_episode(scenario: Any, workload: FociWorkload, make_policy: Callable[[FociEnv, int], Any], slots: int,
                seed: int, num_envs: int = 1, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One episode of `slots` steps from `seed`, acted by `make_policy(env, seed)` (`policy.act(env)` gives every
    device's action): the reported metrics (module docstring)."""
    if num_envs != 1:
        raise EdgeprofError("the foci system runs one environment per episode: leave --envs at 1")
    env = FociEnv(scenario, workload, seed)
    policy = make_policy(env, seed)
    totals = EpisodeTotals(env.num_devices)
    for slot in range(slots):
        totals.add(env.step(policy.act(env)))
        if progress:
            progress(slot + 1)
    return totals.metrics(env.step_s)


SYSTEM = register_system(System(
    name="foci",
    description="Seed 002 (FOCI): mobile devices choose an edge and a cut each step; edges split their SMs; "
                "max-min QoS over latency, energy and switch cost under mobility and DVFS.",
    sections={"system": SystemFields, "model": ModelFields, "device": DeviceFields, "edges": EdgeFields,
              "radio": RadioFields, "mobility": MobilityFields, "qos": QosFields},
    default_preset="foci",
    metrics=REPORTED,
    bounded_metrics={**dict.fromkeys(REPORTED, (0.0, math.inf)),  # latencies, energies, switches, -R: all >= 0
                     "violation_rate": (0.0, 1.0), "offload_rate": (0.0, 1.0), "overflow_rate": (0.0, 1.0)},
    rate_trials=dict.fromkeys(("violation_rate", "offload_rate", "overflow_rate"), "device_steps"),
    load_workload=load_workload,
    run_episode=run_episode,
    check=check,
))
