"""Exact per-slot solvers: the optimum every other solver is measured against.

The per-slot problem: every decision free (deployment under storage C7, association, partition, allocation
C5-C6; migration ignored), minimising `model.slot_objective` at a given lambda >= 0 (the weight of the mean
delay; 0 by default, the inner problem of a primal-dual method otherwise).

Decomposition. Once association and partition are fixed, the allocation separates by server and
`allocation.weighted_allocation` with `objective_weights` solves it exactly. So the objective is

    (1/K) [ sum_k fixed_k(j_k, z_k) + sum_j G_j(the users at j) + failure_cost x failures ]

where `fixed` is what does not depend on the allocation (mu1 privacy + mu2 compute energy + lambda local time)
and G_j is the optimal allocation cost of server j's users: compute (sum_k sqrt(c_k))^2 (the square-root rule)
plus the exact noise-limited bandwidth optimum. A request fails when its server does not host its service; a
failure costs the penalty (-failure_reward) plus lambda x the failure delay.

The per-request deadline (`system.request_deadline_s`) is not modelled, so the optimum here is a lower bound on
the simulator's, and equal to it when every request the solution serves finishes within the deadline. A late
request fails in the simulator at the cost of a dropped one, so a decision's simulated objective equals this
objective of the same decision with its late requests dropped and their shares left idle, which is at least
the optimum here.

lambda is floored at `allocation.MIN_DELAY_WEIGHT` throughout, as in the allocation itself (at lambda = 0 a user
needing the edge would otherwise get no compute); the objective moves by at most 1e-6 x the mean delay.

Three solvers over that decomposition:

- `enumerate_slot`: brute force through the simulator itself (every deployment, association and point,
  scored by `core.evaluate`): the test oracle, for tiny instances only.
- `branch_and_bound`: depth-first over the users, deploying services on demand. The bound at a node is the
  exact cost of the users placed so far plus, for each user still to place, its cheapest option given the
  servers as they are now: its fixed cost, the growth of its server's compute term (which only grows as more
  users join, because (A + a + b)^2 - A^2 >= the two single growths) and its transfer cost with the whole band
  (a share never exceeds 1). Both parts can only rise along a branch, so the bound is valid and the search
  exact. Handles the `small` preset.
- `milp_lower_bound`: a mixed-integer linear relaxation solved with HiGHS (scipy): binary choices and
  deployments, continuous shares, and each convex allocation term replaced by tangent planes of its
  perspective, which under-estimate it everywhere. Its dual bound never exceeds the optimum: a certificate
  that needs no trust in the branch and bound.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.allocation import (
    AllocationProblem,
    candidate_objectives,
    floored_delay_weight,
    noise_limited_bandwidth_shares,
    objective_allocation,
    objective_weights,
    transfer_time_and_slope,
)
from edgeprof.sim import core, model
from edgeprof.sim.env import EdgeSystem

MAX_USERS = 10  # beyond this the branch and bound is not a practical tool: say so instead of running for hours
MAX_SERVERS = 5
MAX_NODES = 2_000_000
ENUMERATION_LIMIT = 300_000  # candidate decisions the brute-force oracle will score
NO_DEADLINE_S = 1e12  # `system.request_deadline_s` that turns the deadline off
TANGENT_SHARES = np.geomspace(1e-3, 1.0, 16)  # where the MILP's tangent planes touch


@dataclass(frozen=True)
class SlotOptions:
    """What the objective needs of every (user k, server j, point p) of one environment's slot, (K, J, P)
    arrays with P = Lmax + 1; `valid` marks the points of each user's requested model."""

    valid: np.ndarray
    fixed: np.ndarray  # mu1 privacy + mu2 compute energy + lambda local seconds, if the request succeeds
    compute: np.ndarray  # weighted edge seconds with the whole server (the square-root rule's cost)
    upload: np.ndarray  # weighted upload load, bits / B_j
    download: np.ndarray  # weighted prefix download load, bits / B_j
    uplink_snr: np.ndarray  # (K, J)
    downlink_snr: np.ndarray  # (K, J)
    failure_cost: float  # penalty + lambda x failure delay
    service: np.ndarray  # (K,) requested service
    model_bytes: np.ndarray  # (I,)
    storage_bytes: np.ndarray  # (J,)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.valid.shape  # type: ignore[return-value]

    def alone_transfer(self) -> np.ndarray:
        """(K, J, P) each option's weighted transfer seconds with the whole band (0 when it sends nothing)."""
        needs = (self.upload > 0) | (self.download > 0)
        snr_up = np.broadcast_to(self.uplink_snr[..., None], self.shape)
        snr_down = np.broadcast_to(self.downlink_snr[..., None], self.shape)
        alone = np.zeros(self.shape)
        alone[needs], _ = transfer_time_and_slope(np.ones(int(needs.sum())), self.upload[needs],
                                                  self.download[needs], snr_up[needs], snr_down[needs])
        return alone

    def server_cost(self, server: int, members: tuple[tuple[int, int], ...]) -> float:
        """G_j: the optimal allocation cost of `members` ((user, point) pairs) at `server`, fixed costs
        included."""
        if not members:
            return 0.0
        users, points = np.array(members).T
        fixed = self.fixed[users, server, points].sum()
        compute = np.sqrt(self.compute[users, server, points]).sum() ** 2
        up, down = self.upload[users, server, points], self.download[users, server, points]
        needs = (up > 0) | (down > 0)
        if not needs.any():
            return float(fixed + compute)
        snr_up, snr_down = self.uplink_snr[users, server], self.downlink_snr[users, server]
        share = noise_limited_bandwidth_shares(up[None], down[None], snr_up[None], snr_down[None],
                                               np.zeros((1, len(users)), dtype=np.int64), 1)[0]
        time, _ = transfer_time_and_slope(share[needs], up[needs], down[needs], snr_up[needs], snr_down[needs])
        return float(fixed + compute + time.sum())


