"""A PettingZoo `ParallelEnv` of seed 001's user agents, for RL libraries that speak that API.

Each user k is an agent `user_k` choosing (server, partition point) every slot (eq. 20); deployment and
allocation come from a given policy's `deploy` and `allocate` (e.g. `edgeprof.optimize.heuristics.LocalOnly()`:
popularity deployment and equal shares). Observations follow the paper's user observation: [requested
service, D_in, user index, which of the J servers host the requested service], with the action mask next to
it: a pair (J allowed servers, Lmax + 1 allowed partition points), as `MultiDiscrete.sample(mask=...)` takes
it. A partition point beyond the requested model's L_i is clipped to L_i (and the step's info says so), so
every action is feasible. Rewards are eq. 25; `infos[agent]["cost"]` is the raw delay of eq. 5, the
Lagrangian's constraint signal.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.workload import ServiceTable


class UserAgentsEnv(ParallelEnv):
    """One system (E = 1) of K user agents; an episode lasts `slots` slots."""

    metadata = {"name": "edgeprof_seed001_users_v0", "render_modes": []}

    def __init__(self, scenario: Scenario, table: ServiceTable, layers: Any, slots: int = 100) -> None:
        self.scenario, self.table, self.slots = scenario, table, slots
        self.layers = layers  # anything with deploy(system) and allocate(system, association, z), e.g. LocalOnly()
        self.num_servers = scenario["system.num_servers"]
        self.possible_agents = [f"user_{k}" for k in range(scenario["system.num_users"])]
        self.agents: list[str] = []
        self.system: EdgeSystem | None = None

    @functools.cache  # noqa: B019 (one space per agent name, as PettingZoo expects)
    def observation_space(self, agent: str) -> spaces.Space:
        high = np.array([self.table.num_services - 1, self.scenario["services.batch_range"][1],
                         len(self.possible_agents) - 1] + [1] * self.num_servers, dtype=np.float32)
        return spaces.Dict({
            "observation": spaces.Box(0.0, high, dtype=np.float32),
            "action_mask": spaces.Tuple((spaces.MultiBinary(self.num_servers),
                                         spaces.MultiBinary(self.table.max_points + 1))),
        })

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return spaces.MultiDiscrete([self.num_servers, self.table.max_points + 1])

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        system = self.system
        servers, points = system.user_masks()
        requests, batch = system.slot.requests[0], system.slot.batch[0]
        hosted = system.deployment[0][requests]  # (K, J): which servers host each request
        observations = {}
        for k, agent in enumerate(self.agents):
            vector = np.concatenate([[requests[k], batch[k], k], hosted[k]]).astype(np.float32)
            mask = (servers[0, k].astype(np.int8), points[0, k].astype(np.int8))
            observations[agent] = {"observation": vector, "action_mask": mask}
        return observations

    def _deploy_if_due(self) -> None:
        if self.system.deployment_due:
            self.system.deploy(self.layers.deploy(self.system))

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.agents = list(self.possible_agents)
        self.system = EdgeSystem(self.scenario, self.table, num_envs=1, seed=0 if seed is None else seed)
        self._deploy_if_due()
        return self._observations(), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]):
        system = self.system
        chosen = np.array([actions[agent] for agent in self.agents], dtype=np.int64).reshape(len(self.agents), 2)
        limit = system.table.num_points[system.slot.requests[0]]
        clipped = chosen[:, 1] > limit
        association = chosen[None, :, 0]
        z = np.minimum(chosen[:, 1], limit)[None, :]
        compute, bandwidth = self.layers.allocate(system, association, z)
        outcome = system.step(association, z, compute, bandwidth)
        rewards = system.user_rewards(outcome)[0]
        done = system.t >= self.slots
        infos = {
            agent: {"cost": float(outcome.delay_s[0, k]), "success": bool(outcome.success[0, k]),
                    "energy_j": float(outcome.energy_j[0, k]), "privacy_cost": float(outcome.privacy_cost[0, k]),
                    "z_clipped": bool(clipped[k])}
            for k, agent in enumerate(self.agents)
        }
        reward_dict = {agent: float(rewards[k]) for k, agent in enumerate(self.agents)}
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        if not done:
            self._deploy_if_due()
        observations = self._observations()
        if done:
            self.agents = []
        return observations, reward_dict, terminations, truncations, infos
