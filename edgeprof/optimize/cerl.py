"""Seed 003's benchmark schemes (sec. 5.2.2), the `cerl` system's solvers: every task runs whole in one hop.

- `lc`: local computing, every task on its own device;
- `ec`: edge computing, every task sent to the MEC server, where its device has a link to it and a subcarrier
  is left (eq. 7); the others run locally;
- `random`: each task LC or EC with probability 1/2 (the paper's "LC or OC", OC read as EC).

The paper does not say how these schemes share a node's compute. `lc`, `ec` and `random` split each node's
capacity equally among the tasks it runs in the slot (a scheme that does not optimise its allocation, the usual
meaning of local and edge computing). `lc-deadline` and `ec-deadline` give each task the least share that
meets its deadline (capped by what is free): under eq. 4 that is close to the cheapest a task can run
(`sim.cerl.cost_bound_per_task`), so they show what allocation alone is worth.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeprof.optimize.solve import SolverInfo, register_solver
from edgeprof.sim.cerl import SHARES, Action, ChainEnv, Task

PLACEMENTS = ("lc", "ec", "random")
SHARE_RULES = ("equal", "deadline")


class WholeTask:
    """A benchmark scheme: where each task goes (`placement`) and how a node's compute is shared
    (`share_rule`). Plans each slot at its first decision; `seed` draws random's choices."""

    def __init__(self, placement: str, share_rule: str, seed: int) -> None:
        if placement not in PLACEMENTS or share_rule not in SHARE_RULES:
            raise ValueError(f"unknown scheme {placement}/{share_rule}")
        self.placement, self.share_rule = placement, share_rule
        self.rng = np.random.default_rng([seed, 3])
        self.slot = -1
        self.target: dict[int, int] = {}
        self.sharing: np.ndarray = np.zeros(0)

    def _plan(self, env: ChainEnv) -> None:
        """Each waiting task's node, and how many tasks each node holds this slot."""
        self.slot, self.target = env.slot, {}
        sending = 0
        for task in env.active[env.turn:]:
            if task.next_layer < 1:
                continue
            node = task.location
            to_edge = self.placement == "ec" or (self.placement == "random" and self.rng.random() < 0.5)
            if to_edge and (node == 0 or (env.links[node, 0] and sending < env.num_subcarriers)):
                sending += node != 0
                node = 0
            self.target[task.task_id] = node
        self.sharing = np.bincount(list(self.target.values()), minlength=env.num_nodes)

    def _share(self, env: ChainEnv, task: Task, node: int) -> int:
        if self.share_rule == "equal":
            return max(SHARES // max(int(self.sharing[node]), 1), 1)
        transfer_s = 0.0
        if node != task.location:
            transfer_s = 8.0 * env.workload.input_bytes_of[task.next_layer - 1] / env.rate_bps[task.location, node]
        time_left = env.time_left_s(task) - transfer_s
        cycles = env.workload.block_cycles(task.next_layer, env.num_layers)
        if time_left <= 0:
            return SHARES
        return math.ceil(SHARES * cycles / (env.capacity_hz[node] * time_left) - 1e-9)

    def act(self, env: ChainEnv) -> Action:
        if env.slot != self.slot:
            self._plan(env)
        task = env.focus
        masks = env.masks()
        node = self.target.get(task.task_id, task.location)
        if not masks.node[node]:
            node = task.location if masks.node[task.location] else int(np.flatnonzero(masks.node)[0])
        share = min(max(self._share(env, task, node), 1), int(masks.share_limit[node]))
        free = np.flatnonzero(masks.subcarriers)
        subcarrier = int(free[0]) if node != task.location else -1
        return Action(node, env.num_layers, share, subcarrier)


def _scheme(placement: str, share_rule: str):
    def make(env: Any, seed: int) -> WholeTask:
        return WholeTask(placement, share_rule, seed)

    return make


for _info in (
    SolverInfo("lc", "cerl", "local computing: every task whole on its device, equal shares (sec. 5.2.2)",
               _scheme("lc", "equal")),
    SolverInfo("ec", "cerl", "edge computing: every task whole on the MEC where a link and a subcarrier allow, "
               "else local; equal shares (sec. 5.2.2)", _scheme("ec", "equal")),
    SolverInfo("random", "cerl", "each task LC or EC at random, equal shares (sec. 5.2.2)",
               _scheme("random", "equal")),
    SolverInfo("lc-deadline", "cerl", "lc with the least share that meets each task's deadline",
               _scheme("lc", "deadline")),
    SolverInfo("ec-deadline", "cerl", "ec with the least share that meets each task's deadline",
               _scheme("ec", "deadline")),
):
    register_solver(_info)
