"""Seed 001's resource allocation (C5, C6) once association and partition are fixed.

With every user's server and partition point chosen, the split of each server's compute and bandwidth is a
convex problem of its own, separable per server and per resource. Every function here returns shares (E, K) of
the associated server's capacity, ready for `edgeprof.sim.core.evaluate`: each server's shares sum to at most 1
(C5, C6), and a user who needs nothing from its server, or whose service is not deployed there (it fails
whatever it gets), gets nothing.

Rates. The simulator's noise grows with the allocated bandwidth (`radio.shannon_rate_bps`), so a user's rate is
concave, not linear, in its share s of the server's band B_j: R = B_j rho(s), rho(s) = s log2(1 + snr / s), with
snr = P g / (N0 NF B_j) the SNR over the whole band. The user's prefix download (server power) and feature upload
(its own power) both run over its one share. A "load" is bits / B_j, so a transfer takes load / rho(s) seconds.

Which solver is exact when:

- `sqrt_rule_shares`: min sum_k cost_k / s_k, s_k = sqrt(cost_k) / sum sqrt(cost). Exact for compute (cost =
  weight x edge seconds at the whole server) and for bandwidth at a fixed spectral efficiency r_k (cost = weight
  x load / r_k): the seed's eq. read with a fixed noise power sigma^2. For the simulator's rate, an approximation.
- `noise_limited_bandwidth_shares`: the bandwidth problem for the simulator's rate, exact (dual search).
- `minmax_linear_shares`: min max_k a_k / f_k + b_k / s_k, closed form (research/marl.md 4.2), exact at fixed
  spectral efficiencies; with b = 0 it is f_k = a_k / A, t = A / F.
- `minmax_noise_limited_shares`: min max of the users' whole delays (local time included) for the simulator's
  rate, exact (bisection on the latency).
- `convex_server_allocation`, `convex_allocation`: cvxpy (exponential cone), any convex objective of the delays,
  optional minimum rates; for what has no closed form, and as the tests' reference.

High level: build an `AllocationProblem` once per slot (`from_system` or `from_core`), then call
`sum_delay_allocation`, `weighted_allocation`, `minmax_allocation` or `convex_allocation` on it. Equal shares
are `edgeprof.sim.core.equal_shares`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgeprof.sim import core, model, radio
from edgeprof.sim.core import Entities, SlotDraw
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.workload import ServiceTable

if TYPE_CHECKING:
    import cvxpy as cp  # imported where a convex model is built: most users of this module never need it

LN2 = math.log(2.0)
ROOT_TOLERANCE = 1e-12  # on logarithms of shares and prices, and relative on latencies
RESIDUAL_TOLERANCE = 1e-13  # on log residuals (relative error of a sum or a latency): float64 rounding is ~1e-15
_SERIES_BELOW = 1e-3  # below this x, ln(1 + x) - x / (1 + x) loses digits: use its series
_LOG_PRICE_LIMIT = 700.0  # |log nu| beyond this overflows float64
MIN_DELAY_WEIGHT = 1e-6  # the smallest weight on delay in `objective_weights` (see there)

ObjectiveOfDelays = Callable[["cp.Expression"], "cp.Expression"]
OBJECTIVES = ("sum", "max", "sum_squares")  # cvxpy's functions of these names


@dataclass(frozen=True)
class AllocationProblem:
    """What the allocation sees of one slot once association and partition are fixed, per user (E, K).

    The per-sample workload and the prefix still to download are taken exactly as `core.evaluate` takes them;
    the server fields are those of each user's associated server. Derived loads in share units are properties.
    """

    association: np.ndarray  # server index
    num_servers: int
    batch: np.ndarray  # D_in
    edge_flops: np.ndarray  # per sample, layers z+1..L (Omega_E)
    upload_bytes: np.ndarray  # per sample (D_up)
    download_bytes: np.ndarray  # the prefix parameters still to download (D_U less what the cache holds)
    local_s: np.ndarray  # tau_U, the same whatever the allocation
    server_flops_per_s: np.ndarray  # f_j
    server_bandwidth_hz: np.ndarray  # B_j
    uplink_received_w: np.ndarray  # P_k g
    downlink_received_w: np.ndarray  # P_j g
    noise_dbm_per_hz: float
    noise_figure_db: float
    served: np.ndarray  # x_ij y_jk: the request can succeed at its server

    @classmethod
    def from_core(
        cls,
        table: ServiceTable,
        scenario: Scenario,
        entities: Entities,
        slot: SlotDraw,
        deployment: np.ndarray,
        association: np.ndarray,
        z: np.ndarray,
        cache_depth: np.ndarray | None = None,
    ) -> AllocationProblem:
        """The problem from the core's objects (the cache counts only with `users.prefix_cache`, as in
        `evaluate`); invalid association or partition raise ValueError like `evaluate`."""
        association, z = np.asarray(association), np.asarray(z)
        no_share = np.zeros(association.shape)
        core.check_actions(table, entities, slot, deployment, association, z, no_share, no_share)
        envs = np.arange(entities.num_envs)[:, None]
        users = np.arange(entities.num_users)[None, :]
        requests = slot.requests
        held = 0.0
        if cache_depth is not None and scenario["users.prefix_cache"]:
            held = core.cached_prefix_bytes(table, requests, cache_depth)
        gain = slot.gains[envs, association, users]
        return cls(
            association=association,
            num_servers=entities.num_servers,
            batch=slot.batch,
            edge_flops=table.edge_flops[requests, z],
            upload_bytes=table.upload_bytes[requests, z],
            download_bytes=model.prefix_download_bytes(table.prefix_param_bytes[requests, z], held),
            local_s=model.local_delay_s(slot.batch, table.device_flops[requests, z], entities.user_flops_per_s),
            server_flops_per_s=entities.server_flops_per_s[envs, association],
            server_bandwidth_hz=entities.server_bandwidth_hz[envs, association],
            uplink_received_w=entities.user_tx_power_w * gain,
            downlink_received_w=entities.server_tx_power_w[envs, association] * gain,
            noise_dbm_per_hz=scenario["radio.noise_dbm_per_hz"],
            noise_figure_db=scenario["radio.noise_figure_db"],
            served=model.served_by_deployment(deployment, requests, association),
        )

    @classmethod
    def from_system(cls, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> AllocationProblem:
        """The problem of `system`'s current slot (its deployment, channels and prefix caches)."""
        return cls.from_core(system.table, system.scenario, system.entities, system.slot, system.deployment,
                             association, z, system.cache.depth)

    @property
    def compute_s(self) -> np.ndarray:
        """D_in x Omega_E / f_j: edge seconds with the whole server (0 for users not served)."""
        return np.where(self.served, self.batch * self.edge_flops / self.server_flops_per_s, 0.0)

    @property
    def upload_load(self) -> np.ndarray:
        """Upload bits / B_j (0 for users not served)."""
        bits = model.BITS_PER_BYTE * self.batch * self.upload_bytes
        return np.where(self.served, bits / self.server_bandwidth_hz, 0.0)

    @property
    def download_load(self) -> np.ndarray:
        """Prefix download bits / B_j (0 for users not served)."""
        bits = model.BITS_PER_BYTE * self.download_bytes
        return np.where(self.served, bits / self.server_bandwidth_hz, 0.0)

    @property
    def uplink_snr(self) -> np.ndarray:
        """P_k g / (N0 NF B_j): the uplink SNR over the server's whole band."""
        return self.uplink_received_w / self._band_noise_w()

    @property
    def downlink_snr(self) -> np.ndarray:
        """P_j g / (N0 NF B_j): the downlink SNR over the server's whole band."""
        return self.downlink_received_w / self._band_noise_w()

    def _band_noise_w(self) -> np.ndarray:
        return radio.noise_power_w(self.server_bandwidth_hz, self.noise_dbm_per_hz, self.noise_figure_db)

    def success_delays(self, compute_share: np.ndarray, bandwidth_share: np.ndarray) -> np.ndarray:
        """(E, K) eq. 4 with these shares, computed as `core.evaluate` computes it (its `delay_s` for every user
        whose request succeeds)."""
        bandwidth = bandwidth_share * self.server_bandwidth_hz
        noise = (self.noise_dbm_per_hz, self.noise_figure_db)
        uplink = radio.shannon_rate_bps(bandwidth, self.uplink_received_w, 1.0, *noise)
        downlink = radio.shannon_rate_bps(bandwidth, self.downlink_received_w, 1.0, *noise)
        return model.success_delay_s(
            model.download_delay_s(self.download_bytes, downlink),
            self.local_s,
            model.upload_delay_s(self.batch, self.upload_bytes, uplink),
            model.edge_delay_s(self.batch, self.edge_flops, compute_share * self.server_flops_per_s),
        )