@dataclass(frozen=True)
class SlotSolution:
    """Decisions for one environment's slot and their objective (delay weight floored, see the module)."""

    deployment: np.ndarray  # (I, J) bool
    association: np.ndarray  # (K,)
    z: np.ndarray  # (K,)
    objective: float
    nodes: int = 0


def check_size(system: EdgeSystem) -> None:
    """Refuse instances the exact solvers cannot finish, with the way out."""
    users, servers = system.num_users, system.num_servers
    if users > MAX_USERS or servers > MAX_SERVERS:
        raise EdgeprofError(f"the exact solver handles at most {MAX_USERS} users and {MAX_SERVERS} servers; this "
                            f"scenario has K={users}, J={servers}: use --scenario small (or --set "
                            "system.num_users=... system.num_servers=...)")


def _candidates(system: EdgeSystem, env: int) -> tuple[np.ndarray, np.ndarray]:
    """One candidate row per (server j, point p): every user at j with point min(p, L_k); rows (J x P, K)."""
    table, servers, users = system.table, system.num_servers, system.num_users
    points = table.max_points + 1
    last = table.num_points[system.slot.requests[env]]  # (K,) L_k
    server_of_row, point_of_row = (a.ravel() for a in np.meshgrid(np.arange(servers), np.arange(points),
                                                                  indexing="ij"))
    association = np.repeat(server_of_row[:, None], users, axis=1)
    z = np.minimum(point_of_row[:, None], last[None, :])
    return association, z


def slot_options(system: EdgeSystem, env: int = 0, delay_weight: float = 0.0) -> SlotOptions:
    """Every option's terms for environment `env`'s current slot, computed by the simulator's own functions."""
    scenario, table = system.scenario, system.table
    lam = floored_delay_weight(delay_weight)
    association, z = _candidates(system, env)
    entities, slot, cache = system.copies(env, len(association))
    everywhere = np.ones((len(association), table.num_services, system.num_servers), dtype=bool)
    problem = AllocationProblem.from_core(table, scenario, entities, slot, everywhere, association, z, cache)
    some_shares = core.equal_shares(association, system.num_servers)
    # Privacy and compute energy do not depend on the shares; with the deadline on, these arbitrary shares
    # could fail a request and zero its costs, so they are read with the deadline off (see the module docstring).
    unbounded = scenario.with_value("system.request_deadline_s", NO_DEADLINE_S)
    outcome = core.evaluate(table, unbounded, entities, slot, everywhere, association, z, some_shares, some_shares,
                            cache)
    weights = objective_weights(scenario, entities.user_tx_power_w, delay_weight)
    fixed = model.request_cost(outcome.privacy_cost, outcome.compute_energy_j, scenario["cost.mu_privacy"],
                               scenario["cost.mu_energy"]) + lam * problem.local_s
    servers, points, users = system.num_servers, table.max_points + 1, system.num_users

    def grid(values: np.ndarray) -> np.ndarray:
        return values.reshape(servers, points, users).transpose(2, 0, 1)

    last = table.num_points[system.slot.requests[env]]
    valid = np.broadcast_to(np.arange(points)[None, None, :] <= last[:, None, None], (users, servers, points))
    first_point = np.arange(0, servers * points, points)  # rows with p = 0: one per server
    return SlotOptions(
        valid=valid.copy(),
        fixed=grid(fixed),
        compute=grid(weights["compute_weight"] * problem.compute_s),
        upload=grid(weights["upload_weight"] * problem.upload_load),
        download=grid(weights["download_weight"] * problem.download_load),
        uplink_snr=problem.uplink_snr[first_point].T,
        downlink_snr=problem.downlink_snr[first_point].T,
        failure_cost=-scenario["cost.failure_reward"] + lam * scenario["system.failure_delay_s"],
        service=system.slot.requests[env].copy(),
        model_bytes=table.model_bytes.astype(np.float64),
        storage_bytes=system.entities.server_storage_bytes[env].astype(np.float64),
    )


