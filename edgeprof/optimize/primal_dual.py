"""Our own non-learning solver: the bar every RL solver must clear.

Three layers, each the best simple answer we know to its part of problem (13):

- Deployment (every delta-T slots): per server, smallest storage first, a 0/1 knapsack on its storage (C7),
  solved exactly at 1 MB resolution. A service no server chosen before holds is worth its whole observed
  demand (every user can reach any server, so the first copy saves all its requests from failing); a further
  copy is worth a quarter of the demand near this server (the requests of the users whose strongest
  path-loss server it is, plus a tenth of the global demand) for the better channel. A service nobody has
  asked for yet counts one request for its first copy (a request for a service no server holds fails, at
  the failure penalty, until the next deployment, which dwarfs what a second copy saves); a tiny prior fills
  spare storage. Smallest first leaves the large servers for the models only they can hold.
- Association and partition (every slot): coordinate descent on the slot objective (`model.slot_objective`
  with the current multiplier lambda as the weight of the mean delay): each user in turn tries every allowed
  (server, partition point), and dropping its request (associating it where its service is not: the failure
  penalty and delay, nothing else), with the others fixed and the optimal allocation inside, and keeps the
  best; all candidates of one user are scored at once through the batched core. A few sweeps from the
  strongest-channel server and local execution. Dropping pays only when serving would take longer than
  tau_fail + penalty / lambda: a cell-edge user under deep shadowing can need many minutes to upload.
- Allocation (every slot): the exact weighted allocation (`allocation.weighted_allocation`) for the
  allocation-dependent part of the same objective: mu2 P_k x upload time (transmit energy) + lambda x delay.
- Lambda (the long-term delay constraint C8): projected dual ascent after every slot on the running mean delay
  of the episode so far against tau-bar (`edgeprof.optimize.dual.LagrangeMultiplier`, bounded to [0, 100]).
  The running mean is what C8 constrains. Stepping on each slot's own delay instead lets lambda decay through
  a run of fast slots until one heavy request (a whole VGG prefix downloaded at lambda near 0 takes half an
  hour) breaks the average; on the running mean, lambda stays up until the average is back under tau-bar.
"""

from __future__ import annotations

import numpy as np

from edgeprof.optimize.allocation import candidate_objectives, objective_allocation
from edgeprof.optimize.dual import LagrangeMultiplier
from edgeprof.optimize.heuristics import channel_association, local_points
from edgeprof.sim.env import EdgeSystem

KNAPSACK_UNIT_BYTES = 1e6
GLOBAL_DEMAND_SHARE = 0.1
REDUNDANT_SHARE = 0.25  # the value of a service another server already holds (users can reach it there)
UNSEEN_DEMAND = 1.0  # a first copy of a service nobody has asked for yet: one request expected in the interval
PRIOR_DEMAND = 1e-3  # so that spare storage is still filled


def knapsack(values: np.ndarray, sizes_units: np.ndarray, capacity_units: int) -> np.ndarray:
    """Exact 0/1 knapsack by dynamic programming over integer sizes; a bool mask of the chosen items."""
    best = np.zeros(capacity_units + 1)
    taken = np.zeros((len(values), capacity_units + 1), dtype=bool)
    for item, (value, size) in enumerate(zip(values, sizes_units, strict=True)):
        if value <= 0 or size > capacity_units:
            continue
        candidate = np.full_like(best, -np.inf)
        candidate[size:] = best[: capacity_units + 1 - size] + value
        taken[item] = candidate > best
        best = np.maximum(best, candidate)
    chosen = np.zeros(len(values), dtype=bool)
    room = capacity_units
    for item in range(len(values) - 1, -1, -1):
        if taken[item, room]:
            chosen[item] = True
            room -= int(sizes_units[item])
    return chosen


