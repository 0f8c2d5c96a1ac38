"""Seed 001's three policy layers (HC-MAPPO-L, section IV) as torch modules, and the observations they read.

Observation builders are pure functions of an `EdgeSystem` that return float32 tensors for all E environments
at once, from the numpy features of `sim.observations` (put at order 1 there; the user agents' features are the
PettingZoo facade's too).

- `deployment_observation` (eq. 14-15), per server: the ending interval's requests, system-wide and at this
  server; its deployment and how many other servers host each service (our summary of vec(X), independent of
  J and of the servers' order); each model's size as a share of its storage; each model's cloud fetch time.
- `user_observation` (eq. 16-17): each user's local view (requested service and base model one-hot, D_in, which
  servers host the service, uplink and downlink SNR to every server, its compute, power, J/FLOP, privacy
  preference, how deep its prefix cache holds the requested model), the masks of `EdgeSystem.user_masks`, and a
  global state for the centralised critics (requests and demand per service, vec(X), the servers, and every
  user's compact features and uplink SNRs).
- `allocation_observation` (eq. 18), after association and partition: per user what its server must do for it
  (edge GFLOP, upload and prefix download MB, its links, whether the service is there), per server its
  capacity and load.

Layers (network sizes from section V-A; orthogonal initialisation, Tanh):

- `DeploymentPolicy` (eq. 28-30): an MLP encodes a server's observation into the GRU's first hidden state;
  each step scores the services from h_n and the other servers' picks so far (actor) and gives V(h_n) (critic
  sharing the GRU, eq. 29); the GRU then reads the choice's embedding with the updated indicator x_st and the
  free storage share (the "state augmentation" of IV-B1). Ours: the servers of a system pick in turn
  (`deployment_order="turn"`), each seeing the sets of the servers before it, or in rounds ("rounds"), one
  service each per step, each pick seeing the other servers' picks of the earlier rounds: servers that choose
  at once without either pick alike and leave services uncovered. Rounds draw all servers in one batched loop
  (~560 batch-10 picks an iteration at the paper's size, in turn ~5,400 batch-1 ones), but a server sees the
  others only after its first pick: on `small`, where a server holds one or two models, rounds left services
  unhosted (`benchmarks/results/hc_mappo_l_issue26.md`). Acting draws the picks under the duplicate and
  storage masks (exact float64 bytes) and then scores them with the training path itself: `evaluate` feeds the
  stored choices back to the GRU and scores every step at once under the same masks (`storage_masks`,
  `score_sequences`), so the first PPO ratio on fresh data is 1 (the public code's bug D1); tests check that
  the draws are those of the step-by-step reference `autoregressive_sequence`. No stop choice, as in the paper: a
  sequence ends when no further service fits. Deploying one more service never lowers the hits of eq. 22 and keeping
  it over intervals costs no migration (eq. 23), so a stop would pay only where a service's one-off fetch
  cost outweighs every hit it could bring.
- `UserPolicy`: one actor shared by all users, without an agent id (users differ through their observation,
  and an id-free actor runs at any K, which the paper's user-count sweeps need). The server is drawn first,
  then the partition point from a head conditioned on that server (`ServerThenPoint`): the best split depends
  on the chosen link, which independent heads (the public code) cannot express. The reward and cost critics
  are two heads of one trunk (`shared_critic`, the public code's; or two networks); each predicts in normalised
  units, so the trainer keeps one `ValueNormalizer` (`rl.normalizers`) per critic. Methods without the
  multiplier have no cost critic. Centralised critics read [global state, own local observation] (an
  agent-specific state, Yu et al.); `independent_critics=True` gives the IPPO ablations' local critics.
- `AllocationPolicy` (IV-B3): users are encoded, each server's context (its users' mean encoding and its own
  features) forms one query per resource, each user's key meets its own server's query: a scaled dot-product
  score. The stochastic action is a Gaussian on these scores (a logistic-normal over shares): the stored action
  is the logits, with an exact Gaussian log-density for PPO, and shares are the softmax of the logits over each
  server's users, in float64, so they sum to 1 per server within rounding (C5, C6) and a user gets only a share
  of its own server. A user alone at its server gets everything whatever its logit, so only users that share
  a server enter the log-probability and entropy; a server with fewer than two users contributes 0. Unlike the
  public code (deterministic actor trained by SAC, NaN for an empty server), this is an ordinary PPO policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from edgeprof.rl.distributions import (
    MaskedCategorical,
    SequenceResult,
    StorageMasker,
    gumbel_noise,
    score_sequences,
    storage_masks,
)
from edgeprof.sim import core, model
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.observations import (
    DATA_UNIT_BYTES,
    STORAGE_UNIT_BYTES,
    WORK_UNIT_FLOPS,
    batch_fraction,
    link_snr,
    log10_1p,
    log10_units,
    server_features,
    user_features,
)


@dataclass(frozen=True)
class HCPolicyConfig:
    """Network sizes: seed 001 section V-A where it gives them; the rest is our choice, marked so."""

    user_hidden: int = 256  # V-A: user actor and critics are 256-wide MLPs
    user_layers: int = 2  # our choice: V-A gives the width only
    deploy_hidden: int = 256  # V-A: GRU with a 256-dimensional hidden state
    deploy_embed: int = 32  # our choice (the public configuration's embedding size)
    alloc_hidden: int = 128  # V-A: attention networks with a 128-dimensional hidden size
    alloc_log_std: float = -0.5  # our choice: initial log standard deviation of the allocation logits
    head_gain: float = 0.01  # our choice (MAPPO's): orthogonal gain of policy outputs, near-uniform at start
    deployment_order: str = "turn"  # ours: servers pick in turn, or "rounds" (together, one service each a step)
    shared_critic: bool = True  # the public code's: the users' reward and cost values are two heads of one trunk;
    # False: two networks (seed 001 names two critics, phi_usr and phi_cost)
    independent_critics: bool = False  # True for H-IPPO / HC-IPPO-L: user critics see only the local observation
    cost_critic: bool = True  # set by the algorithm: False for methods without the multiplier (nothing reads it)


# ---------------------------------------------------------------------------------------------------------------
# Observations


@dataclass(frozen=True)
class DeploymentObservation:
    """What the deployment agents see at a deployment slot; leading axes (E, J), or any batch shape."""

    features: torch.Tensor  # (E, J, F_d) float32
    storage_bytes: torch.Tensor  # (E, J) float64 S_j: the storage mask works in exact bytes, as C7's check does
    model_bytes: torch.Tensor  # (I,) float64 D_i


@dataclass(frozen=True)
class UserObservation:
    """What the user agents and their critics see; leading axes (E, K), or (B,) for a minibatch of samples."""

    local: torch.Tensor  # (E, K, F_u) float32, each user's own view (eq. 16)
    state: torch.Tensor  # (E, G) per environment, or (E, K, G) per agent: the critics' global state (eq. 17)
    server_mask: torch.Tensor  # (E, K, J) bool, servers that host the request (`EdgeSystem.user_masks`)
    point_mask: torch.Tensor  # (E, K, P) bool, partition points of the requested model, P = Lmax + 1
    state_index: torch.Tensor | None = None  # (E, K) long: `state` is then a table (S, G), each agent reads a row


@dataclass(frozen=True)
class AllocationObservation:
    """What the allocation agents see once users have chosen; leading axis E (whole environments only)."""

    users: torch.Tensor  # (E, K, F_a) float32, each user's request as its server sees it
    servers: torch.Tensor  # (E, J, F_s) float32
    association: torch.Tensor  # (E, K) long, each user's server


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def deployment_observation(system: EdgeSystem) -> DeploymentObservation:
    """The deployment agents' observation; build it before `EdgeSystem.deploy`, which resets the counters.

    Per server (E, J, 6I + 1): [system-wide requests per service (r, eq. 14), this server's requests per
    service (h_j), its current deployment x_j, share of the other servers hosting each service now, D_i / S_j,
    log10(1 + seconds to fetch D_i from the cloud), log10 S_j]. Counts are per request of an interval (K dT
    requests), the server's scaled by J so that an evenly loaded server sums to about 1.
    """
    table, entities = system.table, system.entities
    servers = system.num_servers
    per_interval = system.num_users * system.scenario["system.slots_per_deployment"]
    shape = (system.num_envs, servers, table.num_services)
    popularity = np.broadcast_to(system.interval_requests[:, None, :] / per_interval, shape)
    local = system.interval_server_requests * servers / per_interval
    own = system.deployment.transpose(0, 2, 1).astype(np.float64)  # (E, J, I)
    others = (own.sum(axis=1, keepdims=True) - own) / max(servers - 1, 1)
    size = table.model_bytes / entities.server_storage_bytes[..., None]
    fetch_s = model.BITS_PER_BYTE * table.model_bytes / entities.cloud_rate_bps[..., None]
    storage = log10_units(entities.server_storage_bytes, STORAGE_UNIT_BYTES)[..., None]
    features = np.concatenate([popularity, local, own, others, size, log10_1p(fetch_s, 1.0), storage], axis=-1)
    return DeploymentObservation(features=_tensor(features),
                                 storage_bytes=torch.from_numpy(entities.server_storage_bytes.astype(np.float64)),
                                 model_bytes=torch.from_numpy(table.model_bytes.astype(np.float64)))


def user_observation(system: EdgeSystem) -> UserObservation:
    """The user agents' observation for the current slot: `sim.observations.user_features` (its docstring lists
    the features) as tensors, with the masks of `EdgeSystem.user_masks`."""
    local, state = user_features(system)
    server_mask, point_mask = system.user_masks()
    return UserObservation(local=_tensor(local), state=_tensor(state), server_mask=torch.from_numpy(server_mask),
                           point_mask=torch.from_numpy(point_mask))


def allocation_observation(system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> AllocationObservation:
    """The allocation agents' observation once each user has a server (E, K) and a partition point (E, K).

    Per user (E, K, 8): [D_in share, z / L_i, log10(1 + edge GFLOP), log10(1 + upload MB), log10(1 + prefix
    download MB, after the cache), uplink and downlink SNR to its server, whether its server hosts the service].
    Workloads are the whole request's (D_in samples), the quantities that the shares divide (eq. 4-5).
    Per server (E, J, 3): [log compute, log bandwidth, its users / (K / J)].
    """
    table, scenario, slot = system.table, system.scenario, system.slot
    association, z = np.asarray(association), np.asarray(z)
    envs, users = np.arange(system.num_envs)[:, None], np.arange(system.num_users)[None, :]
    point = slot.requests * (table.max_points + 1) + z
    cached = 0.0
    if scenario["users.prefix_cache"]:
        cached = core.cached_prefix_bytes(table, slot.requests, system.cache.depth)
    download = model.prefix_download_bytes(np.take(table.prefix_param_bytes, point), cached)
    uplink, downlink = (snr[envs, association, users] for snr in link_snr(system))
    hosted = model.served_by_deployment(system.deployment, slot.requests, association)
    per_user = np.stack([
        batch_fraction(system), z / table.num_points[slot.requests],
        log10_1p(slot.batch * np.take(table.edge_flops, point), WORK_UNIT_FLOPS),
        log10_1p(slot.batch * np.take(table.upload_bytes, point), DATA_UNIT_BYTES),
        log10_1p(download, DATA_UNIT_BYTES), uplink, downlink, hosted,
    ], axis=-1)
    load = model.per_server_sum(np.ones(association.shape), association, system.num_servers)
    per_server = np.concatenate([server_features(system)[..., :2],
                                 (load * system.num_servers / system.num_users)[..., None]], axis=-1)
    return AllocationObservation(users=_tensor(per_user), servers=_tensor(per_server),
                                 association=torch.from_numpy(association.astype(np.int64)))


# ---------------------------------------------------------------------------------------------------------------
# Networks


_TANH_GAIN = nn.init.calculate_gain("tanh")


def _linear(inputs: int, outputs: int, gain: float) -> nn.Linear:
    layer = nn.Linear(inputs, outputs)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(inputs: int, hidden: int, layers: int) -> nn.Sequential:
    """`layers` blocks of Linear + Tanh, `hidden` wide (V-A: orthogonal initialisation, Tanh)."""
    blocks: list[nn.Module] = []
    for index in range(layers):
        blocks += [_linear(inputs if index == 0 else hidden, hidden, _TANH_GAIN), nn.Tanh()]
    return nn.Sequential(*blocks)


def _critic(inputs: int, hidden: int, layers: int, outputs: int = 1) -> nn.Sequential:
    return nn.Sequential(_mlp(inputs, hidden, layers), _linear(hidden, outputs, 1.0))


# Deployment -----------------------------------------------------------------------------------------------------


class DeploymentHidden(NamedTuple):
    """What a server's auto-regressive policy carries from one pick to the next (B rows, one per server)."""

    gru: torch.Tensor  # (B, H) h_n
    chosen: torch.Tensor  # (B, I) x_st: 1 for the services picked so far
    free: torch.Tensor  # (B,) storage not yet used, as a share of S_j (a feature; the masker decides what fits)
    size: torch.Tensor  # (B, I) D_i / S_j
    others: torch.Tensor  # (B, L, I) the other servers' picks seen at each step (`others_picks`)
    step: int = 0  # n: the picks made so far