def _failure_server(options: SlotOptions, deployment: np.ndarray, user: int) -> int | None:
    """A server that does not host the user's service (where its request fails), if any."""
    lacking = np.flatnonzero(~deployment[options.service[user]])
    return int(lacking[0]) if len(lacking) else None


class _Search:
    """Depth-first branch and bound; see the module docstring for the bound."""

    def __init__(self, options: SlotOptions, max_nodes: int) -> None:
        self.options, self.max_nodes = options, max_nodes
        users, servers, _ = options.shape
        self.root = np.sqrt(options.compute)
        self.alone = options.alone_transfer()
        self.costs: dict[tuple[int, tuple[tuple[int, int], ...]], float] = {}
        self.members: list[tuple[tuple[int, int], ...]] = [() for _ in range(servers)]
        self.root_sum = np.zeros(servers)
        self.server_total = np.zeros(servers)
        self.deployment = np.zeros((len(options.model_bytes), servers), dtype=bool)
        self.used = np.zeros(servers)
        self.choice: list[tuple[int, int] | None] = [None] * users
        self.best = np.inf
        self.best_state: tuple[np.ndarray, list[tuple[int, int] | None]] | None = None
        self.nodes = 0
        standalone = np.where(options.valid, options.fixed + options.compute + self.alone, np.inf)
        self.order = np.argsort(-np.minimum(standalone.min(axis=(1, 2)), options.failure_cost), kind="stable")

    def cost(self, server: int, members: tuple[tuple[int, int], ...]) -> float:
        key = (server, members)
        if key not in self.costs:
            self.costs[key] = self.options.server_cost(server, members)
        return self.costs[key]

    def increments(self, user: int) -> np.ndarray:
        """(J, P) a lower bound on what placing `user` at (j, p) adds, given the servers now; inf if not allowed."""
        opts = self.options
        root = self.root[user]
        growth = opts.fixed[user] + 2 * self.root_sum[:, None] * root + root**2 + self.alone[user]
        service = opts.service[user]
        fits = self.deployment[service] | (self.used + opts.model_bytes[service] <= opts.storage_bytes)
        return np.where(opts.valid[user] & fits[:, None], growth, np.inf)

    def bound(self, depth: int) -> float:
        rest = sum(min(float(self.increments(user).min()), self.options.failure_cost)
                   for user in self.order[depth:])
        return float(self.server_total.sum()) + self.failures * self.options.failure_cost + rest

    def run(self) -> None:
        self.failures = 0
        self._visit(0)

    def _visit(self, depth: int) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise EdgeprofError(f"the exact search passed {self.max_nodes:,} nodes without proving optimality: "
                                "use a smaller instance (--scenario small)")
        if depth == len(self.order):
            self._leaf()
            return
        user = int(self.order[depth])
        increments = self.increments(user)
        children = [(float(increments[j, p]), j, p) for j, p in zip(*np.nonzero(np.isfinite(increments)),
                                                                       strict=True)]
        children.append((self.options.failure_cost, -1, -1))
        for _, server, point in sorted(children):
            if server < 0:
                self.failures += 1
                self.choice[user] = None
                if self.bound(depth + 1) < self.best:
                    self._visit(depth + 1)
                self.failures -= 1
                continue
            self._place(user, int(server), int(point), depth)

    def _place(self, user: int, server: int, point: int, depth: int) -> None:
        opts = self.options
        service = opts.service[user]
        newly_deployed = not self.deployment[service, server]
        saved = (self.members[server], self.root_sum[server], self.server_total[server])
        self.members[server] = tuple(sorted((*saved[0], (user, point))))
        self.root_sum[server] += self.root[user, server, point]
        self.server_total[server] = self.cost(server, self.members[server])
        if newly_deployed:
            self.deployment[service, server] = True
            self.used[server] += opts.model_bytes[service]
        self.choice[user] = (server, point)
        if self.bound(depth + 1) < self.best:
            self._visit(depth + 1)
        self.members[server], self.root_sum[server], self.server_total[server] = saved
        if newly_deployed:
            self.deployment[service, server] = False
            self.used[server] -= opts.model_bytes[service]
        self.choice[user] = None

    def _leaf(self) -> None:
        failing = [user for user, choice in enumerate(self.choice) if choice is None]
        if any(_failure_server(self.options, self.deployment, user) is None for user in failing):
            return  # every server hosts this user's service: it cannot fail, and succeeding is another branch
        total = float(self.server_total.sum()) + len(failing) * self.options.failure_cost
        if total < self.best:
            self.best = total
            self.best_state = (self.deployment.copy(), list(self.choice))