class PrimalDualDescent:
    """Knapsack deployment, coordinate descent over association and partition, exact weighted allocation and a
    dual update on the delay constraint; see the module docstring."""

    name = "primal-dual"

    def __init__(self, sweeps: int = 2, dual_lr: float = 0.2, seed: int = 0) -> None:
        self.sweeps = sweeps
        self.dual_lr = dual_lr
        self.rng = np.random.default_rng(seed)
        self.multiplier: LagrangeMultiplier | None = None
        self.demand: np.ndarray | None = None  # (E, J, I) requests seen per nearest server
        self._observed_t = -1

    def _observe(self, system: EdgeSystem) -> None:
        """Once per slot: count its requests by nearest server and update lambda on the running mean delay."""
        if self.multiplier is None or system.t == 0:
            self.multiplier = LagrangeMultiplier(system.scenario["system.delay_constraint_s"], init=0.0,
                                                 lr=self.dual_lr)
            self.demand = np.zeros((system.num_envs, system.num_servers, system.table.num_services))
            self.nearest = np.argmin(system.entities.path_loss_db, axis=1)  # (E, K)
            self._observed_t = -1
            self.delay_sum, self.slots_seen = 0.0, 0
        if self._observed_t == system.t:
            return
        self._observed_t = system.t
        envs = np.arange(system.num_envs)[:, None]
        np.add.at(self.demand, (envs, self.nearest, system.slot.requests), 1)
        if system.last_outcome is not None:
            self.delay_sum += float(system.last_outcome.delay_mean_s.mean())
            self.slots_seen += 1
            self.multiplier.update(self.delay_sum / self.slots_seen)

    @property
    def delay_weight(self) -> float:
        return self.multiplier.value if self.multiplier else 0.0

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        self._observe(system)
        sizes = np.ceil(system.table.model_bytes / KNAPSACK_UNIT_BYTES).astype(np.int64)
        deployment = np.zeros_like(system.deployment)
        for env in range(system.num_envs):
            global_demand = self.demand[env].sum(axis=0)
            covered = np.zeros(system.table.num_services, dtype=bool)
            for server in np.argsort(system.entities.server_storage_bytes[env], kind="stable"):
                nearby = self.demand[env, server] + GLOBAL_DEMAND_SHARE * global_demand
                values = np.where(covered, REDUNDANT_SHARE * nearby + PRIOR_DEMAND, global_demand + UNSEEN_DEMAND)
                capacity = int(system.entities.server_storage_bytes[env, server] // KNAPSACK_UNIT_BYTES)
                deployment[env, :, server] = knapsack(values, sizes, capacity)
                covered |= deployment[env, :, server]
        self.demand[:] = 0
        return deployment

    def _scores(self, system: EdgeSystem, env: int, association: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The slot objective of each candidate row (association and z of shape (C, K)) of environment `env`."""
        deployment = np.repeat(system.deployment[[env]], len(association), axis=0)
        return candidate_objectives(system, env, deployment, association, z, self.delay_weight)

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        self._observe(system)
        association = channel_association(system)
        z = local_points(system)
        allowed, points = system.user_masks()
        for env in range(system.num_envs):
            for _ in range(self.sweeps):
                changed = False
                for user in self.rng.permutation(system.num_users):
                    servers = np.flatnonzero(allowed[env, user])
                    options = np.flatnonzero(points[env, user])
                    grid_server, grid_point = (a.ravel() for a in np.meshgrid(servers, options, indexing="ij"))
                    if not allowed[env, user].all():  # dropping the request: at a server without its service
                        grid_server = np.append(grid_server, np.flatnonzero(~allowed[env, user])[0])
                        grid_point = np.append(grid_point, options[0])
                    candidates_a = np.repeat(association[[env]], len(grid_server), axis=0)
                    candidates_z = np.repeat(z[[env]], len(grid_server), axis=0)
                    candidates_a[:, user], candidates_z[:, user] = grid_server, grid_point
                    best = int(np.argmin(self._scores(system, env, candidates_a, candidates_z)))
                    if (grid_server[best], grid_point[best]) != (association[env, user], z[env, user]):
                        association[env, user], z[env, user] = grid_server[best], grid_point[best]
                        changed = True
                if not changed:
                    break
        return association, z

    def allocate(self, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return objective_allocation(system, association, z, self.delay_weight)