class DeploymentPolicy(nn.Module):
    """Eq. 28-30: each server picks services one at a time with a GRU, under duplicate and storage masks; each
    pick also reads what the other servers of the system have picked so far (`others_picks`): in turn, the
    sets of the servers before it, in rounds, the others' picks of the earlier steps (`deployment_order`).

    A `StepPolicy` for `autoregressive_sequence` (the step-by-step reference, given the table of the others'
    picks); call `sample` to act, or `draw` for the choices alone, and `evaluate` to re-score stored
    choices (teacher forcing: every step's inputs are known from the stored choices and the table); `sample` is
    `draw` scored by `evaluate`. Observations have the servers of a system as their last leading axis (..., J).
    Both return a `SequenceResult` shaped like the observation's leading axes: `log_prob` (eq. 30), `entropy`
    (summed over the steps), `value` (eq. 29, the mean step value), `choices` padded with -1.
    """

    def __init__(self, obs_dim: int, num_services: int, config: HCPolicyConfig = HCPolicyConfig()) -> None:
        super().__init__()
        hidden = config.deploy_hidden
        self.num_services = num_services
        self.encoder = _mlp(obs_dim, hidden, 2)  # h_0 from o_j^dep
        self.embed = nn.Embedding(num_services, config.deploy_embed)
        self.gru = nn.GRUCell(config.deploy_embed + num_services + 1, hidden)
        for name, parameter in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(parameter)
            else:
                nn.init.zeros_(parameter)
        self.actor = _linear(hidden + num_services, num_services, config.head_gain)  # reads [h_n, others' picks]
        self.critic = _linear(hidden, 1, 1.0)
        self.validate = True  # False: `evaluate` trusts that the stored choices were drawn under its masks
        if config.deployment_order not in ("turn", "rounds"):
            raise ValueError(f"deployment_order must be turn or rounds, got {config.deployment_order!r}")
        self.order = config.deployment_order

    def step(self, hidden: DeploymentHidden) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, I) of the next service and the step value V(h_n) (B,)."""
        others = hidden.others[:, min(hidden.step, hidden.others.shape[1] - 1)]
        return self.actor(torch.cat([hidden.gru, others], dim=-1)), self.critic(hidden.gru).squeeze(-1)

    def advance(self, hidden: DeploymentHidden, choice: torch.Tensor) -> DeploymentHidden:
        """h_{n+1} = GRU([embedding of the choice, x_st after it, free storage after it], h_n)."""
        picked = choice.unsqueeze(-1)  # (B, 1)
        chosen = hidden.chosen.scatter(-1, picked, 1.0)
        free = hidden.free - hidden.size.gather(-1, picked).squeeze(-1)
        inputs = torch.cat([self.embed(choice), chosen, free.unsqueeze(-1)], dim=-1)
        return DeploymentHidden(self.gru(inputs, hidden.gru), chosen, free, hidden.size, hidden.others,
                                hidden.step + 1)

    def initial_hidden(self, obs: DeploymentObservation, others: torch.Tensor | None = None) -> DeploymentHidden:
        """h_0 = MLP(o_j^dep), nothing chosen, all storage free; one row per server (B = the leading axes);
        `others` (..., L, I), the others' picks seen at each step (`others_picks`; default: none)."""
        storage = obs.storage_bytes.reshape(-1)  # (B,)
        features = obs.features.reshape(storage.shape[0], -1)  # (B, F_d)
        size = (obs.model_bytes / storage.unsqueeze(-1)).to(features.dtype)  # (B, I)
        if others is None:
            others = features.new_zeros((len(storage), 1, self.num_services))
        others = others.reshape(len(storage), -1, self.num_services).to(features.dtype)
        return DeploymentHidden(self.encoder(features), torch.zeros_like(size), features.new_ones(len(storage)), size,
                                others)

    def masker(self, obs: DeploymentObservation) -> StorageMasker:
        """Duplicate and storage masks in exact bytes, one row per server."""
        return StorageMasker(obs.model_bytes, obs.storage_bytes.reshape(-1))

    @torch.no_grad()
    def draw(self, obs: DeploymentObservation, generator: torch.Generator | None = None, greedy: bool = False,
             noise: torch.Tensor | None = None) -> torch.Tensor:
        """Each server's services (..., J, I) in the order picked, padded with -1: drawn from the policy (or the
        most probable one at each step, `greedy`) under the duplicate and storage masks, not yet scored.

        The servers of each system (the last leading axis, J) pick in turn or in rounds (`deployment_order`).
        The draws are Gumbel-max with the noise of every step drawn at once (`noise`, (..., J, I, I), or one
        `gumbel_noise` draw from `generator`): the choices are those of `autoregressive_sequence` given that
        noise and the table of the others' picks (`others_picks`). Acting needs only the choices, so the pick
        loop (`_pick`) runs `step`'s actor and `advance`'s GRU update (torch's GRUCell equations) in numpy, with
        the input projection of each possible pick computed once (a batch-1 pick costs ~40 small torch
        operations, ~5x the arithmetic). `evaluate` scores the choices in torch.
        """
        hidden = self.initial_hidden(obs)
        batch, services = hidden.size.shape
        servers = obs.storage_bytes.shape[-1] if obs.storage_bytes.dim() else 1
        if not greedy and noise is None:
            noise = gumbel_noise((batch, services, services), generator)
        loop = _PickLoop(self, hidden, obs, None if greedy else noise.reshape(batch, services, services).numpy(),
                         servers)
        if self.order == "rounds":
            loop.pick(np.arange(batch), servers, np.zeros((batch // servers, services)))
        else:
            taken = np.zeros((batch // servers, services))  # (E, I) how many earlier servers picked each service
            for server in range(servers):
                rows = np.arange(batch // servers) * servers + server
                loop.pick(rows, 1, taken)
                taken += loop.chosen[rows]
        return torch.from_numpy(loop.choices).reshape(*obs.storage_bytes.shape, -1)

    def sample(self, obs: DeploymentObservation, generator: torch.Generator | None = None,
               greedy: bool = False) -> SequenceResult:
        """`draw`, scored by `evaluate`: the stored log-probabilities are the ones training computes."""
        choices = self.draw(obs, generator, greedy)
        return self.evaluate(obs, choices, others_picks(choices, self.num_services, self.order))

    def evaluate(self, obs: DeploymentObservation, choices: torch.Tensor, others: torch.Tensor) -> SequenceResult:
        """Re-score stored sequences (..., I), padded with -1, with the others' picks they saw, `others`
        (..., I, I) (`others_picks`), under the current parameters: what replaying them through
        `autoregressive_sequence` gives, with only the GRU left to run step by step."""
        hidden = self.initial_hidden(obs, others)
        stored = choices.reshape(len(hidden.free), -1)  # (B, I)
        used_columns = (stored >= 0).any(dim=0).nonzero()
        # the GRU runs to the step after the last stored choice; later steps run no row and their states only pad
        width = min(stored.shape[-1], int(used_columns.max()) + 2 if len(used_columns) else 1)
        taken = (stored >= 0).unsqueeze(-1)
        picks = stored.clamp(min=0)
        # the inputs `advance` builds after each stored choice (rows past their end carry zeros: never read)
        chosen = torch.cumsum(nn.functional.one_hot(picks, self.num_services) * taken, dim=1).to(hidden.size.dtype)
        used = hidden.size.gather(-1, picks) * taken.squeeze(-1)
        free = torch.cumsum(torch.cat([hidden.free.unsqueeze(-1), -used], dim=-1), dim=-1)[:, 1:]
        inputs = torch.cat([self.embed(picks), chosen, free.unsqueeze(-1)], dim=-1)
        states = [hidden.gru]  # h_0 .. h_{width-1}
        for step in range(width - 1):
            states.append(self.gru(inputs[:, step], states[-1]))
        gru = nn.functional.pad(torch.stack(states, dim=1), (0, 0, 0, stored.shape[-1] - width))
        allowed = storage_masks(obs.model_bytes, obs.storage_bytes.reshape(-1), stored)
        logits = self.actor(torch.cat([gru, hidden.others], dim=-1))
        result = score_sequences(logits, allowed, stored, self.critic(gru).squeeze(-1), self.validate)
        return _unflatten_result(result, tuple(obs.storage_bytes.shape))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|, unlike 1 / (1 + exp(-x))


class _PickLoop:
    """`DeploymentPolicy.draw`'s numpy state, one row per server (B = E J): `pick` draws the sequences of some
    rows, the servers of a group picking together (rounds) or a group of one (in turn)."""

    def __init__(self, policy: DeploymentPolicy, hidden: DeploymentHidden, obs: DeploymentObservation,
                 noise: np.ndarray | None, servers: int) -> None:
        batch, services = hidden.size.shape
        self.gru, self.size, self.free = hidden.gru.numpy().copy(), hidden.size.numpy(), hidden.free.numpy().copy()
        self.sizes, self.remaining = obs.model_bytes.numpy(), obs.storage_bytes.reshape(-1).numpy().copy()
        self.noise, self.servers = noise, servers
        self.chosen = np.zeros((batch, services), dtype=bool)
        self.choices = np.full((batch, services), -1, dtype=np.int64)
        # the GRU input after picking i is [embedding_i, x_st with i set, free share]: its projection is the pick's
        # own term, plus the rows of the earlier picks (`earlier`), plus the free share's row; computed in torch
        # (numpy's BLAS may start threads of its own) and made contiguous (numpy's matmul is slow on strided views)
        embed_columns, chosen_columns, free_column = policy.gru.weight_ih.split(
            [policy.embed.embedding_dim, services, 1], dim=1)
        self.pick_input = (policy.embed.weight @ embed_columns.T + chosen_columns.T + policy.gru.bias_ih).numpy()
        self.chosen_rows, self.free_row = chosen_columns.T.contiguous().numpy(), free_column[:, 0].contiguous().numpy()
        self.hidden_weight = policy.gru.weight_hh.T.contiguous().numpy()
        self.hidden_bias = policy.gru.bias_hh.detach().numpy()
        self.own_weight, self.others_weight = (part.T.contiguous().numpy() for part in policy.actor.weight.split(
            [self.gru.shape[1], services], dim=1))
        self.actor_bias = policy.actor.bias.detach().numpy()

    def pick(self, rows: np.ndarray, group: int, taken: np.ndarray) -> None:
        """Draw the sequences of `rows` (groups of `group` consecutive servers picking together); `taken` (rows /
        group, I) counts the picks of servers outside the groups that each group's servers see.

        The working arrays hold only the rows still picking (a row stops when nothing more fits, and nothing
        it holds changes after that), so a step selects no rows; `self.chosen` keeps every row's set, which
        servers picking in rounds read. In turn, the others' term of the actor is computed once per sequence."""
        spread = max(self.servers - 1, 1)
        outside = np.repeat(taken, group, axis=0)
        index = np.arange(len(rows))  # the positions in `rows` of the rows still picking, and those rows
        live = rows
        gru, free, remaining, size = self.gru[rows], self.free[rows], self.remaining[rows], self.size[rows]
        chosen = self.chosen[rows]
        earlier = np.zeros((len(rows), self.pick_input.shape[1]), dtype=self.pick_input.dtype)
        noise = None if self.noise is None else self.noise[rows]
        # in turn (groups of one) the others' picks are the same at every step
        fixed = (outside / spread).astype(np.float32) @ self.others_weight if group == 1 else None
        positions = index  # 0 .. (rows still picking) - 1
        services, width = chosen.shape[1], gru.shape[1]
        for step in range(services):
            allowed = ~chosen & (self.sizes <= remaining[:, None])
            fits = allowed.any(axis=1)
            if not fits.all():
                self.chosen[live] = chosen
                index, live, gru, free, remaining, size, chosen, earlier, allowed = (
                    part[fits] for part in (index, live, gru, free, remaining, size, chosen, earlier, allowed))
                noise = None if noise is None else noise[fits]
                fixed = None if fixed is None else fixed[fits]
                positions = np.arange(len(index))
                if not len(index):
                    break
            if fixed is None:
                picked = self.chosen[rows].reshape(-1, group, services)
                inside = (picked.sum(axis=1, keepdims=True) - picked).reshape(len(rows), services)
                others = ((outside + inside) / spread).astype(np.float32)[index]
                others_term = others @ self.others_weight
            else:
                others_term = fixed
            logits = gru @ self.own_weight + others_term + self.actor_bias
            logits = np.where(allowed, logits, -np.inf)
            if noise is not None:
                logits = logits + noise[:, step]
            choice = logits.argmax(axis=1)
            self.choices[live, step] = choice
            chosen[positions, choice] = True
            if fixed is None:
                self.chosen[live, choice] = True
            free -= size[positions, choice]
            remaining -= self.sizes[choice]
            gates_in = self.pick_input[choice] + earlier + free[:, None] * self.free_row
            earlier += self.chosen_rows[choice]
            gates_hidden = gru @ self.hidden_weight + self.hidden_bias
            gates = _sigmoid(gates_in[:, :2 * width] + gates_hidden[:, :2 * width])
            reset, update = gates[:, :width], gates[:, width:]
            candidate = np.tanh(gates_in[:, 2 * width:] + reset * gates_hidden[:, 2 * width:])
            gru = (1.0 - update) * candidate + update * gru
        self.chosen[live] = chosen


def _unflatten_result(result: SequenceResult, lead: tuple[int, ...]) -> SequenceResult:
    """A result with one row per server back to the observation's leading axes."""
    return SequenceResult(**{f.name: None if getattr(result, f.name) is None else
                             getattr(result, f.name).reshape(*lead, *getattr(result, f.name).shape[1:])
                             for f in fields(result)})


def others_picks(choices: torch.Tensor, num_services: int, order: str) -> torch.Tensor:
    """(..., J, L, I) float32: for the servers of a system (choices (..., J, L), padded with -1), the share of the
    other servers that each one saw pick each service at each of its steps, what `DeploymentPolicy`'s actor
    reads: in turn (`order="turn"`), the sets of the servers before it; in rounds, the others' picks of the
    earlier steps."""
    taken = (choices >= 0).unsqueeze(-1)
    picked = nn.functional.one_hot(choices.clamp(min=0), num_services).to(torch.float32) * taken  # (..., J, L, I)
    servers = choices.shape[-2]
    if order == "turn":
        sets = picked.sum(dim=-2)  # (..., J, I)
        before = (torch.cumsum(sets, dim=-2) - sets).unsqueeze(-2).expand_as(picked)
        return before / max(servers - 1, 1)
    before = torch.cumsum(picked, dim=-2) - picked  # picked at steps < n
    return (before.sum(dim=-3, keepdim=True) - before) / max(servers - 1, 1)


def draw_deployment(policy: DeploymentPolicy, system: EdgeSystem, generator: torch.Generator | None = None,
                    greedy: bool = False) -> tuple[DeploymentObservation, torch.Tensor, np.ndarray]:
    """Every server's services for the coming interval (`DeploymentPolicy.draw`): their observations
    (E, J, ...), sequences (E, J, I) padded with -1, and the new deployment (E, I, J) for `EdgeSystem.deploy`;
    `DeploymentPolicy.evaluate` scores the sequences (with `others_picks`)."""
    obs = deployment_observation(system)
    choices = policy.draw(obs, generator, greedy)
    return obs, choices, deployment_from_choices(choices, system.table.num_services)


def deployment_from_choices(choices: torch.Tensor, num_services: int) -> np.ndarray:
    """The (E, I, J) bool deployment that `EdgeSystem.deploy` takes, from sequences (E, J, L) padded with -1."""
    padded = torch.where(choices >= 0, choices, num_services)
    picked = nn.functional.one_hot(padded, num_services + 1)[..., :num_services].any(dim=-2)  # (E, J, I)
    return picked.transpose(-1, -2).numpy()


# Users ----------------------------------------------------------------------------------------------------------


class ServerThenPoint:
    """pi(j, z | o) = pi(j | o) pi(z | o, j): a server, then a partition point drawn for that server.

    Actions (..., 2) hold (server, z). `server_logits` (..., J), `point_logits` (..., J, P): one row of point
    logits per server; masks (..., J) and (..., P). Greedy takes the most probable server, then its most
    probable point.
    """

    def __init__(self, server_logits: torch.Tensor, point_logits: torch.Tensor, server_mask: torch.Tensor,
                 point_mask: torch.Tensor, validate: bool = True) -> None:
        self.validate = validate
        self.server = MaskedCategorical(server_logits, server_mask, validate)
        self.point_logits, self.point_mask = point_logits, point_mask

    def point(self, server: torch.Tensor) -> MaskedCategorical:
        """The partition point's distribution (..., P) given the server (...)."""
        index = server[..., None, None].expand(*server.shape, 1, self.point_logits.shape[-1])
        return MaskedCategorical(self.point_logits.gather(-2, index).squeeze(-2), self.point_mask, self.validate)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        server = self.server.sample(generator)
        return torch.stack([server, self.point(server).sample(generator)], dim=-1)

    def mode(self) -> torch.Tensor:
        server = self.server.mode()
        return torch.stack([server, self.point(server).mode()], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        server = actions[..., 0]
        return self.server.log_prob(server) + self.point(server).log_prob(actions[..., 1])

    def entropy(self) -> torch.Tensor:
        """The joint entropy, exactly: H(j) + sum_j pi(j) H(z | j)."""
        every_point = MaskedCategorical(self.point_logits, self.point_mask.unsqueeze(-2).expand_as(self.point_logits),
                                        self.validate)
        return self.server.entropy() + (self.server.probs * every_point.entropy()).sum(dim=-1)


def _per_agent(state: torch.Tensor, local: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """Something per global state next to each agent's local observation: rows `index` of a table (S, H);
    else (E, H) repeated over K, (E, K, H) kept."""
    if index is not None:
        return state[index]
    if state.shape[:-1] == local.shape[:-2]:
        return state.unsqueeze(-2).expand(*local.shape[:-1], state.shape[-1])
    if state.shape[:-1] == local.shape[:-1]:
        return state
    raise ValueError(f"state {tuple(state.shape)} does not match the local observations {tuple(local.shape)}: "
                     "give one state per environment or one per agent")


class _CentralisedCritic(nn.Sequential):
    """A value MLP over [local observation, global state] (Yu et al.'s agent-specific state). Its first layer is
    applied in two parts, W [o; s] = W_o o + W_s s, with W_s s computed once per global state: K users share
    one state, and the per-agent product would dominate the cost of an update (G ~ 1300 at the paper's size)."""

    def __init__(self, local_dim: int, state_dim: int, hidden: int, layers: int, outputs: int = 1) -> None:
        super().__init__(_mlp(local_dim + state_dim, hidden, layers), _linear(hidden, outputs, 1.0))
        self.local_dim = local_dim

    def forward(self, local: torch.Tensor, state: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        body, head = self[0], self[1]
        first = body[0]
        local_weight, state_weight = first.weight.split([self.local_dim, first.in_features - self.local_dim], dim=1)
        projected = _per_agent(nn.functional.linear(state, state_weight), local, index)
        hidden = nn.functional.linear(local, local_weight, first.bias) + projected
        return head(body[1:](hidden))


class UserPolicy(nn.Module):
    """Association and partition (eq. 20) for every user with one shared actor, plus reward and cost critics.

    `values` returns both critics' predictions (..., K) in normalised units (the cost value None without a cost
    critic): denormalise each with its own `ValueNormalizer` (reward and cost returns have unrelated scales).
    `validate=False` skips the mask checks of the distributions (a trainer whose masks come from the simulator).
    """

    def __init__(self, local_dim: int, state_dim: int, num_servers: int, num_points: int,
                 config: HCPolicyConfig = HCPolicyConfig()) -> None:
        super().__init__()
        hidden, layers = config.user_hidden, config.user_layers
        self.num_servers, self.num_points = num_servers, num_points
        self.independent = config.independent_critics
        self.validate = True
        self.actor = _mlp(local_dim, hidden, layers)
        self.server_head = _linear(hidden, num_servers, config.head_gain)
        self.point_head = _linear(hidden, num_servers * num_points, config.head_gain)
        heads = 2 if config.cost_critic else 1  # reward, then cost

        def critic(outputs: int) -> nn.Module:
            if self.independent:
                return _critic(local_dim, hidden, layers, outputs)
            return _CentralisedCritic(local_dim, state_dim, hidden, layers, outputs)

        self.critics = nn.ModuleList([critic(heads)] if config.shared_critic else [critic(1) for _ in range(heads)])

    def distribution(self, obs: UserObservation) -> ServerThenPoint:
        features = self.actor(obs.local)
        point_logits = self.point_head(features).unflatten(-1, (self.num_servers, self.num_points))
        return ServerThenPoint(self.server_head(features), point_logits, obs.server_mask, obs.point_mask,
                               self.validate)

    def act(self, obs: UserObservation, generator: torch.Generator | None = None,
            greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions (..., 2) long (server, z) and their log-probabilities (...)."""
        dist = self.distribution(obs)
        actions = dist.mode() if greedy else dist.sample(generator)
        return actions, dist.log_prob(actions)

    def evaluate(self, obs: UserObservation, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities and entropies (...) of stored actions (..., 2)."""
        dist = self.distribution(obs)
        return dist.log_prob(actions), dist.entropy()

    def values(self, obs: UserObservation) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reward and cost values (...), normalised units; the cost value is None without a cost critic."""
        if self.independent:
            outputs = [critic(obs.local) for critic in self.critics]
        else:
            outputs = [critic(obs.local, obs.state, obs.state_index) for critic in self.critics]
        values = torch.cat(outputs, dim=-1)
        return values[..., 0], values[..., 1] if values.shape[-1] > 1 else None


# Allocation -----------------------------------------------------------------------------------------------------

RESOURCES = ("compute", "bandwidth")


def _members(association: torch.Tensor, num_servers: int) -> torch.Tensor:
    """(E, J, K) bool: which users each server serves."""
    return association.unsqueeze(-2) == torch.arange(num_servers, device=association.device).unsqueeze(-1)


class _ServerContext(nn.Module):
    """User encodings (E, K, H) and each server's context (E, J, H) from its users' mean encoding and its own
    features (a server without users sees a zero mean)."""

    def __init__(self, user_dim: int, server_dim: int, hidden: int) -> None:
        super().__init__()
        self.users = _mlp(user_dim, hidden, 2)
        self.context = _mlp(hidden + server_dim, hidden, 1)

    def forward(self, obs: AllocationObservation) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.users(obs.users)  # (E, K, H)
        members = _members(obs.association, obs.servers.shape[-2]).to(encoded.dtype)  # (E, J, K)
        pooled = members @ encoded / members.sum(-1, keepdim=True).clamp(min=1.0)  # (E, J, H)
        return encoded, self.context(torch.cat([pooled, obs.servers], dim=-1))


class AllocationPolicy(nn.Module):
    """Section IV-B3: per server, attention over its users gives compute and bandwidth logits; the action is a
    Gaussian draw around them (one learned standard deviation per resource), shares are per-server softmaxes.

    Actions are the logits (E, K, 2) (compute, bandwidth); log-probabilities, entropies and values are per
    server (E, J). `allocation_shares` turns logits into the (E, K) shares that `EdgeSystem.step` takes.
    """

    def __init__(self, user_dim: int, server_dim: int, config: HCPolicyConfig = HCPolicyConfig()) -> None:
        super().__init__()
        hidden = config.alloc_hidden
        self.scale = 1.0 / math.sqrt(hidden)
        self.encoder = _ServerContext(user_dim, server_dim, hidden)
        self.queries = nn.ModuleList(_linear(hidden, hidden, 1.0) for _ in RESOURCES)
        self.keys = nn.ModuleList(_linear(hidden, hidden, 1.0) for _ in RESOURCES)
        self.log_std = nn.Parameter(torch.full((len(RESOURCES),), config.alloc_log_std))
        self.critic_encoder = _ServerContext(user_dim, server_dim, hidden)
        self.critic = _linear(hidden, 1, 1.0)

    def mean_logits(self, obs: AllocationObservation) -> torch.Tensor:
        """(E, K, 2): each user's key against its own server's query, g_j^T kappa_k / sqrt(d_h), per resource."""
        users, context = self.encoder(obs)
        own = obs.association.unsqueeze(-1).expand(*obs.association.shape, context.shape[-1])  # (E, K, H)
        scores = [(query(context).gather(-2, own) * key(users)).sum(-1) * self.scale
                  for query, key in zip(self.queries, self.keys, strict=True)]
        return torch.stack(scores, dim=-1)

    def act(self, obs: AllocationObservation, generator: torch.Generator | None = None,
            greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (E, K, 2) (the mean when `greedy`) and each server's log-probability (E, J)."""
        mean = self.mean_logits(obs)
        logits = mean
        if not greedy:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
            logits = mean + self.log_std.exp() * noise
        logits = logits.detach()
        return logits, self._log_prob(obs, mean, logits)

    def evaluate(self, obs: AllocationObservation, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities and entropies (E, J) of stored logits (E, K, 2)."""
        mean = self.mean_logits(obs)
        per_user_entropy = (0.5 * math.log(2 * math.pi * math.e) + self.log_std).sum()
        free = self._free_users(obs).to(mean.dtype)  # (E, K)
        return self._log_prob(obs, mean, logits), self._per_server(obs, free * per_user_entropy)

    def value(self, obs: AllocationObservation) -> torch.Tensor:
        """V(o_j^alloc) (E, J)."""
        return self.critic(self.critic_encoder(obs)[1]).squeeze(-1)

    @staticmethod
    def shared_servers(obs: AllocationObservation) -> torch.Tensor:
        """(E, J) bool: servers with at least two users, the only ones whose allocation a policy decides (a user
        alone gets everything, whatever its logits)."""
        return _members(obs.association, obs.servers.shape[-2]).sum(-1) >= 2

    def _free_users(self, obs: AllocationObservation) -> torch.Tensor:
        """(E, K) bool: users that share their server."""
        return self.shared_servers(obs).gather(-1, obs.association)

    def _per_server(self, obs: AllocationObservation, per_user: torch.Tensor) -> torch.Tensor:
        """(E, J) sums of a per-user quantity (E, K) over each server's users."""
        return (_members(obs.association, obs.servers.shape[-2]).to(per_user.dtype) @ per_user.unsqueeze(-1)
                ).squeeze(-1)

    def _log_prob(self, obs: AllocationObservation, mean: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        if logits.shape != mean.shape:
            raise ValueError(f"logits must have shape {tuple(mean.shape)}, got {tuple(logits.shape)}")
        log_std = self.log_std
        density = -0.5 * ((logits - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        free = self._free_users(obs).to(mean.dtype)
        return self._per_server(obs, density.sum(-1) * free)


def allocation_shares(logits: torch.Tensor, association: torch.Tensor,
                      num_servers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute and bandwidth shares (E, K) float64 of each user's server: softmaxes of the logits (E, K, 2) over
    each server's users. Computed in float64, each server's shares sum to 1 within ~1e-15, well inside the
    simulator's C5/C6 tolerance (1e-9); a user alone at its server gets exactly 1."""
    logits = logits.detach().double()
    members = _members(association, num_servers)  # (E, J, K)
    per_server = logits.unsqueeze(-3).masked_fill(~members.unsqueeze(-1), float("-inf"))  # (E, J, K, 2)
    log_total = torch.logsumexp(per_server, dim=-2)  # (E, J, 2); -inf for a server without users, never read
    own = log_total.gather(-2, association.unsqueeze(-1).expand(*association.shape, len(RESOURCES)))  # (E, K, 2)
    shares = (logits - own).exp()
    return shares[..., 0], shares[..., 1]


# All three ------------------------------------------------------------------------------------------------------


class HCPolicies(nn.Module):
    """The three layers of HC-MAPPO-L, sized for a system."""

    def __init__(self, deployment: DeploymentPolicy, user: UserPolicy, allocation: AllocationPolicy) -> None:
        super().__init__()
        self.deployment, self.user, self.allocation = deployment, user, allocation

    @classmethod
    def for_system(cls, system: EdgeSystem, config: HCPolicyConfig = HCPolicyConfig()) -> HCPolicies:
        """Layers whose input sizes match the observations of `system` (its scenario and service table)."""
        deploy_obs, user_obs = deployment_observation(system), user_observation(system)
        first = np.zeros((system.num_envs, system.num_users), dtype=np.int64)  # server 0, z = 0: always valid
        alloc_obs = allocation_observation(system, first, first)
        return cls(
            DeploymentPolicy(deploy_obs.features.shape[-1], system.table.num_services, config),
            UserPolicy(user_obs.local.shape[-1], user_obs.state.shape[-1], system.num_servers,
                       user_obs.point_mask.shape[-1], config),
            AllocationPolicy(alloc_obs.users.shape[-1], alloc_obs.servers.shape[-1], config),
        )
