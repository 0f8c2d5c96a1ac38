"""Solvers of seed 004's `crowd-edge` system: the drift-plus-penalty heuristic (sec. V-A, Alg. 1) and random.

Drift-plus-penalty (eq. 21-24): each task goes where f' = g + D_i x_i is least, with g = alpha E_i + beta R_u s_i
(eq. 7) and D_i eq. 14's path delay. Eq. 17-18 and 23-24 write argmax of a cost; we take the argmin. E_i is the
delay the task would see (eq. 5-6): the candidate's backlog and the task's work over its speed, the data queued
on its links over their capacities, and its own data over the bottleneck (or over its rate, with rate levels,
where the level is chosen by the same argmin). `dpp_actions` places a slot's tasks one at a time in a random
order, each seeing the work and data that the earlier ones of the slot added (Alg. 1 loops over the agents; at
once, every task would see the same least-loaded node and go there together); `dpp_scores` on the slot-start
state is what each agent would compute alone (the mixed policy's heuristic action, `rl.m2appo`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeprof.optimize.solve import SolverInfo, register_solver
from edgeprof.sim.crowd_edge import NAME, CrowdEdge, path_delay_s, processing_delay_s


def dpp_scores(env: CrowdEdge, envs: np.ndarray, agents: np.ndarray, work: np.ndarray, data: np.ndarray,
               queued_work: np.ndarray | None = None, queued_data: np.ndarray | None = None,
               speed: np.ndarray | None = None) -> np.ndarray:
    """f' of every action (T, A x levels) for T tasks of `work`, `data` (T,) held by agents `agents` of
    environments `envs`: backlogs include `queued_work` (E, U) and link queues `queued_data` (E, L) placed
    earlier in the slot; `speed` is `env.candidate_speed()` when the caller has it. Forbidden actions score
    +inf."""
    layout = env.layout
    nodes = np.maximum(layout.candidates[agents], 0)  # (T, A)
    backlog = env.backlog_gcycles[envs[:, None], nodes]
    if queued_work is not None:
        backlog = backlog + queued_work[envs[:, None], nodes]
    links = env.link_mb if queued_data is None else env.link_mb + queued_data
    links = np.concatenate([links, np.zeros((env.num_envs, 1))], axis=1)
    paths = layout.paths[agents]  # (T, A, H)
    waiting = path_delay_s(links[envs[:, None, None], paths], env.path_capacity[agents])  # (T, A)
    mask = env.destination_mask()[envs, agents]
    speed = np.where(mask, (env.candidate_speed() if speed is None else speed)[envs, agents], 1.0)
    work, data = work[:, None], data[:, None]
    processing = processing_delay_s(backlog, work, speed)
    fee = layout.node_fee[nodes] * work
    bottleneck = env.bottleneck_mb_s[agents]
    if env.levels:
        fraction = (np.arange(env.levels) + 1) / env.levels
        rate = np.where(np.isfinite(bottleneck[..., None]), bottleneck[..., None] * fraction, 0.0)  # (T, A, n)
        sending = np.where(data[..., None] > 0, data[..., None] / np.where(rate > 0, rate, 1.0), 0.0)
    else:
        rate = np.broadcast_to(data / env.slot_s, bottleneck.shape)[..., None]
        sending = np.where(data > 0, data / bottleneck, 0.0)[..., None]
    transfer = np.where(data[..., None] > 0, waiting[..., None] + sending, 0.0)
    delay = processing[..., None] + transfer
    score = (env.alpha * delay + env.beta * fee[..., None] + waiting[..., None] * rate).reshape(len(envs), -1)
    allowed = np.repeat(mask, env.levels, axis=-1) if env.levels else mask
    return np.where(allowed, score, np.inf)


def dpp_actions(env: CrowdEdge, rng: np.random.Generator) -> np.ndarray:
    """Alg. 1 for the slot's tasks, placed one at a time in a random order (`rng`), each at the argmin of f'
    given the work and data placed before it: (E, N, K) actions."""
    layout, tasks = env.layout, env.tasks
    actions = np.zeros(tasks.valid.shape, dtype=np.int64)
    queued_work = np.zeros((env.num_envs, layout.num_nodes))
    queued_data = np.zeros((env.num_envs, layout.num_links))
    levels = max(env.levels, 1)
    speed = env.candidate_speed()
    per_env = [np.argwhere(tasks.valid[e]) for e in range(env.num_envs)]
    orders = [found[rng.permutation(len(found))] for found in per_env]
    for rank in range(max((len(order) for order in orders), default=0)):
        envs = np.array([e for e in range(env.num_envs) if rank < len(orders[e])])
        agent, slot = np.array([orders[e][rank] for e in envs]).T
        work, data = tasks.work_gcycles[envs, agent, slot], tasks.data_mb[envs, agent, slot]
        choice = dpp_scores(env, envs, agent, work, data, queued_work, queued_data, speed).argmin(axis=-1)
        actions[envs, agent, slot] = choice
        candidate = choice // levels
        np.add.at(queued_work, (envs, layout.candidates[agent, candidate]), work)
        path = layout.paths[agent, candidate]  # (active, H)
        hops = np.nonzero(path >= 0)
        np.add.at(queued_data, (envs[hops[0]], path[hops]), data[hops[0]])
    return actions


def random_actions(env: CrowdEdge, rng: np.random.Generator) -> np.ndarray:
    """Every task to an allowed action drawn uniformly: (E, N, K)."""
    mask = env.action_mask()[:, :, None, :]
    draws = rng.random((*env.tasks.valid.shape, env.num_actions))
    return np.where(mask, draws, -1.0).argmax(axis=-1)


class DriftPlusPenalty:
    """Alg. 1 as a `sim.crowd_edge.Policy`."""

    name = "dpp"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 4])

    def act(self, env: CrowdEdge) -> np.ndarray:
        return dpp_actions(env, self.rng)


class RandomOffloading:
    """Uniformly random allowed destinations (and rates) as a `sim.crowd_edge.Policy`."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 5])

    def act(self, env: CrowdEdge) -> np.ndarray:
        return random_actions(env, self.rng)


def _dpp(env: Any, seed: int) -> DriftPlusPenalty:
    return DriftPlusPenalty(seed)


def _random(env: Any, seed: int) -> RandomOffloading:
    return RandomOffloading(seed)


register_solver(SolverInfo("dpp", NAME, "drift-plus-penalty (sec. V-A, Alg. 1): each task where f' = g + D x is "
                           "least, tasks placed in turn", _dpp))
register_solver(SolverInfo("random", NAME, "every task to a uniformly random allowed destination", _random))