def _flat_servers(association: np.ndarray, num_servers: int) -> np.ndarray:
    """(E, K) index env x J + server: one id per (environment, server) pair."""
    return np.arange(association.shape[0])[:, None] * num_servers + association


def _fit_to_capacity(share: np.ndarray, association: np.ndarray, num_servers: int) -> np.ndarray:
    """Shares made >= 0 and scaled down on any server whose sum exceeds 1 (a solver's last-digit excess)."""
    share = np.maximum(share, 0.0)
    sums = model.per_server_sum(share, association, num_servers)
    return share / np.maximum(np.take_along_axis(sums, association, axis=1), 1.0)


def _check_nonnegative(**arrays: np.ndarray | float) -> None:
    for name, array in arrays.items():
        if np.any(np.asarray(array) < 0):
            raise ValueError(f"{name} must be >= 0")


def sqrt_rule_shares(cost: np.ndarray, association: np.ndarray, num_servers: int) -> np.ndarray:
    """(E, K) shares minimising sum_k cost_k / share_k per server: share_k = sqrt(cost_k) / sum sqrt(cost).

    Cauchy-Schwarz makes this exact for any term inversely proportional to the share: compute (cost = weight x
    edge seconds at the whole server) and bandwidth at fixed spectral efficiencies. The optimum per server is
    (sum sqrt(cost))^2. Users with cost 0 get 0.
    """
    cost = np.asarray(cost, dtype=np.float64)
    _check_nonnegative(cost=cost)
    root = np.sqrt(cost)
    total = np.take_along_axis(model.per_server_sum(root, association, num_servers), association, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _fit_to_capacity(np.where(root > 0, root / total, 0.0), association, num_servers)


def linear_rate_transfer_cost(upload_load: np.ndarray, download_load: np.ndarray, uplink_snr: np.ndarray,
                              downlink_snr: np.ndarray) -> np.ndarray:
    """load / log2(1 + snr) summed over both links: the transfer seconds with the whole band at the spectral
    efficiency of the whole band (noise power fixed at N0 NF B_j). `sqrt_rule_shares` of it is the textbook
    bandwidth split; it is exact when the noise power does not depend on the share."""
    return upload_load / np.log2(1.0 + uplink_snr) + download_load / np.log2(1.0 + downlink_snr)


def _rate_gap(x: np.ndarray) -> np.ndarray:
    """ln(1 + x) - x / (1 + x) >= 0 (rho'(s) ln 2 at x = snr / s), by its series where the difference cancels."""
    small = np.where(x < _SERIES_BELOW, x, 0.0)
    series = small**2 * (1 / 2 - small * (2 / 3 - small * (3 / 4 - small * (4 / 5 - small * (5 / 6 - small * 6 / 7)))))
    return np.where(x < _SERIES_BELOW, series, np.log1p(x) - x / (1.0 + x))


def _transfer_terms(
    share: np.ndarray, upload_load: np.ndarray, download_load: np.ndarray, uplink_snr: np.ndarray,
    downlink_snr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At shares > 0: the transfer time phi = sum load / rho(share), its marginal value m = -d phi / d share,
    and the elasticity d log m / d log share, which lies in [-2, -1.79] for every snr and share (so Newton's
    method on log m against log share cuts its error at least 8-fold per step from anywhere)."""
    time = np.zeros_like(share)
    marginal = np.zeros_like(share)
    elasticity_sum = np.zeros_like(share)
    for load, snr in ((upload_load, uplink_snr), (download_load, downlink_snr)):
        x = snr / share
        log_term = np.log1p(x)
        gap = _rate_gap(x)
        time += load * LN2 / (share * log_term)
        link_marginal = load * LN2 * gap / (share * log_term) ** 2
        marginal += link_marginal
        elasticity_sum -= link_marginal * (x**2 / (1.0 + x) ** 2 + 2.0 * gap**2 / log_term) / gap
    return time, marginal, elasticity_sum / marginal


def transfer_time_and_slope(share: np.ndarray, upload_load: np.ndarray, download_load: np.ndarray,
                            uplink_snr: np.ndarray, downlink_snr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At bandwidth shares > 0: the (weighted) seconds of both transfers, sum load / rho(share), and their
    derivative in the share (negative: more band, less time). Convex and decreasing in the share."""
    with np.errstate(invalid="ignore", divide="ignore"):  # the unused elasticity is 0 / 0 without any load
        time, marginal, _ = _transfer_terms(np.asarray(share, float), np.asarray(upload_load, float),
                                            np.asarray(download_load, float), np.asarray(uplink_snr, float),
                                            np.asarray(downlink_snr, float))
    return time, -marginal


def _safeguarded_newton(
    residual: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    low: np.ndarray,
    high: np.ndarray,
    start: np.ndarray,
    tolerance: float = ROOT_TOLERANCE,
    max_iterations: int = 300,
) -> np.ndarray:
    """Entrywise root of a decreasing function (value, slope) = residual(x) bracketed by [low, high]: a Newton
    step where it stays inside the bracket, else bisection. The bracket only shrinks, so it is a bisection that
    Newton steps accelerate. Done where the step is within `tolerance` or the value (a log residual) within
    RESIDUAL_TOLERANCE: where the function is nearly flat, x itself hardly matters."""
    x = np.clip(start, low, high)
    for _ in range(max_iterations):
        value, slope = residual(x)
        low = np.where(value > 0, x, low)
        high = np.where(value < 0, x, high)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - value / slope
        following = np.where((newton >= low) & (newton <= high), newton, 0.5 * (low + high))
        following = np.where(value == 0, x, following)
        if np.all((np.abs(following - x) <= tolerance) | (np.abs(value) <= RESIDUAL_TOLERANCE)):
            return following
        x = following
    raise RuntimeError("safeguarded Newton did not converge: non-finite inputs?")


def _compact_servers(users_server: np.ndarray) -> tuple[np.ndarray, int]:
    """Each user's position among the distinct servers present, and how many there are."""
    distinct, position = np.unique(users_server, return_inverse=True)
    return position, len(distinct)


def _per_server(values: np.ndarray, position: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(position, weights=values, minlength=count)


def _server_extreme(values: np.ndarray, position: np.ndarray, count: int, largest: bool) -> np.ndarray:
    extreme = np.full(count, -np.inf if largest else np.inf)
    (np.maximum if largest else np.minimum).at(extreme, position, values)
    return extreme


def noise_limited_bandwidth_shares(
    upload_load: np.ndarray,
    download_load: np.ndarray,
    uplink_snr: np.ndarray,
    downlink_snr: np.ndarray,
    association: np.ndarray,
    num_servers: int,
) -> np.ndarray:
    """(E, K) bandwidth shares minimising sum_k upload_load_k / rho(s_k, uplink_snr_k) + download_load_k /
    rho(s_k, downlink_snr_k) per server, rho(s, snr) = s log2(1 + snr / s): exact for the simulator's rate.

    Loads carry any weights (delay, mu2 P_k for transmit energy, lambda / K...). Each term is convex and
    decreasing, so at the optimum every user with a load has the same marginal value m_k(s_k) = nu, the
    bandwidth price, and the band is used up. Per server, a search on log nu (bisection kept in the bracket of
    the prices at the equal split, accelerated by Newton steps) finds sum_k s_k(nu) = 1; each s_k(nu) is a
    Newton root in log-log coordinates, where m_k has slope in [-2, -1.79]. The linear-rate closed form is the
    starting point; shares are exact to about 1e-12 and rescaled to sum to exactly 1.
    """
    upload_load, download_load = np.asarray(upload_load, float), np.asarray(download_load, float)
    _check_nonnegative(upload_load=upload_load, download_load=download_load)
    shares = np.zeros(upload_load.shape)
    needs = (upload_load > 0) | (download_load > 0)
    if not needs.any():
        return shares
    up, down, snr_up, snr_down = (np.asarray(a, float)[needs] for a in (upload_load, download_load, uplink_snr,
                                                                        downlink_snr))
    position, num_active = _compact_servers(_flat_servers(association, num_servers)[needs])

    def marginal_terms(share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, marginal, elasticity = _transfer_terms(share, up, down, snr_up, snr_down)
        return np.log(marginal), elasticity

    equal_log_price, _ = marginal_terms(1.0 / np.bincount(position)[position])
    low = _server_extreme(equal_log_price, position, num_active, largest=False)
    high = _server_extreme(equal_log_price, position, num_active, largest=True)
    linear_cost = linear_rate_transfer_cost(up, down, snr_up, snr_down)
    log_share = np.log(np.sqrt(linear_cost) / _per_server(np.sqrt(linear_cost), position, num_active)[position])
    start_log_price, _ = marginal_terms(np.exp(log_share))
    start = _per_server(start_log_price, position, num_active) / np.bincount(position)

    def solve_shares(log_price: np.ndarray) -> np.ndarray:
        """Each user's log share at its server's price (Newton, warm-started); returns the elasticities."""
        nonlocal log_share
        target = log_price[position]
        for _ in range(100):
            log_marginal, elasticity = marginal_terms(np.exp(log_share))
            step = (log_marginal - target) / elasticity
            log_share = log_share - step
            if np.max(np.abs(step)) <= ROOT_TOLERANCE:
                return elasticity
        raise RuntimeError("bandwidth shares did not converge: non-finite loads or SNRs?")

    def excess(log_price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log of the server's summed shares at this price, and its slope in log price."""
        elasticity = solve_shares(log_price)
        share = np.exp(log_share)
        total = _per_server(share, position, num_active)
        return np.log(total), _per_server(share / elasticity, position, num_active) / total

    solve_shares(_safeguarded_newton(excess, low, high, start))
    share = np.exp(log_share)
    shares[needs] = share / _per_server(share, position, num_active)[position]
    return _fit_to_capacity(shares, association, num_servers)


def minmax_linear_shares(
    compute_s: np.ndarray, transfer_s: np.ndarray, association: np.ndarray, num_servers: int
) -> tuple[np.ndarray, np.ndarray]:
    """(compute, bandwidth) shares (E, K) minimising the largest a_k / f_k + b_k / s_k per server, with a =
    `compute_s` (seconds with the whole server) and b = `transfer_s` (seconds with the whole band at a fixed
    spectral efficiency, e.g. `linear_rate_transfer_cost`). Closed form (research/marl.md 4.2, capacities 1):

        A = sum a, S = sum b, C = sum sqrt(a b);  t = (A + S + sqrt((A - S)^2 + 4 C^2)) / 2, the larger root of
        (t - A)(t - S) = C^2;  f_k = (a_k + sqrt(a_k b_k) rho) / t,  s_k = (b_k + sqrt(a_k b_k) / rho) / t,
        rho = (t - A) / C.

    Every user with a need finishes at t; both resources are used up when some user needs both (C > 0). When
    none does, t = max(A, S) (t = A / F for compute only) and the other resource keeps its slack.
    """
    a, b = np.asarray(compute_s, float), np.asarray(transfer_s, float)
    _check_nonnegative(compute_s=a, transfer_s=b)
    both = np.sqrt(a * b)
    total_a, total_b, total_both = (model.per_server_sum(v, association, num_servers) for v in (a, b, both))
    root = np.sqrt((total_a - total_b) ** 2 + 4.0 * total_both**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        # t - A and t - S, each in the form that does not cancel
        above_a = np.where(total_a >= total_b, 2 * total_both**2 / (total_a - total_b + root),
                           (total_b - total_a + root) / 2)
        above_b = np.where(total_b >= total_a, 2 * total_both**2 / (total_b - total_a + root),
                           (total_a - total_b + root) / 2)
        rho = np.where(total_both > 0, above_a / total_both, 0.0)
        inverse_rho = np.where(total_both > 0, above_b / total_both, 0.0)
    latency = total_a + above_a

    def per_user(v: np.ndarray) -> np.ndarray:
        return np.take_along_axis(v, association, axis=1)

    t = per_user(latency)
    with np.errstate(invalid="ignore", divide="ignore"):
        compute = np.where(t > 0, (a + both * per_user(rho)) / t, 0.0)
        bandwidth = np.where(t > 0, (b + both * per_user(inverse_rho)) / t, 0.0)
    return _fit_to_capacity(compute, association, num_servers), _fit_to_capacity(bandwidth, association, num_servers)


class _FairSplit:
    """The min-max problem of the users of some servers (arrays over those users, `position` their server):
    for a candidate latency t per server, the cheapest way for every user to finish by it.

    With tau_k = t - local_k, and compute priced 1 and bandwidth nu, user k's cheapest (f, s) on
    a_k / f + phi_k(s) = tau_k has compute time sqrt(a_k m_k(s) / nu), so s solves
    sqrt(a_k m_k(s) / nu) + phi_k(s) = tau_k: a decreasing function of s whose root has a closed-form bracket.
    The band used falls with nu and the compute rises, so t is feasible iff the compute fits at the nu that
    uses the band up exactly (when the least shares that meet the budgets leave some of it).
    """

    def __init__(self, compute_s: np.ndarray, upload_load: np.ndarray, download_load: np.ndarray,
                 uplink_snr: np.ndarray, downlink_snr: np.ndarray, local_s: np.ndarray, position: np.ndarray,
                 num_active: int) -> None:
        self.compute, self.local = compute_s, local_s
        self.position, self.num_active = position, num_active
        self.count = np.bincount(position, minlength=num_active)
        self.transfers = (upload_load > 0) | (download_load > 0)
        self.both = self.transfers & (compute_s > 0)
        sel = self.transfers
        self.link = (upload_load[sel], download_load[sel], uplink_snr[sel], downlink_snr[sel])
        self.transfer_position = position[sel]
        self.transfer_compute = compute_s[sel]
        self.transfer_both = self.both[sel]
        up, down, snr_up, snr_down = self.link
        self.floor_s = LN2 * (up / snr_up + down / snr_down)  # phi with an infinite band
        self.servers_with_both = self._sum(self.both.astype(float)) > 0
        equal = np.log(1.0 / self.count[self.transfer_position])
        self.least_start, self.priced_start = equal.copy(), equal.copy()  # warm starts of the per-user roots
        self.log_price_start = np.zeros(num_active)

    def _sum(self, values: np.ndarray, transfer_users: bool = False) -> np.ndarray:
        position = self.transfer_position if transfer_users else self.position
        return _per_server(values, position, self.num_active)

    def latency_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per server: the largest latency of a user alone on it (t* >= it) and at the equal split (t* <= it)."""
        alone = self.local + self.compute
        equal = self.local + self.count[self.position] * self.compute
        for share, total in ((np.ones_like(self.floor_s), alone), (1.0 / self.count[self.transfer_position], equal)):
            time, _, _ = _transfer_terms(share, *self.link)
            total[self.transfers] += time
        return (_server_extreme(alone, self.position, self.num_active, largest=True),
                _server_extreme(equal, self.position, self.num_active, largest=True))

    def _deadline_terms(self, log_share: np.ndarray, compute: np.ndarray,
                        price: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per transfer user: sqrt(a m / nu) + phi (the latency less local time), its derivative in log share,
        and the compute time sqrt(a m / nu)."""
        share = np.exp(log_share)
        time, marginal, elasticity = _transfer_terms(share, *self.link)
        compute_time = np.sqrt(compute * marginal / price)
        return compute_time + time, compute_time * elasticity / 2 - share * marginal, compute_time

    def split(self, budget: np.ndarray, price: np.ndarray, compute: np.ndarray,
              start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per transfer user finishing exactly within `budget` at bandwidth price `price` (with `compute` its
        edge seconds; 0 gives the least share that meets the budget): log share, compute time, and
        d log share / d log price."""
        up, down, snr_up, snr_down = self.link
        scale = LN2 * (up + down)
        # phi(s) >= ln2 (up / sqrt(snr_up) + down / sqrt(snr_down)) / sqrt(s), as ln(1 + x) <= sqrt(x);
        # phi(s) <= floor + scale / (2 s), as ln(1 + x) >= 2x / (2 + x); and m(s) <= scale / (2 s^2)
        lowest = (LN2 * (up / np.sqrt(snr_up) + down / np.sqrt(snr_down)) / budget) ** 2
        highest = (np.sqrt(compute * scale / (2 * price)) + scale / 2) / (budget - self.floor_s)

        def residual(log_share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            total, slope, _ = self._deadline_terms(log_share, compute, price)
            return np.log(total / budget), slope / total

        log_share = _safeguarded_newton(residual, np.log(lowest), np.log(highest), start)
        _, slope, compute_time = self._deadline_terms(log_share, compute, price)
        return log_share, compute_time, compute_time / (2 * slope)

    def shares_at(self, latency: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compute and bandwidth shares with which every user finishes by its server's `latency`, and per server
        whether they fit (sum within 1)."""
        budget = latency[self.position] - self.local
        transfer_budget = budget[self.transfers]
        no_compute = np.zeros_like(transfer_budget)
        self.least_start, _, _ = self.split(transfer_budget, np.ones_like(no_compute), no_compute, self.least_start)
        least = np.exp(self.least_start)
        least_total = self._sum(least, transfer_users=True)
        priced = self.servers_with_both & (least_total < 1.0)
        log_price = np.zeros(self.num_active)
        if priced.any():
            log_price = self._band_price(transfer_budget, least, least_total, priced)
        self.priced_start, compute_time, _ = self.split(transfer_budget, np.exp(log_price[self.transfer_position]),
                                                        self.transfer_compute, self.priced_start)
        bandwidth = np.zeros_like(self.compute)
        bandwidth[self.transfers] = np.exp(self.priced_start)
        compute = self.compute / budget
        with np.errstate(divide="ignore", invalid="ignore"):
            compute[self.transfers] = np.where(self.transfer_both, self.transfer_compute / compute_time, 0.0)
        fits = (self._sum(compute) <= 1.0) & (self._sum(bandwidth) <= 1.0 + ROOT_TOLERANCE)
        return compute, bandwidth, fits

    def _band_price(self, budget: np.ndarray, least: np.ndarray, least_total: np.ndarray,
                    priced: np.ndarray) -> np.ndarray:
        """Per server, the log bandwidth price at which the band is used up exactly (servers in `priced`), between
        the prices at which every user needing both takes the whole band (sum >= 1) and at which each takes its
        least share plus an equal part of the slack (sum <= 1)."""
        position, both = self.transfer_position, self.transfer_both
        slack = np.maximum(1.0 - least_total, 0.0)[position] / self.count[position]
        link, compute, both_budget = tuple(v[both] for v in self.link), self.transfer_compute[both], budget[both]

        def log_price_taking(share: np.ndarray) -> np.ndarray:
            time, marginal, _ = _transfer_terms(share, *link)
            with np.errstate(divide="ignore"):
                return np.log(compute * marginal / (both_budget - time) ** 2)

        low = _server_extreme(log_price_taking(np.ones(both.sum())), position[both], self.num_active, largest=False)
        high = _server_extreme(log_price_taking((least + slack)[both]), position[both], self.num_active, largest=True)
        low, high = (np.clip(v, -_LOG_PRICE_LIMIT, _LOG_PRICE_LIMIT)[priced] for v in (low, high))
        log_price = np.zeros(self.num_active)

        def excess(candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            log_price[priced] = candidate
            self.priced_start, _, slope = self.split(budget, np.exp(log_price[position]), self.transfer_compute,
                                                     self.priced_start)
            share = np.exp(self.priced_start)
            total = self._sum(share, transfer_users=True)[priced]
            return np.log(total), self._sum(share * slope, transfer_users=True)[priced] / total

        log_price[priced] = _safeguarded_newton(excess, low, high, self.log_price_start[priced])
        self.log_price_start = log_price
        return log_price


def minmax_noise_limited_shares(
    compute_s: np.ndarray,
    upload_load: np.ndarray,
    download_load: np.ndarray,
    uplink_snr: np.ndarray,
    downlink_snr: np.ndarray,
    local_s: np.ndarray,
    association: np.ndarray,
    num_servers: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(compute, bandwidth) shares (E, K) minimising, per server, the largest delay local_s + compute_s / f +
    upload_load / rho(s, uplink_snr) + download_load / rho(s, downlink_snr) of the users who need something of
    it: exact for the simulator's rate, local time included.

    Bisection on the latency t per server, between the worst user alone on the server and the equal split, to
    a relative 1e-12; `_FairSplit` decides each t exactly. Every user with a need finishes at t; both resources
    are used up when some user needs both (in this simulator every offloading user does: z = 0 uploads the
    input). Users who need nothing do not constrain t and get nothing.
    """
    compute_s, upload_load, download_load = (np.asarray(v, float) for v in (compute_s, upload_load, download_load))
    _check_nonnegative(compute_s=compute_s, upload_load=upload_load, download_load=download_load)
    compute_share, bandwidth_share = np.zeros(compute_s.shape), np.zeros(compute_s.shape)
    needs = (compute_s > 0) | (upload_load > 0) | (download_load > 0)
    if not needs.any():
        return compute_share, bandwidth_share
    position, num_active = _compact_servers(_flat_servers(association, num_servers)[needs])
    fair = _FairSplit(*(np.asarray(v, float)[needs] for v in (compute_s, upload_load, download_load, uplink_snr,
                                                              downlink_snr, local_s)), position, num_active)
    low, high = fair.latency_bounds()
    for _ in range(200):
        unsettled = high - low > ROOT_TOLERANCE * high
        if not unsettled.any():
            break
        middle = np.where(unsettled, 0.5 * (low + high), high)
        _, _, fits = fair.shares_at(middle)
        high = np.where(unsettled & fits, middle, high)
        low = np.where(unsettled & ~fits, middle, low)
    compute_share[needs], bandwidth_share[needs], _ = fair.shares_at(high)
    return (_fit_to_capacity(compute_share, association, num_servers),
            _fit_to_capacity(bandwidth_share, association, num_servers))


def convex_server_allocation(
    compute_s: np.ndarray,
    upload_load: np.ndarray,
    download_load: np.ndarray,
    uplink_snr: np.ndarray,
    downlink_snr: np.ndarray,
    *,
    local_s: np.ndarray | None = None,
    objective: str | ObjectiveOfDelays = "sum",
    linear_rate: bool = False,
    min_uplink: np.ndarray | None = None,
    min_downlink: np.ndarray | None = None,
    solver: str = "CLARABEL",
    **solver_options,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One server's users (1-D arrays in share units, as in `AllocationProblem`'s properties) as a cvxpy model:
    minimise a convex function of the delays d_k = local_k + compute_s_k / f_k + loads / rates (`objective`: a
    name in OBJECTIVES or a callable of the delay vector), with sum f <= 1, sum s <= 1 and optional minimum
    rates (bit/s per Hz of the server's band). Returns (compute shares, bandwidth shares, optimal value).

    The rate is rho(s) = s log2(1 + snr / s) = -rel_entr(s, s + snr) / ln 2, concave (exponential cone), so each
    transfer time load x inv_pos(rho) is convex; with `linear_rate` it is s log2(1 + snr), the seed's eq. with
    the noise power of the whole band. Users with nothing to compute, or to send and no minimum rate, get 0.
    """
    import cvxpy as cp

    count = len(compute_s)
    compute = cp.Variable(count, nonneg=True)
    bandwidth = cp.Variable(count, nonneg=True)
    constraints = [cp.sum(compute) <= 1, cp.sum(bandwidth) <= 1]

    def rate(users: np.ndarray, snr: np.ndarray) -> cp.Expression:
        if linear_rate:
            return cp.multiply(np.log2(1.0 + snr[users]), bandwidth[users])
        return -cp.rel_entr(bandwidth[users], bandwidth[users] + snr[users]) / LN2

    def spread(users: np.ndarray, per_user: cp.Expression) -> cp.Expression:
        """The expression over `users` placed in a vector over all users (0 elsewhere)."""
        return np.eye(count)[:, users] @ per_user

    # each delay term: (its seconds with the whole resource, the speed-up a user's share buys)
    if linear_rate:
        transfer_s = linear_rate_transfer_cost(upload_load, download_load, uplink_snr, downlink_snr)
        terms = [(compute_s, lambda users: compute[users]), (transfer_s, lambda users: bandwidth[users])]
    else:
        terms = [(compute_s, lambda users: compute[users]), (upload_load, lambda users: rate(users, uplink_snr)),
                 (download_load, lambda users: rate(users, downlink_snr))]
    delay = np.zeros(count) if local_s is None else np.asarray(local_s, float)
    for seconds, speed in terms:
        users = np.flatnonzero(seconds > 0)
        if users.size:
            delay = delay + spread(users, cp.multiply(seconds[users], cp.inv_pos(speed(users))))
    floors = [np.zeros(count) if floor is None else np.asarray(floor, float) for floor in (min_uplink, min_downlink)]
    for floor, snr in zip(floors, (uplink_snr, downlink_snr), strict=True):
        limited = np.flatnonzero(floor > 0)
        if limited.size:
            constraints.append(rate(limited, snr) >= floor[limited])
    needs_band = (upload_load > 0) | (download_load > 0) | (floors[0] > 0) | (floors[1] > 0)
    constraints += [compute[compute_s <= 0] == 0, bandwidth[~needs_band] == 0]
    if isinstance(objective, str) and objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)} or a callable")
    goal = getattr(cp, objective) if isinstance(objective, str) else objective
    problem = cp.Problem(cp.Minimize(goal(delay)), constraints)
    try:
        problem.solve(solver=solver, **solver_options)
    except cp.error.SolverError:
        if solver != "CLARABEL" or "equilibrate_enable" in solver_options:
            raise
        # Clarabel's equilibration now and then fails on a tiny model (one user, min-max): retry without it
        problem.solve(solver=solver, equilibrate_enable=False, **solver_options)
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):  # cvxpy warns about the latter
        raise ValueError(f"the allocation model is {problem.status} (minimum rates beyond the band?)")
    shares = [np.maximum(np.asarray(v.value, float), 0.0) for v in (compute, bandwidth)]
    return shares[0] / max(shares[0].sum(), 1.0), shares[1] / max(shares[1].sum(), 1.0), float(problem.value)


def _per_user_weight(weight: np.ndarray | float, shape: tuple[int, ...], name: str) -> np.ndarray:
    weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), shape)
    _check_nonnegative(**{name: weight})
    return weight


def weighted_allocation(
    problem: AllocationProblem,
    compute_weight: np.ndarray | float = 1.0,
    upload_weight: np.ndarray | float = 1.0,
    download_weight: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(compute_share, bandwidth_share) (E, K) minimising sum_k compute_weight_k edge_s_k + upload_weight_k
    upload_s_k + download_weight_k download_s_k per server, exactly (weights >= 0, scalars or broadcastable to
    (E, K)). For a Lagrangian of seed 001: weights lambda / K on the delays plus mu2 P_k / K on upload time
    (transmit energy). A user whose weights on what it needs are 0 gets none of it, and fails in `evaluate`."""
    shape = problem.association.shape
    compute_cost = _per_user_weight(compute_weight, shape, "compute_weight") * problem.compute_s
    compute_share = sqrt_rule_shares(compute_cost, problem.association, problem.num_servers)
    bandwidth_share = noise_limited_bandwidth_shares(
        _per_user_weight(upload_weight, shape, "upload_weight") * problem.upload_load,
        _per_user_weight(download_weight, shape, "download_weight") * problem.download_load,
        problem.uplink_snr, problem.downlink_snr, problem.association, problem.num_servers)
    return compute_share, bandwidth_share


def floored_delay_weight(delay_weight: float) -> float:
    """lambda as the allocation prices delay: at least MIN_DELAY_WEIGHT (see `objective_weights`)."""
    return max(delay_weight, MIN_DELAY_WEIGHT)


def objective_weights(scenario: Scenario, tx_power_w: np.ndarray, delay_weight: float) -> dict[str, np.ndarray]:
    """Keyword weights for `weighted_allocation` that make its objective the allocation-dependent part of
    `model.slot_objective` (times K): lambda on every delay term, plus mu2 P_k on upload time (transmit energy).

    lambda is floored at MIN_DELAY_WEIGHT: at lambda = 0 compute is worth nothing to the objective, and a zero
    weight would give a user who needs the edge no compute, so its request would fail."""
    power = np.asarray(tx_power_w, dtype=np.float64)
    lam = floored_delay_weight(delay_weight)
    return {"compute_weight": np.full_like(power, lam), "upload_weight": scenario["cost.mu_energy"] * power + lam,
            "download_weight": np.full_like(power, lam)}


def objective_allocation(system: EdgeSystem, association: np.ndarray, z: np.ndarray,
                         delay_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(compute_share, bandwidth_share) (E, K) of `system`'s current slot that minimise the slot objective at
    this lambda (`objective_weights`), exactly."""
    problem = AllocationProblem.from_system(system, association, z)
    return weighted_allocation(problem, **objective_weights(system.scenario, system.entities.user_tx_power_w,
                                                            delay_weight))


def candidate_objectives(system: EdgeSystem, env: int, deployment: np.ndarray, association: np.ndarray,
                         z: np.ndarray, delay_weight: float) -> np.ndarray:
    """The slot objective (C,) of C candidate decisions for environment `env`'s current slot (deployment
    (C, I, J), association and z (C, K)), each with the exact allocation for that objective."""
    entities, slot, cache = system.copies(env, len(association))
    problem = AllocationProblem.from_core(system.table, system.scenario, entities, slot, deployment, association, z,
                                          cache)
    shares = weighted_allocation(problem, **objective_weights(system.scenario, entities.user_tx_power_w,
                                                              delay_weight))
    outcome = core.evaluate(system.table, system.scenario, entities, slot, deployment, association, z, *shares, cache)
    return core.slot_objective_of(outcome, system.scenario, delay_weight)


def sum_delay_allocation(problem: AllocationProblem) -> tuple[np.ndarray, np.ndarray]:
    """(compute_share, bandwidth_share) minimising the sum (so the mean) of the users' delays, exactly."""
    return weighted_allocation(problem)


def minmax_allocation(problem: AllocationProblem) -> tuple[np.ndarray, np.ndarray]:
    """(compute_share, bandwidth_share) minimising each server's largest delay (local time included) among its
    served users who need something of it, exactly; they all finish at the same time."""
    return minmax_noise_limited_shares(problem.compute_s, problem.upload_load, problem.download_load,
                                       problem.uplink_snr, problem.downlink_snr, problem.local_s,
                                       problem.association, problem.num_servers)


def convex_allocation(
    problem: AllocationProblem,
    objective: str | ObjectiveOfDelays = "sum",
    *,
    min_uplink_bps: np.ndarray | None = None,
    min_downlink_bps: np.ndarray | None = None,
    linear_rate: bool = False,
    solver: str = "CLARABEL",
    **solver_options,
) -> tuple[np.ndarray, np.ndarray]:
    """(compute_share, bandwidth_share) from one cvxpy model per server (`convex_server_allocation`) over its
    served users who need something or have a minimum rate (E, K arrays in bit/s): for objectives with no
    closed form. One small solve per server and environment: meant for small systems and checks."""
    compute_share, bandwidth_share = np.zeros(problem.association.shape), np.zeros(problem.association.shape)
    per_user = {
        "compute_s": problem.compute_s, "upload_load": problem.upload_load, "download_load": problem.download_load,
        "uplink_snr": problem.uplink_snr, "downlink_snr": problem.downlink_snr, "local_s": problem.local_s,
        "min_uplink": np.zeros(problem.association.shape) if min_uplink_bps is None
        else np.asarray(min_uplink_bps, float) / problem.server_bandwidth_hz,
        "min_downlink": np.zeros(problem.association.shape) if min_downlink_bps is None
        else np.asarray(min_downlink_bps, float) / problem.server_bandwidth_hz,
    }
    wanted = problem.served & ((per_user["compute_s"] > 0) | (per_user["upload_load"] > 0)
                               | (per_user["download_load"] > 0) | (per_user["min_uplink"] > 0)
                               | (per_user["min_downlink"] > 0))
    for env, server in np.argwhere(model.per_server_sum(wanted, problem.association, problem.num_servers)):
        users = wanted[env] & (problem.association[env] == server)
        compute, bandwidth, _ = convex_server_allocation(
            **{name: values[env, users] for name, values in per_user.items()}, objective=objective,
            linear_rate=linear_rate, solver=solver, **solver_options)
        compute_share[env, users], bandwidth_share[env, users] = compute, bandwidth
    return compute_share, bandwidth_share
