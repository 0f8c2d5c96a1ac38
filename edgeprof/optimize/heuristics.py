"""Seed 001's heuristic baselines (section V-A) and the pieces they are made of.

- Local-Only: every request runs on its device (z = L_i).
- Edge-Only: every request is offloaded whole (z = 0).
- Random: random deployment, association among the allowed servers and partition point.
- Greedy: the deepest partition point whose equal-share delay estimate stays within tau-bar.
- Neurosurgeon: each user's fastest partition point under equal shares.
- LRU: Greedy with least-recently-used deployment instead of popularity.

All three associate by channel (the strongest server that hosts the requested service), share each server's
compute and bandwidth equally among its users, and deploy by popularity (each server takes the services most
requested in the last interval, most popular first, skipping what does not fit its storage) — except Random,
which draws its own. Every function works on E environments at once.
"""

from __future__ import annotations

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.sim import core
from edgeprof.sim.env import EdgeSystem


def _greedy_fill(order: np.ndarray, sizes: np.ndarray, capacity: float) -> np.ndarray:
    """Take services in `order` while they fit `capacity`, skipping those that do not; a bool mask (I,)."""
    chosen = np.zeros(len(sizes), dtype=bool)
    free = capacity
    for service in order:
        if sizes[service] <= free:
            chosen[service] = True
            free -= sizes[service]
    return chosen


def popularity_deployment(system: EdgeSystem) -> np.ndarray:
    """(E, I, J): each server deploys the most requested services of the last interval that fit its storage.

    At the first deployment nothing has been observed yet, so the current slot's requests rank the services.
    """
    counts = system.interval_requests.copy()
    if system.t == 0:
        envs = np.arange(system.num_envs)[:, None]
        np.add.at(counts, (envs, system.slot.requests), 1)
    deployment = np.zeros_like(system.deployment)
    for env in range(system.num_envs):
        order = np.argsort(-counts[env], kind="stable")
        for server in range(system.num_servers):
            capacity = system.entities.server_storage_bytes[env, server]
            deployment[env, :, server] = _greedy_fill(order, system.table.model_bytes, capacity)
    return deployment


def random_deployment(system: EdgeSystem, rng: np.random.Generator) -> np.ndarray:
    """(E, I, J): each server takes services in a random order while they fit its storage."""
    deployment = np.zeros_like(system.deployment)
    for env in range(system.num_envs):
        for server in range(system.num_servers):
            order = rng.permutation(system.table.num_services)
            capacity = system.entities.server_storage_bytes[env, server]
            deployment[env, :, server] = _greedy_fill(order, system.table.model_bytes, capacity)
    return deployment


def channel_association(system: EdgeSystem) -> np.ndarray:
    """(E, K): the allowed server with the strongest channel gain to each user."""
    allowed, _ = system.user_masks()
    gains = np.moveaxis(system.slot.gains, 1, 2)  # (E, K, J)
    return np.argmax(np.where(allowed, gains, -np.inf), axis=-1)


def random_association(system: EdgeSystem, rng: np.random.Generator) -> np.ndarray:
    """(E, K): a uniformly random allowed server for each user."""
    allowed, _ = system.user_masks()
    scores = np.where(allowed, rng.random(allowed.shape), -1.0)
    return np.argmax(scores, axis=-1)


def local_points(system: EdgeSystem) -> np.ndarray:
    """(E, K): z = L_i, the whole model on the device."""
    return system.table.num_points[system.slot.requests]


def random_points(system: EdgeSystem, rng: np.random.Generator) -> np.ndarray:
    """(E, K): a uniformly random partition point 0..L_i of each requested model."""
    return np.floor(rng.random(system.slot.requests.shape) * (local_points(system) + 1)).astype(np.int64)


