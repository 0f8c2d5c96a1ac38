"""A PettingZoo `ParallelEnv` of seed 001's user agents, for RL libraries that speak that API.

Each user k is an agent `user_k` choosing (server, partition point) every slot (eq. 20); deployment and
allocation come from a given policy's `deploy` and `allocate` (e.g. `edgeprof.optimize.heuristics.LocalOnly()`:
popularity deployment and equal shares). An agent observes what edgeprof's own trainer shows its user actor
(`sim.observations.user_features`: requested service and base model, D_in, which servers host the service, link
SNRs, its compute, power, J/FLOP, privacy preference and prefix cache), with the action mask next to it: a pair
(J allowed servers, Lmax + 1 allowed partition points), as `MultiDiscrete.sample(mask=...)` takes it; `state()`
is the centralised critics' global state. A partition point beyond the requested model's L_i is clipped to L_i
(and the step's info says so), so every action is feasible. Rewards are eq. 25; `infos[agent]["cost"]` is the
raw delay of eq. 5, the Lagrangian's constraint signal. `reset(seed=s)` starts the episode of seed s, as
`edgeprof solve --seeds s` does; `reset()` continues from the last seed given (or fresh entropy if none was).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.observations import user_features
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
        self._seeds = np.random.default_rng()  # episode seeds for reset() without one

    @functools.cache  # noqa: B019 (one space per agent name, as PettingZoo expects)
    def observation_space(self, agent: str) -> spaces.Space:
        local, _ = self._feature_sizes
        return spaces.Dict({
            "observation": spaces.Box(-np.inf, np.inf, shape=(local,), dtype=np.float32),
            "action_mask": spaces.Tuple((spaces.MultiBinary(self.num_servers),
                                         spaces.MultiBinary(self.table.max_points + 1))),
        })

    @functools.cached_property
    def state_space(self) -> spaces.Space:
        return spaces.Box(-np.inf, np.inf, shape=(self._feature_sizes[1],), dtype=np.float32)

    @functools.cached_property
    def _feature_sizes(self) -> tuple[int, int]:
        local, state = user_features(EdgeSystem(self.scenario, self.table, num_envs=1, seed=0))
        return local.shape[-1], state.shape[-1]

    def state(self) -> np.ndarray:
        return user_features(self.system)[1][0].astype(np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return spaces.MultiDiscrete([self.num_servers, self.table.max_points + 1])

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        servers, points = self.system.user_masks()
        local = user_features(self.system)[0][0].astype(np.float32)  # (K, F)
        return {agent: {"observation": local[k], "action_mask": (servers[0, k].astype(np.int8),
                                                                 points[0, k].astype(np.int8))}
                for k, agent in enumerate(self.agents)}

    def _deploy_if_due(self) -> None:
        if self.system.deployment_due:
            self.system.deploy(self.layers.deploy(self.system))

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._seeds = np.random.default_rng(seed)
        episode = seed if seed is not None else int(self._seeds.integers(2**63 - 1))
        self.agents = list(self.possible_agents)
        self.system = EdgeSystem(self.scenario, self.table, num_envs=1, seed=episode)
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