def branch_and_bound(options: SlotOptions, max_nodes: int = MAX_NODES) -> SlotSolution:
    """The exact optimum of one slot (see the module docstring)."""
    search = _Search(options, max_nodes)
    search.run()
    deployment, choice = search.best_state  # failing everyone is always a leaf, so there is one
    users = options.shape[0]
    association, z = np.zeros(users, dtype=np.int64), np.zeros(users, dtype=np.int64)
    for user, picked in enumerate(choice):
        if picked is None:
            association[user] = _failure_server(options, deployment, user)
        else:
            association[user], z[user] = picked
    return SlotSolution(deployment, association, z, search.best / users, search.nodes)


def _feasible_sets(model_bytes: np.ndarray, storage: float) -> list[tuple[int, ...]]:
    services = range(len(model_bytes))
    return [subset for size in range(len(model_bytes) + 1) for subset in itertools.combinations(services, size)
            if model_bytes[list(subset)].sum() <= storage]


def enumerate_slot(system: EdgeSystem, env: int = 0, delay_weight: float = 0.0,
                   limit: int = ENUMERATION_LIMIT) -> SlotSolution:
    """Brute force through the simulator: every deployment, association and point of environment `env`'s slot,
    with the exact weighted allocation, scored by `core.evaluate` and `model.slot_objective`
    (`allocation.candidate_objectives`)."""
    table = system.table
    per_server = [_feasible_sets(table.model_bytes, storage) for storage in system.entities.server_storage_bytes[env]]
    per_user = [[(server, point) for server in range(system.num_servers)
                 for point in range(int(table.num_points[service]) + 1)] for service in system.slot.requests[env]]
    count = np.prod([len(s) for s in per_server], dtype=float) * np.prod([len(u) for u in per_user], dtype=float)
    if count > limit:
        raise EdgeprofError(f"enumeration would score {count:.3g} candidates (limit {limit:,}): a tiny instance "
                            "only")
    decisions = np.array(list(itertools.product(*per_user)))  # (C, K, 2)
    association, z = decisions[..., 0], decisions[..., 1]
    best: SlotSolution | None = None
    for sets in itertools.product(*per_server):
        deployment = np.zeros((table.num_services, system.num_servers), dtype=bool)
        for server, services in enumerate(sets):
            deployment[list(services), server] = True
        deployed = np.repeat(deployment[None], len(decisions), axis=0)
        objective = candidate_objectives(system, env, deployed, association, z, floored_delay_weight(delay_weight))
        row = int(np.argmin(objective))
        if best is None or objective[row] < best.objective:
            best = SlotSolution(deployment, association[row].copy(), z[row].copy(), float(objective[row]),
                                len(decisions))
    return best


