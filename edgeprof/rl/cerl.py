"""CERL (seed 003, Alg. 1): a CEM population of GCN Q-networks with negative-TD fitness, elite interaction and RL
injection; and its baselines DDQN and D2QN, on the `cerl` system (`sim.cerl`).

The Q-network (sec. 3.1, 4.3). The state graph (`sim.cerl.StateGraph`: compute nodes and the layers of every
active task, square adjacency) goes through three GCN layers of eq. 11, H' = BN(ReLU(D^-1/2 (A + I) D^-1/2 H W)),
64, 128 and 256 wide. The propagation uses the graph's structure (links, chains, assignments: O(edges)), equal to
the dense product (a test checks it). Batch normalisation runs over the nodes of each graph, without running
statistics or affine parameters (the next linear layer absorbs them): a Q-value then does not depend on which
other graphs share its minibatch, and a CEM individual, a parameter vector, acts exactly like the network it
came from.

The action (sec. 3.2, (N+1) x L x 100 x S per task, joint over tasks) is decided task by task, each with the
masks left by the tasks before it (`ChainEnv.masks`), through factored heads read out from the node embeddings
(eq. 16, Q = H psi):

    Q(s, (n, j, r, w)) = Q_node(n) + Q_block(j, r | n) + [n != location] Q_sub(w | n)

with Q_node from [h_n, h_task, h_graph] and Q_sub from [h_n, h_task] (h_task: the mean of the task's layer
embeddings). Q_block, over the block end j and the share r together, is minus the hop's own eq. 6 cost and P if it
misses the deadline, both known before acting (`hop_cost`, times the rewards' scale), plus a learned value of what
follows the hop that weighs features of the action itself (eq. 16 reads Q from H(s, a)): 1, the share s, and u, the
block's delay over the task's time left, with a soft step at u = 1 where the deadline is missed (`action_basis`);
the weights come from the product of an embedding of the node and one of the task's layer j and the pair's features
(the share the block needs on the node, its energy at full share: `sim.cerl.StateGraph.pairs`, edge features of
E_ab), through a hidden layer. A first version summed separate end and share heads read from the embeddings alone; a
second expanded the share in fixed functions of s: after 14 epochs on cerl-small their greedy policies stayed far
worse than LC (the Q-values rose with the MEC's share, while the replayed costs fell then rose). A third learned the
hop's cost too, as a weight on its eq. 4 energy: failures (P, ~6000 cost bounds) came with small shares on slow
devices, the weight turned positive, and on the MEC, whose energy feature is ~100x a device's, the greedy choice
became the largest share (Q +700 to +1100 cost bounds for a hop that costs -600: issue 32); with the cost known but
the deadline miss learned, the linear u weight took up P and charged even safe whole-task hops hundreds of cost
bounds. The exact joint maximum stays cheap: max over n of Q_node(n) plus each head's masked max given n
(`per_node_best`).
D2QN's dueling form adds a state value and centres each head's advantages (`rl.dqn.dueling_q`).

Learning (eq. 17-19): TD targets r + gamma max_a' Q'(s', a') with the target network (CERL, eq. 17), or double
DQN's (DDQN, D2QN: the online network picks a', the target values it; `rl.dqn.q_target` over the per-node
maxima does exactly this), loss Huber or MSE (eq. 18). A transition is one task's hop, its reward eq. 13 for
that task (the hop's cost, and P if the task failed; also P for each task its hop left with nothing allowed)
times `reward_scale`, its next state the task's next decision (`Trainer.play`).

CEM (sec. 4.1, `rl.cem.DiagonalCEM`): each generation redraws the population from N(mu, diag(var)) except slot 0,
which holds the RL agent injected at the end of the previous generation (sec. 4.4), scores every individual on
the same J transitions from the replay buffer (eq. 14), moves mu and var towards the k/2 fittest (eq. 15), and
lets the `interacting_elites` fittest play one greedy episode each into the buffer (sec. 4.2). Each individual
has a target network, refreshed from itself every H generations. Eq. 14 with the individual's own target is
degenerate at H = 1: the target is the network itself, so the fitness rewards any Q that satisfies its own
Bellman equation on the batch, whatever its actions' ranking (with gamma < 1 a constant Q = mean r / (1 - gamma)
scores almost perfectly); `fitness_target = shared` scores every individual against the RL agent's target
network instead.
The elites' episode returns are logged beside their fitness.

One iteration is one generation (an "epoch" of Fig. 4): CERL's CEM step and elite episodes, then for every
method one episode of the RL agent (epsilon-greedy; D2QN: greedy with adaptive parameter-space noise,
`rl.dqn.AdaptiveParameterNoise`), a gradient step every `train_every` of its decisions, and the target copy every
`target_every` iterations. CERL takes more environment steps per iteration than its baselines (its elites'):
the log counts both, so curves can be drawn against either.

Choices where the paper is silent are the settings of `CerlConfig`, each commented with its source.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgeprof.errors import EdgeprofError
from edgeprof.rl import hyperparameters
from edgeprof.rl.buffers import Field
from edgeprof.rl.cem import WEIGHTINGS, DiagonalCEM
from edgeprof.rl.checkpoint import component_state, shape_differences
from edgeprof.rl.dqn import (
    AdaptiveParameterNoise,
    ExponentialSchedule,
    dueling_q,
    masked_argmax,
    noise_threshold,
    q_policy_kl,
    q_target,
    td_loss,
    update_target,
)
from edgeprof.rl.replay import ReplayBuffer
from edgeprof.rl.trainers import Panel, TrainerInfo, register_trainer
from edgeprof.sim.cerl import (
    COMPUTE_FEATURES,
    HOP_COST_TERMS,
    LAYER_FEATURES,
    PAIR_FEATURES,
    SHARES,
    Action,
    ChainEnv,
    ChainWorkload,
    cost_bound_per_task,
    failure_penalty,
)

HIDDEN = (64, 128, 256)  # sec. 5.1
PAIR_WIDTH = 32  # ours: the (node, block end) embedding of the block head
TRANSFER = COMPUTE_FEATURES.index("transfer")
STEP_WIDTH = 0.02  # ours: the soft deadline step's width in u


def action_basis(batch: GraphBatch) -> torch.Tensor:
    """(B, N+1, L, 100, 4): features of each action (node n, block end j, share s = r / 100) that the block head's
    coefficients weigh to value what follows the hop: 1, s, u = the block's delay over the task's time left
    (needed share / s + the transfer's fraction; the task misses its deadline when u > 1), capped at 4, and a soft
    step at u = 1. The hop's own cost is not among them: `hop_cost` adds it exactly (with its deadline miss)."""
    share = torch.arange(1, SHARES + 1, dtype=torch.float32) / SHARES
    needed = batch.pairs[..., 0, None]
    u = needed / share + batch.compute[:, :, None, None, TRANSFER]
    return torch.stack([torch.ones_like(u), share.expand_as(u), u.clamp(max=4.0),
                        torch.sigmoid((u - 1.0) / STEP_WIDTH)], -1)


def hop_cost(batch: GraphBatch) -> torch.Tensor:
    """(B, N+1, L, 100): what the focus task's own hop costs for every (node, block end, share): its eq. 6 cost
    a s^2 + b / s + c, and P when it misses the deadline (d / s > e), from `sim.cerl.StateGraph.hop_cost`."""
    share = torch.arange(1, SHARES + 1, dtype=torch.float32) / SHARES
    terms = batch.hop_cost[..., None, :]
    missed = terms[..., 3] / share > terms[..., 4]
    cost = terms[..., 0] * share ** 2 + terms[..., 1] / share + terms[..., 2]
    return cost + torch.where(missed, terms[..., 5], 0.0)


# ---------------------------------------------------------------------------------------------------------------
# Observations: the state graph and the masks as fixed-size arrays (a replay row)


@dataclass(frozen=True)
class GraphSpec:
    """Array sizes of one observation: N + 1 compute nodes, L layers, S subcarriers and at most `max_tasks`
    tasks in the graph (the focus and the next ones in turn order)."""

    num_nodes: int
    num_layers: int
    num_subcarriers: int
    max_tasks: int

    @classmethod
    def of(cls, scenario: Any, workload: ChainWorkload, max_tasks: int) -> GraphSpec:
        return cls(scenario["system.num_devices"] + 1, workload.num_layers, scenario["radio.subcarriers"], max_tasks)

    def observation_fields(self) -> dict[str, Field]:
        n, num_layers, k = self.num_nodes, self.num_layers, self.max_tasks
        return {
            "compute": Field((n, len(COMPUTE_FEATURES))),
            "layers": Field((k, num_layers, len(LAYER_FEATURES))),
            "task_valid": Field((k,), torch.bool),
            "layer_node": Field((k, num_layers), torch.int16),
            "links": Field((n, n), torch.bool),
            "node_mask": Field((n,), torch.bool),
            "end_mask": Field((num_layers,), torch.bool),
            "share_limit": Field((n,), torch.int16),
            "sub_mask": Field((self.num_subcarriers,), torch.bool),
            "location": Field((), torch.int16),
            "pairs": Field((n, num_layers, len(PAIR_FEATURES))),
            "hop_cost": Field((n, num_layers, len(HOP_COST_TERMS))),
        }

    def replay_fields(self) -> dict[str, Field]:
        """A transition: the observation, the action (node, end - 1, share - 1, subcarrier), the raw eq. 13
        reward, whether the episode ended, and the next observation (`next_` + name)."""
        observation = self.observation_fields()
        return {**observation, "action": Field((4,), torch.long), "reward": Field(()),
                "terminated": Field((), torch.bool), **{f"next_{name}": f for name, f in observation.items()}}


def encode(env: ChainEnv, spec: GraphSpec) -> dict[str, np.ndarray]:
    """The focus task's observation as a replay row (numpy)."""
    graph, masks = env.graph(spec.max_tasks), env.masks()
    count = graph.layers.shape[0]
    layers = np.zeros((spec.max_tasks, spec.num_layers, len(LAYER_FEATURES)), dtype=np.float32)
    layers[:count] = graph.layers
    layer_node = np.zeros((spec.max_tasks, spec.num_layers), dtype=np.int16)
    layer_node[:count] = graph.layer_node
    return {"compute": graph.compute, "layers": layers, "task_valid": np.arange(spec.max_tasks) < count,
            "layer_node": layer_node, "links": graph.links, "node_mask": masks.node, "end_mask": masks.end,
            "share_limit": masks.share_limit.astype(np.int16), "sub_mask": masks.subcarriers,
            "location": np.int16(masks.location), "pairs": graph.pairs,
            "hop_cost": graph.hop_cost}


@dataclass(frozen=True)
class GraphBatch:
    """Observations as tensors (B leading), trimmed to the most tasks any of them holds."""

    compute: torch.Tensor
    layers: torch.Tensor
    task_valid: torch.Tensor
    layer_node: torch.Tensor
    links: torch.Tensor
    node_mask: torch.Tensor
    end_mask: torch.Tensor
    share_limit: torch.Tensor
    sub_mask: torch.Tensor
    location: torch.Tensor
    pairs: torch.Tensor
    hop_cost: torch.Tensor

    @classmethod
    def of(cls, rows: Mapping[str, Any], prefix: str = "") -> GraphBatch:
        """From replay rows (`prefix` "next_" for the next observations) or one `encode`d observation."""
        values = {name: torch.as_tensor(rows[prefix + name]) for name in _BATCH_FIELDS}
        if values["compute"].dim() == 2:
            values = {name: value.unsqueeze(0) for name, value in values.items()}
        tasks = max(int(values["task_valid"].sum(-1).max()), 1)
        values["layers"] = values["layers"][:, :tasks]
        values["task_valid"] = values["task_valid"][:, :tasks]
        values["layer_node"] = values["layer_node"][:, :tasks].long()
        values["share_limit"] = values["share_limit"].long()
        values["location"] = values["location"].long()
        return cls(**values)

    @property
    def size(self) -> int:
        return self.compute.shape[0]


_BATCH_FIELDS = tuple(f.name for f in fields(GraphBatch))


# ---------------------------------------------------------------------------------------------------------------
# The GCN Q-network


class GraphStructure:
    """A batch of state graphs packed into one graph of T nodes (no padding): every graph's compute nodes first
    (B x (N+1)), then every focus task's layers (B x L), then the other tasks' layers; eq. 11's
    D^-1/2 (A + I) D^-1/2 as one sparse (T, T) matrix, `graph` (T,) the graph of each node."""

    def __init__(self, batch: GraphBatch) -> None:
        size, nodes = batch.compute.shape[:2]
        tasks, num_layers = batch.layers.shape[1:3]
        self.size, self.nodes, self.num_layers = size, nodes, num_layers
        others = batch.task_valid[:, 1:]
        rank = torch.cumsum(others.reshape(-1).long(), 0).reshape(size, tasks - 1) - 1
        start = size * nodes + size * num_layers
        other_pos = start + rank[..., None] * num_layers + torch.arange(num_layers)
        compute_pos = torch.arange(size * nodes).reshape(size, nodes)
        focus_pos = size * nodes + torch.arange(size * num_layers).reshape(size, 1, num_layers)
        valid = torch.cat([torch.ones(size, 1, dtype=torch.bool), others], 1)
        layer_pos = torch.cat([focus_pos, other_pos], 1)
        self.total = start + int(others.sum()) * num_layers
        graph_of_task = torch.arange(size)[:, None].expand(size, tasks)
        self.graph = torch.cat([torch.arange(size).repeat_interleave(nodes),
                                torch.arange(size).repeat_interleave(num_layers),
                                graph_of_task[:, 1:][others].repeat_interleave(num_layers)])
        link = batch.links.nonzero()
        pairs = [(compute_pos[link[:, 0], link[:, 1]], compute_pos[link[:, 0], link[:, 2]])]
        chain = layer_pos[valid]  # (tasks in the batch, L), in packing order
        pairs.append((chain[:, :-1].reshape(-1), chain[:, 1:].reshape(-1)))
        owner = compute_pos.gather(1, batch.layer_node.clamp(0, nodes - 1).reshape(size, -1)).reshape(
            size, tasks, num_layers)
        pairs.append((chain.reshape(-1), owner[valid].reshape(-1)))
        rows = torch.cat([pairs[0][0], *(p for pair in pairs[1:] for p in pair), torch.arange(self.total)])
        cols = torch.cat([pairs[0][1], *(p for pair in pairs[1:] for p in reversed(pair)), torch.arange(self.total)])
        degree = torch.bincount(rows, minlength=self.total).float()
        values = degree[rows].rsqrt() * degree[cols].rsqrt()
        self.adjacency = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (self.total, self.total),
                                                 check_invariants=False).coalesce()
        self.count = torch.bincount(self.graph, minlength=size).float()[:, None]
        features = torch.zeros(self.total, len(COMPUTE_FEATURES) + len(LAYER_FEATURES))
        features[: size * nodes, : len(COMPUTE_FEATURES)] = batch.compute.reshape(-1, len(COMPUTE_FEATURES))
        features[layer_pos[valid].reshape(-1), len(COMPUTE_FEATURES):] = batch.layers[valid].reshape(
            -1, len(LAYER_FEATURES))
        self.features = features

    def propagate(self, h: torch.Tensor) -> torch.Tensor:
        """D^-1/2 (A + I) D^-1/2 h for packed node features (T, d)."""
        return torch.sparse.mm(self.adjacency, h)

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        """Each graph's mean node feature (B, d)."""
        return torch.zeros(self.size, h.shape[1]).index_add_(0, self.graph, h) / self.count

    def normalise(self, h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        """Batch normalisation over each graph's nodes (no running statistics, no affine parameters)."""
        centred = h - self.mean(h)[self.graph]
        var = torch.zeros(self.size, h.shape[1]).index_add_(0, self.graph, centred * centred) / self.count
        return centred * (var + eps).rsqrt()[self.graph]

    def compute_nodes(self, h: torch.Tensor) -> torch.Tensor:
        return h[: self.size * self.nodes].reshape(self.size, self.nodes, -1)

    def focus_layers(self, h: torch.Tensor) -> torch.Tensor:
        start = self.size * self.nodes
        return h[start: start + self.size * self.num_layers].reshape(self.size, self.num_layers, -1)


@dataclass(frozen=True)
class Heads:
    """Q-value heads: node (B, N+1), block (B, N+1, L, 100) over (end, share) given the node, subcarrier
    (B, N+1, S)."""

    node: torch.Tensor
    block: torch.Tensor
    sub: torch.Tensor


class GraphQNetwork(nn.Module):
    """Three GCN layers (eq. 11) and the factored Q readout (eq. 16); `dueling` for D2QN. The block head is the
    learned value of what follows the hop minus `cost_scale` (the rewards' scale) x the hop's known cost."""

    def __init__(self, num_subcarriers: int, dueling: bool = False, cost_scale: float = 1.0,
                 hidden: tuple[int, ...] = HIDDEN) -> None:
        super().__init__()
        self.cost_scale = cost_scale
        sizes = (len(COMPUTE_FEATURES) + len(LAYER_FEATURES), *hidden)
        self.gcn = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        width = hidden[-1]
        self.node_head = nn.Linear(3 * width, 1)
        self.pair_node = nn.Linear(2 * width, PAIR_WIDTH)
        self.pair_layer = nn.Linear(width, PAIR_WIDTH)
        self.block_hidden = nn.Linear(PAIR_WIDTH + len(PAIR_FEATURES), 2 * PAIR_WIDTH)
        self.block_head = nn.Linear(2 * PAIR_WIDTH, 4)  # the coefficients of `action_basis`
        self.sub_head = nn.Linear(2 * width, num_subcarriers)
        self.value = nn.Linear(2 * width, 1) if dueling else None

    def forward(self, batch: GraphBatch, structure: GraphStructure | None = None) -> Heads:
        """Q-value heads of a batch; `structure` (of this batch) saves building it again (a population)."""
        structure = structure or GraphStructure(batch)
        h = structure.features
        for linear in self.gcn:
            h = structure.normalise(F.relu(linear(structure.propagate(h))))
        compute, focus = structure.compute_nodes(h), structure.focus_layers(h)
        size, nodes, width = compute.shape
        task = focus.mean(1)
        pooled = structure.mean(h)
        context = torch.cat([compute, task[:, None].expand(size, nodes, width)], -1)
        node = self.node_head(torch.cat([context, pooled[:, None].expand(size, nodes, width)], -1)).squeeze(-1)
        # (node, block end) pairs: their embeddings' product and their pair features (log10), then coefficients
        # of each action's features
        pair = self.pair_node(context)[:, :, None, :] * self.pair_layer(focus)[:, None, :, :]
        hidden = F.relu(self.block_hidden(torch.cat([pair, batch.pairs.clamp(min=1e-6).log10()], -1)))
        block = torch.einsum("bnlk,bnlrk->bnlr", self.block_head(hidden), action_basis(batch))
        sub = self.sub_head(context)
        if self.value is not None:
            value = self.value(torch.cat([task, pooled], -1)).squeeze(-1)
            node = dueling_q(value, node)
            block = block - block.mean((-2, -1), keepdim=True)
            sub = sub - sub.mean(-1, keepdim=True)
        return Heads(node, block - self.cost_scale * hop_cost(batch), sub)


def _allowed_blocks(batch: GraphBatch) -> torch.Tensor:
    """(B, N+1, L, 100): the block ends and shares each node allows."""
    share_ok = torch.arange(SHARES)[None, None, :] < batch.share_limit[:, :, None]
    return batch.end_mask[:, None, :, None] & share_ok[:, :, None, :]


def _stays(heads: Heads, batch: GraphBatch) -> torch.Tensor:
    return torch.arange(heads.node.shape[1])[None, :] == batch.location[:, None]


def per_node_best(heads: Heads, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """For every node n, the best allowed (end, share, subcarrier) given n and its joint Q: values (B, N+1)
    (0 where n is not allowed) and choices (B, N+1, 3) as indices (end - 1, share - 1, subcarrier)."""
    inf = float("-inf")
    size, nodes, num_layers, shares = heads.block.shape
    block = heads.block.masked_fill(~_allowed_blocks(batch), inf).reshape(size, nodes, num_layers * shares)
    block_best, block_index = block.max(-1)
    sub_best, sub_index = heads.sub.masked_fill(~batch.sub_mask[:, None, :], inf).max(-1)
    stays = _stays(heads, batch)
    total = heads.node + block_best + torch.where(stays, 0.0, sub_best)
    values = torch.where(batch.node_mask, total, 0.0)
    choices = torch.stack([block_index // shares, block_index % shares, torch.where(stays, 0, sub_index)], -1)
    return values, choices


def per_node_at(heads: Heads, batch: GraphBatch, choices: torch.Tensor) -> torch.Tensor:
    """Joint Q (B, N+1) of each node with the given (end, share, subcarrier) choices (B, N+1, 3)."""
    shares = heads.block.shape[-1]
    flat = heads.block.flatten(-2)
    block = flat.gather(-1, (choices[..., 0] * shares + choices[..., 1]).unsqueeze(-1)).squeeze(-1)
    sub = heads.sub.gather(-1, choices[..., 2:]).squeeze(-1)
    total = heads.node + block + torch.where(_stays(heads, batch), 0.0, sub)
    return torch.where(batch.node_mask, total, 0.0)


def joint_q(heads: Heads, batch: GraphBatch, action: torch.Tensor) -> torch.Tensor:
    """Q(s, a) (B,) of actions (B, 4): node, end - 1, share - 1, subcarrier."""
    rows = torch.arange(action.shape[0])
    node = action[:, 0]
    value = heads.node[rows, node] + heads.block[rows, node, action[:, 1], action[:, 2]]
    return value + torch.where(node == batch.location, 0.0, heads.sub[rows, node, action[:, 3]])


def greedy_action(heads: Heads, batch: GraphBatch) -> torch.Tensor:
    """The joint argmax (B, 4) under the masks."""
    values, choices = per_node_best(heads, batch)
    node = masked_argmax(values, batch.node_mask)
    return torch.cat([node[:, None], choices[torch.arange(len(node)), node]], -1)


def random_action(batch: GraphBatch, generator: torch.Generator) -> torch.Tensor:
    """A random allowed action (B, 4): a node, then an end, a share and a subcarrier, each uniform among what
    the choices before it allow."""
    rows = torch.arange(batch.size)
    node = torch.multinomial(batch.node_mask.double(), 1, generator=generator).squeeze(-1)
    end = torch.multinomial(batch.end_mask.double(), 1, generator=generator).squeeze(-1)
    limit = batch.share_limit[rows, node]
    share = torch.multinomial((torch.arange(SHARES)[None, :] < limit[:, None]).double(), 1,
                              generator=generator).squeeze(-1)
    free = batch.sub_mask.double() + (~batch.sub_mask.any(-1, keepdim=True)).double()  # none free: any (unused)
    sub = torch.multinomial(free, 1, generator=generator).squeeze(-1)
    return torch.stack([node, end, share, torch.where(node == batch.location, 0, sub)], -1)


def env_action(action: torch.Tensor, location: int) -> Action:
    """A row (node, end - 1, share - 1, subcarrier) as the system's `Action`."""
    node, end, share, sub = (int(v) for v in action)
    return Action(node, end + 1, share + 1, sub if node != location else -1)


# ---------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Variant:
    description: str
    double: bool
    dueling: bool
    parameter_noise: bool
    evolution: bool


ALGORITHMS = {
    "cerl": Variant("CERL (Alg. 1): CEM over a population of GCN Q-networks, negative-TD fitness, elite "
                    "interaction, RL injection", double=False, dueling=False, parameter_noise=False, evolution=True),
    "ddqn": Variant("double DQN on the same GCN (sec. 5.2.1)", double=True, dueling=False, parameter_noise=False,
                    evolution=False),
    "d2qn": Variant("D2QN: dueling double DQN with adaptive parameter-space noise on the same GCN (sec. 5.2.1)",
                    double=True, dueling=True, parameter_noise=True, evolution=False),
}
FITNESS_TARGETS = ("own", "shared")
REWARD_SCALES = ("penalty", "bound", "none")


@dataclass(frozen=True)
class CerlConfig:
    """Every setting of a run. sec. = seed 003's section; CEM-RL = Pourchot & Sigaud 2019's defaults; ours =
    our choice where the paper is silent. DDQN and D2QN use the same settings, minus the CEM ones."""

    algorithm: str = "cerl"
    seed: int = 0
    iterations: int = 200  # sec. 5.2.1: "stable within 200 training epochs"; one iteration is one generation
    checkpoint_every: int = 10  # ours
    slots_per_iteration: int = 20  # ours: arrival slots of each training episode (it runs until its tasks end)
    threads: int = 1  # DESIGN.md: one torch thread (reproducible, and fast for these small networks)
    learning_rate: float = 1e-3  # ours (Adam)
    batch_size: int = 64  # ours (sec. 4.5 names a batch B, no size)
    buffer_size: int = 10_000  # ours (transitions)
    learning_starts: int = 256  # ours: transitions stored before the first gradient step
    train_every: int = 4  # ours: the RL agent's decisions per gradient step (DQN's 4)
    gamma: float = 1.0  # ours: per hop of a task; a task has at most L hops and eq. 6 sums them undiscounted
    loss: str = "huber"  # ours; eq. 18 is "mse": failures cost P (~6000 cost bounds), and their squared errors
    # swamp the cost differences between completing actions
    max_grad_norm: float = 10.0  # ours
    reward_scale: str = "bound"  # ours: rewards / the cost bound of one task (~1 per completed task), or / P, or raw
    max_graph_tasks: int = 16  # ours: tasks in the state graph (the focus and the next in turn order)
    target_every: int = 1  # H = 1 (sec. 5.1): the RL agent's target copy, in iterations
    epsilon_start: float = 1.0  # ours (Alg. 1 line 11 names epsilon only)
    epsilon_decay: float = 0.9  # ours: per iteration
    epsilon_end: float = 0.05  # ours
    population: int = 50  # k (sec. 5.1)
    elites: int = 25  # k / 2 (sec. 4.1.3, 5.1)
    fitness_batch: int = 64  # J (sec. 5.1)
    individual_target_every: int = 1  # H (sec. 5.1): generations between the individuals' target refreshes
    interacting_elites: int = 1  # ours: the fittest that play an episode each generation (paper: "top N")
    fitness_target: str = "own"  # eq. 14 as written; "shared": the RL agent's target for everyone
    sigma_init: float = 1e-3  # CEM-RL (a variance: Sigma = sigma_init I, Alg. 1)
    elite_weighting: str = "log-rank"  # CEM-RL (or "equal")
    cem_epsilon_start: float = 1e-3  # CEM-RL's damping, the epsilon I of eq. 15
    cem_epsilon_end: float = 1e-5  # CEM-RL
    cem_epsilon_decay: float = 0.95  # CEM-RL
    noise_std: float = 0.01  # ours (D2QN): the initial parameter-noise scale
    noise_adaptation: float = 1.01  # Plappert et al. 2018
    noise_adapt_every: int = 10  # ours (D2QN): gradient steps between adaptations
    noise_epsilon: float = 0.1  # ours (D2QN): the noise keeps the node choice as far from greedy as this epsilon

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise EdgeprofError(f"unknown algorithm {self.algorithm!r}: use one of {', '.join(ALGORITHMS)}")
        if not 0 <= self.seed < 2 ** 32:
            raise EdgeprofError(f"the seed must lie in [0, 2**32), got {self.seed}")
        for name in ("iterations", "checkpoint_every", "slots_per_iteration", "threads", "batch_size", "buffer_size",
                     "train_every", "max_graph_tasks", "target_every", "population", "elites", "fitness_batch",
                     "individual_target_every", "noise_adapt_every"):
            if getattr(self, name) < 1:
                raise EdgeprofError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_starts < 0 or self.interacting_elites < 0:
            raise EdgeprofError("learning_starts and interacting_elites must not be negative")
        if self.elites > self.population or self.interacting_elites > self.population:
            raise EdgeprofError(f"elites ({self.elites}) and interacting_elites ({self.interacting_elites}) must not "
                                f"exceed the population ({self.population})")
        if not 0 <= self.gamma <= 1:
            raise EdgeprofError(f"gamma must lie in [0, 1], got {self.gamma}")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0 <= getattr(self, name) <= 1:
                raise EdgeprofError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.epsilon_end > self.epsilon_start or not 0 < self.epsilon_decay <= 1:
            raise EdgeprofError("need epsilon_end <= epsilon_start and epsilon_decay in (0, 1]")
        hyperparameters.require_finite(self)
        for name in ("learning_rate", "sigma_init", "noise_std", "max_grad_norm"):
            hyperparameters.require(self, name, above=0)
        for name in ("cem_epsilon_start", "cem_epsilon_end"):
            hyperparameters.require(self, name, low=0)
        hyperparameters.require(self, "cem_epsilon_end", high=self.cem_epsilon_start)
        hyperparameters.require(self, "cem_epsilon_decay", above=0, high=1)
        hyperparameters.require(self, "population", high=10_000)  # each member is a copy of the network
        hyperparameters.require(self, "threads", high=1024)
        if not 0 <= self.noise_epsilon < 1:
            raise EdgeprofError(f"noise_epsilon must lie in [0, 1), got {self.noise_epsilon}")
        if not self.noise_adaptation > 1:
            raise EdgeprofError(f"noise_adaptation must exceed 1, got {self.noise_adaptation}")
        choices = {"loss": ("mse", "huber"), "reward_scale": REWARD_SCALES, "fitness_target": FITNESS_TARGETS,
                   "elite_weighting": WEIGHTINGS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise EdgeprofError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @property
    def variant(self) -> Variant:
        return ALGORITHMS[self.algorithm]


_NOT_HYPERPARAMETERS = {"algorithm", "seed", "iterations", "slots_per_iteration", "checkpoint_every"}


def make_config(algorithm: str, **settings: Any) -> CerlConfig:
    return CerlConfig(algorithm=algorithm, **settings)


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    return hyperparameters.parse(CerlConfig, pairs, _NOT_HYPERPARAMETERS)


def episode_seed(seed: int, iteration: int, actor: int) -> int:
    """The episode of `actor` (0: the RL agent, 1..: the elites) in `iteration`: independent streams."""
    return int(np.random.SeedSequence([seed, iteration, actor]).generate_state(1)[0])


def reward_scale(config: CerlConfig, scenario: Any, workload: ChainWorkload) -> float:
    """What rewards are multiplied by before learning: 1 / P (a failure costs 1), 1 / the cost bound of one
    task, or 1."""
    if config.reward_scale == "penalty":
        return 1.0 / max(failure_penalty(workload, scenario), 1e-12)
    if config.reward_scale == "bound":
        return 1.0 / cost_bound_per_task(workload, scenario)
    return 1.0


# ---------------------------------------------------------------------------------------------------------------
# Learning pieces


def td_targets(online: nn.Module, target: nn.Module, batch: GraphBatch, next_batch: GraphBatch,
               reward: torch.Tensor, terminated: torch.Tensor, gamma: float, double: bool) -> torch.Tensor:
    """r + gamma (1 - done) max_a' Q'(s', a') (eq. 17), or double DQN's target; no gradient. Every reward is a
    cost, so no value is above 0: the bootstrapped values are clipped there."""
    with torch.no_grad():
        target_heads = target(next_batch)
        if not double:
            target_values, _ = per_node_best(target_heads, next_batch)
            return q_target(reward, target_values.clamp(max=0.0), terminated, gamma, next_mask=next_batch.node_mask)
        online_values, online_choices = per_node_best(online(next_batch), next_batch)
        evaluated = per_node_at(target_heads, next_batch, online_choices).clamp(max=0.0)
        return q_target(reward, evaluated, terminated, gamma, next_q_online=online_values,
                        next_mask=next_batch.node_mask)


def flat_parameters(network: nn.Module) -> torch.Tensor:
    return nn.utils.parameters_to_vector(network.parameters()).detach().clone()


def load_flat(network: nn.Module, vector: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        nn.utils.vector_to_parameters(vector, network.parameters())
    return network


def population_fitness(population: torch.Tensor, targets: torch.Tensor | None, shared_target: nn.Module | None,
                       scratch: nn.Module, batch: GraphBatch, next_batch: GraphBatch, action: torch.Tensor,
                       reward: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """Eq. 14 for every individual (row of `population`) on one batch: -mean (r + gamma max Q'_i(s') - Q_i(s, a))^2,
    Q'_i the individual's target (`targets` row) or `shared_target` for all."""
    fitness = torch.empty(population.shape[0])
    now, following = GraphStructure(batch), GraphStructure(next_batch)
    with torch.no_grad():
        shared = None
        if shared_target is not None:
            values, _ = per_node_best(shared_target(next_batch, following), next_batch)
            shared = q_target(reward, values.clamp(max=0.0), terminated, gamma, next_mask=next_batch.node_mask)
        for i, parameters in enumerate(population):
            q = joint_q(load_flat(scratch, parameters)(batch, now), batch, action)
            y = shared
            if y is None:
                values, _ = per_node_best(load_flat(scratch, targets[i])(next_batch, following), next_batch)
                y = q_target(reward, values.clamp(max=0.0), terminated, gamma, next_mask=next_batch.node_mask)
            fitness[i] = -((y - q) ** 2).mean()
    return fitness


class Population:
    """CERL's population: k individuals and their targets as flat parameter vectors (slot 0: the injected RL
    agent), the CEM distribution, and the generation count."""

    def __init__(self, config: CerlConfig, network: nn.Module) -> None:
        mean = flat_parameters(network)
        self.cem = DiagonalCEM(mean, config.sigma_init, config.elites, config.elite_weighting,
                               config.cem_epsilon_start, config.cem_epsilon_end, config.cem_epsilon_decay)
        self.members = mean.repeat(config.population, 1)
        self.targets = self.members.clone()
        self.generation = 0

    def draw(self, generator: torch.Generator, keep_first: bool, target_every: int) -> None:
        """Replace every member but the injected one (slot 0, when `keep_first`) by draws from the CEM
        distribution; every `target_every` generations each target becomes its member."""
        start = 1 if keep_first else 0
        self.members[start:] = self.cem.sample(len(self.members) - start, generator)
        if self.generation % target_every == 0:
            self.targets[start:] = self.members[start:]
        self.generation += 1

    def inject(self, online: nn.Module, target: nn.Module) -> None:
        self.members[0] = flat_parameters(online)
        self.targets[0] = flat_parameters(target)

    def state_dict(self) -> dict[str, Any]:
        return {"cem": self.cem.state_dict(), "members": self.members.clone(), "targets": self.targets.clone(),
                "generation": self.generation}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cem.load_state_dict(state["cem"])
        self.members, self.targets = state["members"].clone(), state["targets"].clone()
        self.generation = int(state["generation"])


# ---------------------------------------------------------------------------------------------------------------
# Training


class Trainer:
    """One run of CERL, DDQN or D2QN (`config.algorithm`)."""

    def __init__(self, config: CerlConfig, scenario: Any, workload: ChainWorkload) -> None:
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.config, self.scenario, self.workload = config, scenario, workload
        variant = config.variant
        self.spec = GraphSpec.of(scenario, workload, config.max_graph_tasks)
        subcarriers = scenario["radio.subcarriers"]
        self.scale = reward_scale(config, scenario, workload)
        self.online = GraphQNetwork(subcarriers, variant.dueling, self.scale)
        self.target = GraphQNetwork(subcarriers, variant.dueling, self.scale)
        update_target(self.target, self.online)
        self.acting = GraphQNetwork(subcarriers, variant.dueling, self.scale)  # elites, and D2QN's perturbed copy
        self.probe = GraphQNetwork(subcarriers, variant.dueling, self.scale)  # D2QN: the copy that measures the noise
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate)
        self.replay = ReplayBuffer(config.buffer_size, self.spec.replay_fields(), seed=config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.population = Population(config, self.online) if variant.evolution else None
        self.noise = (AdaptiveParameterNoise(config.seed, config.noise_std, config.noise_adaptation)
                      if variant.parameter_noise else None)
        self.epsilon = ExponentialSchedule(config.epsilon_start, config.epsilon_decay, config.epsilon_end)
        self.iteration = 0
        self.counters = Counters()
        self.last_fitness: torch.Tensor | None = None
        self.last_fitness_index: torch.Tensor | None = None

    def components(self) -> dict[str, Any]:
        parts = {"online": self.online, "target": self.target, "optimizer": self.optimizer, "replay": self.replay,
                 "generator": self.generator, "counters": self.counters}
        if self.population is not None:
            parts["population"] = self.population
        if self.noise is not None:
            parts["noise"] = self.noise
        return parts

    # -- interaction ----------------------------------------------------------------------------------------

    def play(self, network: nn.Module, seed: int, epsilon: float, learn: bool) -> dict[str, float]:
        """One episode of `network` (epsilon-greedy), every transition into the buffer; with `learn`, the RL
        agent's: a gradient step every `train_every` decisions. Its metrics, return and decision time.

        A transition is one task's hop (eq. 13 is per task): its reward is the hop's cost, P if the task missed
        its deadline, and P for each task that found nothing allowed at its turn right after this hop (the hop
        that took the last share or subcarrier is the marginal cause); its next state is the same task's next
        decision (other tasks decide in between), or none when the task completed or failed. A task that fails
        at its turn also ends its own last transition with P (deferring work must not pay)."""
        env = ChainEnv(self.scenario, self.workload, self.config.slots_per_iteration, seed)
        episode_return, decisions, acting_s, losses = 0.0, 0, 0.0, []
        pending: dict[int, tuple[dict[str, np.ndarray], torch.Tensor, float]] = {}
        while not env.done:
            started = time.perf_counter()
            task_id = env.focus.task_id
            observation = encode(env, self.spec)
            batch = GraphBatch.of(observation)
            explore = float(torch.rand((), generator=self.generator)) < epsilon
            with torch.no_grad():
                action = (random_action(batch, self.generator) if explore
                          else greedy_action(network(batch), batch))[0]
            acting_s += time.perf_counter() - started
            if task_id in pending:
                self._store(*pending.pop(task_id), observation, False)
            result = env.step(env_action(action, int(observation["location"])))
            if result.completed or result.missed_deadline:
                self._store(observation, action, result.reward, observation, True)
            else:
                pending[task_id] = (observation, action, result.reward)
            for blocked in result.blocked:
                if blocked in pending:  # a task blocked at its first turn made no decision to charge
                    last, taken, reward = pending.pop(blocked)
                    self._store(last, taken, reward - env.penalty, last, True)
            episode_return += result.reward
            decisions += 1
            if learn:
                self.counters.agent_steps += 1
                if len(self.replay) >= max(self.config.learning_starts, 1) and (
                        self.counters.agent_steps % self.config.train_every == 0):
                    losses.append(self.update())
        self.counters.env_steps += decisions
        return {**env.metrics(), "return": float(episode_return), "decisions": decisions,
                "decision_ms": 1e3 * acting_s / max(decisions, 1),
                "loss": float(np.mean(losses)) if losses else math.nan}

    def _store(self, observation: dict[str, np.ndarray], action: torch.Tensor, reward: float,
               following: dict[str, np.ndarray], terminated: bool) -> None:
        self.replay.add(**observation, action=action, reward=np.float32(reward), terminated=np.bool_(terminated),
                        **{f"next_{name}": value for name, value in following.items()})

    def update(self) -> float:
        """One gradient step on a replayed minibatch (eq. 18-19); D2QN adapts its noise every few."""
        sample = self.replay.sample(self.config.batch_size).data
        batch, next_batch = GraphBatch.of(sample), GraphBatch.of(sample, "next_")
        reward = sample["reward"] * self.scale
        y = td_targets(self.online, self.target, batch, next_batch, reward, sample["terminated"], self.config.gamma,
                       self.config.variant.double)
        q = joint_q(self.online(batch), batch, sample["action"])
        loss = td_loss(q, y, self.config.loss)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.counters.updates += 1
        if self.noise is not None and self.counters.updates % self.config.noise_adapt_every == 0:
            self.adapt_noise(batch)
        return loss.item()

    def adapt_noise(self, batch: GraphBatch) -> None:
        """Plappert et al.: grow the noise while the perturbed node choice stays within the KL of epsilon-greedy
        at `noise_epsilon`."""
        self.noise.perturb(self.online, into=self.probe)
        with torch.no_grad():
            clean, _ = per_node_best(self.online(batch), batch)
            noisy, _ = per_node_best(self.probe(batch), batch)
        distance = q_policy_kl(clean, noisy, batch.node_mask)
        self.noise.adapt(distance, noise_threshold(self.config.noise_epsilon, self.spec.num_nodes))

    # -- CEM ------------------------------------------------------------------------------------------------

    def generation(self) -> dict[str, float]:
        """Alg. 1 lines 3-7: draw, score on one shared batch, update mu and Sigma, elites play."""
        config, population = self.config, self.population
        population.draw(self.generator, keep_first=self.iteration > 0, target_every=config.individual_target_every)
        row = {"fitness_best": math.nan, "fitness_mean": math.nan, "rl_rank": math.nan, "elite_return": math.nan,
               "elite_cost": math.nan, "elite_completion_rate": math.nan}
        if len(self.replay) < config.fitness_batch:
            return row
        sample = self.replay.sample(config.fitness_batch)
        data = sample.data
        batch, next_batch = GraphBatch.of(data), GraphBatch.of(data, "next_")
        shared = self.target if config.fitness_target == "shared" else None
        fitness = population_fitness(population.members, population.targets, shared, self.acting, batch, next_batch,
                                     data["action"], data["reward"] * self.scale, data["terminated"], config.gamma)
        self.last_fitness, self.last_fitness_index = fitness, sample.index
        order = population.cem.update(population.members, fitness)
        played = [self.play(load_flat(self.acting, population.members[i]), episode_seed(config.seed, self.iteration,
                                                                                       rank + 1), 0.0, learn=False)
                  for rank, i in enumerate(order[: config.interacting_elites].tolist())]
        row.update(fitness_best=float(fitness.max()), fitness_mean=float(fitness.mean()))
        if self.iteration > 0:
            row["rl_rank"] = float((fitness > fitness[0]).sum())
        if played:
            row.update(elite_return=float(np.mean([p["return"] for p in played])),
                       elite_cost=float(np.mean([p["cost"] for p in played])),
                       elite_completion_rate=float(np.nanmean([_logged(p["completion_rate"]) for p in played])))
        return row

    # -- one iteration ----------------------------------------------------------------------------------------

    def run_iteration(self) -> dict[str, Any]:
        started = time.perf_counter()
        config = self.config
        row: dict[str, Any] = {}
        if self.population is not None:
            row.update(self.generation())
        epsilon = 0.0 if self.noise is not None else self.epsilon(self.iteration)
        if self.noise is not None:
            self.noise.perturb(self.online, into=self.acting)
        actor = self.acting if self.noise is not None else self.online
        played = self.play(actor, episode_seed(config.seed, self.iteration, 0), epsilon, learn=True)
        if self.population is not None:
            self.population.inject(self.online, self.target)
        self.iteration += 1
        if self.iteration % config.target_every == 0:
            update_target(self.target, self.online)
        row.update({name: _logged(played[name]) for name in ("cost", "cost_per_task", "completion_rate",
                                                             "collaborations", "objective", "return", "loss",
                                                             "decision_ms")})
        return {"iteration": self.iteration, "env_steps": self.counters.env_steps,
                "agent_steps": self.counters.agent_steps, "updates": self.counters.updates, **row,
                "epsilon": epsilon, "noise_std": self.noise.std if self.noise is not None else math.nan,
                "seconds": time.perf_counter() - started}


@dataclass
class Counters:
    """Steps so far: every actor's decisions, the RL agent's, gradient steps."""

    env_steps: int = 0
    agent_steps: int = 0
    updates: int = 0

    def state_dict(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "agent_steps": self.agent_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps, self.agent_steps, self.updates = (int(state[k]) for k in ("env_steps", "agent_steps",
                                                                                  "updates"))


def _logged(value: float | None) -> float:
    """A metric in the training log: an episode's undefined mean (None: no task completed) is a gap (NaN) in the
    curves."""
    return math.nan if value is None else value


LOG_COLUMNS = ("iteration", "env_steps", "agent_steps", "updates", "cost", "cost_per_task", "completion_rate",
               "collaborations", "objective", "return", "loss", "epsilon", "noise_std", "fitness_best",
               "fitness_mean", "rl_rank", "elite_return", "elite_cost", "elite_completion_rate", "decision_ms",
               "seconds")
TIMING_COLUMNS = ("decision_ms", "seconds")


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


class TrainedPolicy:
    """A trained Q-network acting greedily in the system (`sim.cerl.Policy`), or, with a generator, as in
    training's end: epsilon-greedy at `epsilon` (D2QN: a perturbed copy at the final noise scale)."""

    def __init__(self, network: GraphQNetwork, spec: GraphSpec, epsilon: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        self.network, self.spec, self.epsilon, self.generator = network, spec, epsilon, generator
        self.decision_s = 0.0
        self.decisions = 0

    @torch.no_grad()
    def act(self, env: ChainEnv) -> Action:
        started = time.perf_counter()
        observation = encode(env, self.spec)
        batch = GraphBatch.of(observation)
        if self.generator is not None and float(torch.rand((), generator=self.generator)) < self.epsilon:
            action = random_action(batch, self.generator)[0]
        else:
            action = greedy_action(self.network(batch), batch)[0]
        self.decision_s += time.perf_counter() - started
        self.decisions += 1
        return env_action(action, int(observation["location"]))


def load_network(run: Any, workload: ChainWorkload) -> GraphQNetwork:
    """The RL agent's Q-network of a run's latest checkpoint."""
    network = GraphQNetwork(run.scenario["radio.subcarriers"], run.config.variant.dueling,
                            reward_scale(run.config, run.scenario, workload))
    state = component_state(run.paths.checkpoint, "online")
    try:
        network.load_state_dict(state)
    except RuntimeError as error:  # the network is built from the run's own scenario: only the code can differ
        differences = shape_differences(state, network.state_dict()) or str(error)
        raise EdgeprofError(f"the checkpoint of {run.path} holds a Q-network of another shape than this edgeprof's "
                            f"({differences}): it was written by another version of edgeprof's CERL network; train "
                            "the run again") from None
    return network.eval()


def policy_maker(run: Any, workload: ChainWorkload, draw: tuple[str, ...]) -> Callable[[ChainEnv, int], Any]:
    """The run's RL agent for `sim.evaluation.run_episodes`, greedy, or drawing as at the end of training."""
    torch.set_num_threads(run.config.threads)
    network = load_network(run, workload)
    spec = GraphSpec.of(run.scenario, workload, run.config.max_graph_tasks)
    config = run.config

    def make(env: ChainEnv, seed: int) -> TrainedPolicy:
        if not draw:
            return TrainedPolicy(network, spec)
        generator = torch.Generator().manual_seed(seed)
        if config.variant.parameter_noise:
            noise = AdaptiveParameterNoise(seed, config.noise_std, config.noise_adaptation)
            noise.std = component_state(run.paths.checkpoint, "noise")["std"]
            perturbed = GraphQNetwork(run.scenario["radio.subcarriers"], True, network.cost_scale)
            noise.perturb(network, into=perturbed)
            return TrainedPolicy(perturbed, spec)
        epsilon = ExponentialSchedule(config.epsilon_start, config.epsilon_decay, config.epsilon_end)
        return TrainedPolicy(network, spec, epsilon(config.iterations), generator)

    return make


def config_from_record(settings: dict[str, Any]) -> CerlConfig:
    return CerlConfig(**settings)


def summary(row: dict[str, Any]) -> str:
    return (f"cost {row['cost']:.4g} per slot, {row['cost_per_task']:.4g} per completed task, completion "
            f"{row['completion_rate']:.3f}, collaborations {row['collaborations']:.0f}")


PANELS = (Panel("cost", "(a) system cost per slot (eq. 6)"), Panel("completion_rate", "(b) completion rate"),
          Panel("cost_per_task", "(c) cost per completed task"), Panel("collaborations", "(d) collaborations"),
          Panel("objective", "(e) cost + failure penalties per slot", log_scale=True),
          Panel("loss", "(f) TD loss", log_scale=True))
LAYERS = ("action",)

for _name, _variant in ALGORITHMS.items():
    register_trainer(TrainerInfo(
        name=_name, system="cerl", description=_variant.description,
        make_config=functools.partial(make_config, _name), config_from_record=config_from_record,
        hyperparameters=parse_hyperparameters, make_trainer=Trainer, log_columns=LOG_COLUMNS,
        timing_columns=TIMING_COLUMNS, make_policy=policy_maker, panels=PANELS, summary=summary, layers=LAYERS))
