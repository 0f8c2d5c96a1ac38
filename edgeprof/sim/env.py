"""Seed 001's system as episodes with explicit phases, over E parallel environments.

Each slot runs the phases in the paper's order:

1. deploy (every delta-T slots): each server's model set, `EdgeSystem.deploy`; it must fit storage (C7), and
   the interval that ends gets its deployment reward (eq. 24: hits minus migration cost);
2. associate and partition: each user's server and partition point, under `user_masks()`;
3. allocate: each server's compute and bandwidth shares for its users (C5, C6);
4. outcome: `EdgeSystem.step` scores the slot (`core.evaluate`), updates the users' prefix caches and the
   request counters, and draws the next slot's requests and channels.

Rewards follow section IV-A: users get eq. 25 (minus the weighted privacy cost, energy and delay over tau-bar,
or the failure reward when the service was not there), servers' allocation agents the negative mean delay of
their users, deployment agents eq. 24. The Lagrangian cost signal is the raw delay of eq. 5.
"""

from __future__ import annotations

import numpy as np

from edgeprof.sim import core, model
from edgeprof.sim.core import Entities, Outcome, PrefixCache, SlotDraw
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.workload import ServiceTable


class EdgeSystem:
    """E environments of one scenario, stepped together; `num_envs=1` for one system."""

    def __init__(self, scenario: Scenario, table: ServiceTable, num_envs: int = 1, seed: int = 0) -> None:
        self.scenario, self.table, self.num_envs = scenario, table, num_envs
        self.num_servers = scenario["system.num_servers"]
        self.num_users = scenario["system.num_users"]
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        """A new episode: new nodes, capacities and popularity; nothing deployed or cached yet."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        self.entities: Entities = core.sample_entities(self.scenario, self.num_envs, self.rng)
        shape_ij = (self.num_envs, self.table.num_services, self.num_servers)
        self.deployment = np.zeros(shape_ij, dtype=bool)
        self.cache: PrefixCache = core.empty_cache(self.num_envs, self.num_users, self.table.num_models)
        self.interval_requests = np.zeros((self.num_envs, self.table.num_services), dtype=np.int64)
        self.interval_server_requests = np.zeros((self.num_envs, self.num_servers, self.table.num_services),
                                                 dtype=np.int64)
        self.interval_hits = np.zeros((self.num_envs, self.num_servers), dtype=np.int64)
        self.last_migration_s = np.zeros((self.num_envs, self.num_servers))
        self.deployment_rewards: np.ndarray | None = None
        self._deployed_at = -1
        self.last_outcome: Outcome | None = None  # what the previous step scored, for policies that learn online
        self.slot: SlotDraw = core.sample_slot(self.scenario, self.entities, self.rng)

    @property
    def deployment_due(self) -> bool:
        """Whether this slot starts a deployment interval (and `deploy` must come before `step`)."""
        return self.t % self.scenario["system.slots_per_deployment"] == 0

    def deploy(self, deployment: np.ndarray) -> np.ndarray:
        """Set the model sets (E, I, J) for the coming interval; returns the ending interval's rewards (E, J)."""
        if not self.deployment_due:
            raise ValueError(f"deployment happens every {self.scenario['system.slots_per_deployment']} slots; "
                             f"slot {self.t} is not a deployment slot")
        deployment = np.asarray(deployment, dtype=bool)
        if deployment.shape != self.deployment.shape:
            raise ValueError(f"deployment must have shape {self.deployment.shape}, got {deployment.shape}")
        fits = core.storage_feasible(self.table, self.entities, deployment)
        if not fits.all():
            env, server = np.argwhere(~fits)[0]
            raise ValueError(f"C7 violated: the models deployed at server {server} of environment {env} exceed "
                             "its storage")
        rewards = model.deployment_reward(self.interval_hits, self.last_migration_s, self.scenario["cost.mu_hit"],
                                          self.scenario["cost.mu_migration"])
        self.last_migration_s = core.migration_cost(self.table, self.entities, deployment, self.deployment)
        self.deployment, self._deployed_at = deployment, self.t
        self.deployment_rewards = rewards if self.t > 0 else None
        self.interval_requests[:] = 0
        self.interval_server_requests[:] = 0
        self.interval_hits[:] = 0
        return rewards

    def copies(self, env: int, count: int) -> tuple[Entities, SlotDraw, np.ndarray | None]:
        """Environment `env`'s nodes, current slot and prefix-cache depths (None unless `users.prefix_cache`),
        repeated `count` times: to score `count` candidate decisions for it side by side in `core.evaluate`."""
        index = np.full(count, env)
        cache = self.cache.depth[index] if self.scenario["users.prefix_cache"] else None
        return self.entities.take(index), self.slot.take(index), cache

    def user_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Allowed servers (E, K, J) and partition points (E, K, Lmax + 1) for each user's current request.

        Servers that host the requested service are allowed; when none does, every server is (the request
        fails wherever it goes). Partition points are those of the requested model, z = 0..L_i.
        """
        hosted = np.take_along_axis(self.deployment, self.slot.requests[:, :, None], axis=1)  # (E, K, J)
        servers = np.where(hosted.any(axis=-1, keepdims=True), hosted, True)
        points = self.table.valid[self.slot.requests]
        return servers, points

    def step(self, association: np.ndarray, z: np.ndarray, compute_share: np.ndarray,
             bandwidth_share: np.ndarray) -> Outcome:
        """Score this slot's decisions, then move to the next slot."""
        if self.deployment_due and self._deployed_at != self.t:
            raise ValueError(f"slot {self.t} starts a deployment interval: call deploy() before step()")
        association, z = np.asarray(association), np.asarray(z)
        outcome = core.evaluate(self.table, self.scenario, self.entities, self.slot, self.deployment, association,
                                z, compute_share, bandwidth_share,
                                self.cache.depth if self.scenario["users.prefix_cache"] else None)
        self.cache = core.update_cache(self.table, self.entities, self.cache, self.slot.requests, z,
                                       outcome.success, self.t)
        envs = np.arange(self.num_envs)[:, None]
        np.add.at(self.interval_requests, (envs, self.slot.requests), 1)
        np.add.at(self.interval_server_requests, (envs, association, self.slot.requests), 1)
        self.interval_hits += core.hits(self.deployment, self.slot.requests, association)
        self.t += 1
        self.slot = core.sample_slot(self.scenario, self.entities, self.rng)
        self.last_outcome = outcome
        return outcome

    def user_rewards(self, outcome: Outcome) -> np.ndarray:
        """Eq. 25 (E, K): -(mu1 C_priv + mu2 e + mu3 [delay - tau-bar]+), or the failure reward."""
        scenario = self.scenario
        overdue = np.maximum(outcome.delay_s - scenario["system.delay_constraint_s"], 0.0)
        served = -(model.request_cost(outcome.privacy_cost, outcome.energy_j, scenario["cost.mu_privacy"],
                                      scenario["cost.mu_energy"]) + scenario["cost.mu_delay_violation"] * overdue)
        return np.where(outcome.success, served, scenario["cost.failure_reward"])

    def allocation_rewards(self, outcome: Outcome, association: np.ndarray) -> np.ndarray:
        """(E, J): minus the mean delay of each server's users (0 for a server with none)."""
        one_hot = association[..., None] == np.arange(self.num_servers)
        count = one_hot.sum(axis=1)
        total = np.einsum("ekj,ek->ej", one_hot.astype(np.float64), outcome.delay_s)
        return -np.divide(total, count, out=np.zeros_like(total), where=count > 0)