def equal_share_allocation(system: EdgeSystem, association: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each server splits its compute and bandwidth equally among its users."""
    share = core.equal_shares(association, system.num_servers)
    return share, share.copy()


class LocalOnly:
    name = "local-only"

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        return popularity_deployment(system)

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        return channel_association(system), local_points(system)

    def allocate(self, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return equal_share_allocation(system, association)


class EdgeOnly(LocalOnly):
    name = "edge-only"

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        return channel_association(system), np.zeros_like(system.slot.requests)


class RandomPolicy(LocalOnly):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        return random_deployment(system, self.rng)

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        return random_association(system, self.rng), random_points(system, self.rng)


def estimated_delays(system: EdgeSystem, association: np.ndarray, compute_share: np.ndarray,
                     bandwidth_share: np.ndarray) -> np.ndarray:
    """(E, K, Lmax + 1): each user's delay at every partition point of its requested model, with the given
    server and shares, from the simulator's own formulas (points beyond a model's L_i are +inf)."""
    limit = local_points(system)
    cache = system.cache.depth if system.scenario["users.prefix_cache"] else None
    delays = np.full((*limit.shape, system.table.max_points + 1), np.inf)
    for point in range(system.table.max_points + 1):
        z = np.minimum(point, limit)
        outcome = core.evaluate(system.table, system.scenario, system.entities, system.slot, system.deployment,
                                association, z, compute_share, bandwidth_share, cache)
        delays[..., point] = np.where(point <= limit, outcome.delay_s, np.inf)
    return delays


def deepest_within(delays: np.ndarray, limit_s: float) -> np.ndarray:
    """(E, K): the deepest point whose delay is within `limit_s`, else the fastest point."""
    points = np.arange(delays.shape[-1])
    within = np.where(delays <= limit_s, points, -1).max(axis=-1)
    return np.where(within >= 0, within, delays.argmin(axis=-1))


class Greedy(LocalOnly):
    """Seed 001's Greedy: the strongest server hosting the service, then the deepest partition point whose
    delay under equal shares stays within tau-bar (deeper means less leakage), popularity deployment."""

    name = "greedy"

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        association = channel_association(system)
        share = core.equal_shares(association, system.num_servers)
        delays = estimated_delays(system, association, share, share)
        return association, deepest_within(delays, system.scenario["system.delay_constraint_s"])


class Neurosurgeon(LocalOnly):
    """Neurosurgeon's rule per user: the partition point with the least delay under equal shares, at the
    strongest server hosting the service (popularity deployment)."""

    name = "neurosurgeon"

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        association = channel_association(system)
        share = core.equal_shares(association, system.num_servers)
        return association, estimated_delays(system, association, share, share).argmin(axis=-1)


class LeastRecentlyUsed(Greedy):
    """Greedy's decisions with LRU deployment: each server keeps the services its users requested most
    recently (those never requested after them, in popularity order) while they fit its storage."""

    name = "lru"

    def __init__(self) -> None:
        self.last_requested: np.ndarray | None = None  # (E, J, I) slot of the latest request, -1 if none

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        if self.last_requested is None or system.t == 0:
            return popularity_deployment(system)
        counts = system.interval_requests
        deployment = np.zeros_like(system.deployment)
        for env in range(system.num_envs):
            for server in range(system.num_servers):
                order = np.lexsort((-counts[env], -self.last_requested[env, server]))
                capacity = system.entities.server_storage_bytes[env, server]
                deployment[env, :, server] = _greedy_fill(order, system.table.model_bytes, capacity)
        return deployment

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        association, z = super().act(system)
        if self.last_requested is None or system.t == 0:
            shape = (system.num_envs, system.num_servers, system.table.num_services)
            self.last_requested = np.full(shape, -1, dtype=np.int64)
        envs = np.arange(system.num_envs)[:, None]
        self.last_requested[envs, association, system.slot.requests] = system.t
        return association, z


POLICIES = {"random": RandomPolicy, "local-only": LocalOnly, "edge-only": EdgeOnly, "greedy": Greedy,
            "neurosurgeon": Neurosurgeon, "lru": LeastRecentlyUsed}


def make_policy(name: str, seed: int = 0):
    """A built-in policy by name."""
    if name not in POLICIES:
        raise EdgeprofError(f"unknown policy {name!r}: use one of {', '.join(POLICIES)}")
    return POLICIES[name](seed) if name == "random" else POLICIES[name]()