def milp_lower_bound(options: SlotOptions, time_limit_s: float = 60.0) -> float:
    """A valid lower bound on the slot's optimum: HiGHS on the tangent-plane relaxation (module docstring)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    users, servers, _ = options.shape
    services = len(options.model_bytes)
    opt_user, opt_server, opt_point = np.nonzero(options.valid)
    count = len(opt_user)
    # variable blocks: x (choice), f (compute share), s (band share), tc, tb (epigraphs), fail (K), y (I x J)
    x, f, s, tc, tb = (np.arange(count) + k * count for k in range(5))
    fail = 5 * count + np.arange(users)
    deploy = 5 * count + users + np.arange(services * servers).reshape(services, servers)
    num_vars = 5 * count + users + services * servers
    rows: list[tuple[np.ndarray, np.ndarray]] = []  # (columns, coefficients) per constraint
    low: list[float] = []
    high: list[float] = []

    def add(columns: list[int] | np.ndarray, coefficients: list[float] | np.ndarray, lo: float, hi: float) -> None:
        rows.append((np.asarray(columns), np.asarray(coefficients, dtype=np.float64)))
        low.append(lo)
        high.append(hi)

    for user in range(users):  # one option or a failure each
        chosen = np.flatnonzero(opt_user == user)
        add([*x[chosen], fail[user]], [1.0] * (len(chosen) + 1), 1.0, 1.0)
    for option in range(count):  # a choice needs its service deployed there; shares only for the chosen
        add([x[option], deploy[options.service[opt_user[option]], opt_server[option]]], [1.0, -1.0], -np.inf, 0.0)
        add([f[option], x[option]], [1.0, -1.0], -np.inf, 0.0)
        add([s[option], x[option]], [1.0, -1.0], -np.inf, 0.0)
    for server in range(servers):
        at = np.flatnonzero(opt_server == server)
        add(f[at], np.ones(len(at)), -np.inf, 1.0)
        add(s[at], np.ones(len(at)), -np.inf, 1.0)
        add(deploy[:, server], options.model_bytes, -np.inf, float(options.storage_bytes[server]))
    compute = options.compute[opt_user, opt_server, opt_point]
    upload = options.upload[opt_user, opt_server, opt_point]
    download = options.download[opt_user, opt_server, opt_point]
    snr_up, snr_down = options.uplink_snr[opt_user, opt_server], options.downlink_snr[opt_user, opt_server]
    for share in TANGENT_SHARES:  # tangents of the perspectives of c / f and of the transfer time
        for option in np.flatnonzero(compute > 0):
            c = compute[option]
            add([tc[option], x[option], f[option]], [-1.0, 2 * c / share, -c / share**2], -np.inf, 0.0)
        sends = np.flatnonzero((upload > 0) | (download > 0))
        time, slope = transfer_time_and_slope(np.full(len(sends), share), upload[sends], download[sends],
                                              snr_up[sends], snr_down[sends])
        for option, value, derivative in zip(sends, time, slope, strict=True):
            add([tb[option], x[option], s[option]], [-1.0, value - share * derivative, derivative], -np.inf, 0.0)
    row_index = np.concatenate([np.full(len(cols), i) for i, (cols, _) in enumerate(rows)])
    matrix = coo_matrix((np.concatenate([c for _, c in rows]), (row_index, np.concatenate([c for c, _ in rows]))),
                        shape=(len(rows), num_vars)).tocsr()
    cost = np.zeros(num_vars)
    cost[x] = options.fixed[opt_user, opt_server, opt_point]
    cost[tc] = cost[tb] = 1.0
    cost[fail] = options.failure_cost
    integrality = np.zeros(num_vars)
    integrality[x] = integrality[fail] = 1
    integrality[deploy.ravel()] = 1
    upper = np.ones(num_vars)
    upper[tc] = upper[tb] = np.inf
    result = milp(cost / users, constraints=LinearConstraint(matrix, low, high), integrality=integrality,
                  bounds=Bounds(np.zeros(num_vars), upper), options={"time_limit": time_limit_s})
    if result.status not in (0, 1):
        raise RuntimeError(f"the MILP relaxation failed: {result.message}")
    bound = getattr(result, "mip_dual_bound", None)
    return float(bound if bound is not None and np.isfinite(bound) else result.fun)


def solve_slot(system: EdgeSystem, delay_weight: float = 0.0, max_nodes: int = MAX_NODES) -> list[SlotSolution]:
    """The exact optimum of the current slot of each of `system`'s environments."""
    check_size(system)
    return [branch_and_bound(slot_options(system, env, delay_weight), max_nodes) for env in range(system.num_envs)]


class ExactPerSlot:
    """The exact solver as a simulator policy: each slot, deployment, association, partition and allocation all
    chosen together by `solve_slot`. Run it with `system.slots_per_deployment = 1` (deployment free every slot;
    `edgeprof solve` does this), so its objective is a lower bound on every other solver's, slot by slot. It
    does not model the per-request deadline (see the module docstring): where its decision serves a request
    that would finish late, the simulator fails it, and the slot scores worse than the bound."""

    name = "exact"

    def __init__(self, delay_weight: float = 0.0) -> None:
        self.delay_weight = delay_weight
        self._solutions: list[SlotSolution] = []
        self._solved_t = -1

    def _solve(self, system: EdgeSystem) -> list[SlotSolution]:
        if self._solved_t != system.t:
            self._solutions, self._solved_t = solve_slot(system, self.delay_weight), system.t
        return self._solutions

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        return np.stack([solution.deployment for solution in self._solve(system)])

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        solutions = self._solve(system)
        if not np.array_equal(system.deployment, self.deploy(system)):
            raise ValueError("the exact solver deploys every slot: set system.slots_per_deployment = 1")
        return np.stack([s.association for s in solutions]), np.stack([s.z for s in solutions])

    def allocate(self, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return objective_allocation(system, association, z, self.delay_weight)
