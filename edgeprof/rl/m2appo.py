"""Mixed MAPPO (seed 004, sec. V-B, Alg. 2), its ablations MAPPO and M2APPO-min, and the MAA3C baseline, on the
`crowd-edge` system (`sim.crowd_edge`).

Every MD is an agent with one parameter-shared recurrent actor, Linear(in, 64)-Linear(64, 64)-GRU(64)-Linear(64,
out) with ReLUs (sec. VI-B), over its local observation (`CrowdEdge.local_observation`: delays and fees per
candidate, not the network). Critics of the same shape see the global state S = {Q_u, V_l, F_u}
(`CrowdEdge.global_state`) beside the agent's own observation (MAPPO's agent-specific global state, since each
agent has its own reward) and are mixed by `rl.critics.MixedCritics`:

- `m2appo`: 5 critics with different initialisations and learning rates (the actor's x 0.5 ... x 2,
  geometrically), V = sum_n 0.2 phi_n; sec. VI-B's "MAPPO consists of four critic networks" is read as a slip
  for M2APPO (5) and MAPPO (1);
- `mappo`: one critic (bit for bit the mix of one critic with weight 1);
- `m2appo-min`: the minimum of 5 critics (Fig. 5's TD3-like rule);
- `maa3c`: advantage actor-critic with an LSTM actor and critic Linear(in, 32)-Linear(32, 96)-LSTMCell(96, 64)-
  Linear(64, out) (sec. VI-B): one pass of the plain policy gradient -A log pi per rollout (no ratio, no clip).
  A3C's asynchronous workers become the batched environments (the gradient is the same in expectation).

One iteration collects `slots_per_iteration` slots of `num_envs` environments (new episodes seeded by the seed
and the iteration, so a resumed run needs no environment state), then trains on sequence chunks of the rollout
(`RolloutBuffer.sequence_minibatches`, replayed by `rl.recurrent.unroll` from the hidden state stored at each
chunk's start; episodes that end inside a rollout, `episode_slots`, reset the state). PPO (eq. 26-27) with clip
0.1; learning rate, epochs, minibatches, gamma and GAE lambda are seed 001's defaults; value normalisation as in
MAPPO (`rl.normalizers`); every critic regresses on the same returns with its own optimiser.

Choices where the paper is silent:

- Actions: an agent's tasks of a slot (a batch) each draw a destination from the agent's categorical; the
  step's log-probability is the sum over its tasks (the count of each action times its log-probability), and
  steps without tasks carry no policy loss (their critics still learn). Greedy evaluation sends a batch to the
  most probable destination; drawn evaluation (`--sample`) spreads it as in training.
- Rewards: each agent gets eq. 13 split by task (eq. 21-22): minus V g_i + D_i x_i of its own tasks. Their sum
  differs from eq. 13's team reward only by -sum_l V_l, which no action of the slot changes.
- `mix_heuristic` (Alg. 1 line 5): an agent with tasks acts with the policy's draw or with the drift-plus-
  penalty action (each task's argmin of f' on the slot-start state, `optimize.crowd_edge.dpp_scores`),
  whichever the critics value more: minus the tasks' f' plus gamma times the mixed value of the state with the
  agent's tasks added to their queues (a one-step look-ahead of V, taken from the critics' current hidden state).
  The executed action is stored with the policy's log-probability of it, so PPO's first ratio stays 1 (the
  data are then off-policy where the heuristic acted; the paper does the same). Off by default (Table III).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeprof.errors import EdgeprofError
from edgeprof.rl import hyperparameters
from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.critics import MixedCritics
from edgeprof.rl.distributions import MaskedCategorical, gumbel_noise
from edgeprof.rl.losses import normalize_advantages, ppo_policy_loss, value_loss
from edgeprof.rl.normalizers import ValueNormalizer
from edgeprof.rl.recurrent import RecurrentNet
from edgeprof.rl.runs import Run
from edgeprof.rl.seeding import seed_everything
from edgeprof.rl.trainers import Panel, TrainerInfo, register_trainer
from edgeprof.sim.crowd_edge import NAME, CrowdEdge, Metrics, Workload


@dataclass(frozen=True)
class Method:
    """What distinguishes seed 004's actor-critic methods."""

    description: str
    num_critics: int
    combination: str  # MixedCritics: "weighted" or "min"
    objective: str  # "ppo" (clipped ratio, several epochs) or "a2c" (plain policy gradient, one pass)
    widths: tuple[int, ...]
    cell: str


METHODS = {
    "m2appo": Method("ours (sec. V-B): recurrent actor, 5 recurrent critics mixed with weights 0.2, clip 0.1", 5,
                     "weighted", "ppo", (64, 64), "gru"),
    "mappo": Method("ablation: one critic", 1, "weighted", "ppo", (64, 64), "gru"),
    "m2appo-min": Method("ablation: the minimum of 5 critics (Fig. 5)", 5, "min", "ppo", (64, 64), "gru"),
    "maa3c": Method("baseline: advantage actor-critic, LSTM actor and critic 32-96-LSTM 64", 1, "weighted", "a2c",
                    (32, 96), "lstm"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. Sources: VI-B = seed 004 sec. VI-B; 001 = seed 001's defaults (the issue's rule
    where seed 004 is silent); ours. Build it with `make_config`."""

    algorithm: str = "m2appo"
    seed: int = 0
    iterations: int = 100  # ours; the paper trains on 50,000 s of data
    slots_per_iteration: int = 50  # ours: small rollouts, many updates (PPO's clip limits each update's step)
    num_envs: int = 2  # ours: environments stepped together
    episode_slots: int = 0  # ours: an episode ends (and a new one starts) every this many slots; 0: one per iteration
    num_critics: int = 5  # set by METHODS (VI-B: 5)
    combination: str = "weighted"  # set by METHODS
    objective: str = "ppo"  # set by METHODS
    widths: tuple[int, ...] = (64, 64)  # set by METHODS (VI-B)
    cell: str = "gru"  # set by METHODS (VI-B: RNN; GRU)
    cell_size: int = 64  # VI-B
    critic_weights: str = ""  # VI-B: 0.2 each; comma-separated, summing to 1; "" for equal weights
    learning_rate: float = 3e-4  # 001 (the actor's; critic n's is this x critic_lr_spread ** (-1 ... 1))
    critic_lr_spread: float = 2.0  # ours: 5 critics at 0.5x, 0.71x, 1x, 1.41x, 2x
    adam_eps: float = 1e-5  # 001
    gamma: float = 0.99  # 001
    gae_lambda: float = 0.95  # 001
    clip_coef: float = 0.1  # VI-B, eq. 26
    epochs: int = 3  # 001 (1 for maa3c)
    minibatches: int = 8  # 001
    chunk_length: int = 10  # ours: MAPPO's data_chunk_length
    entropy_coef: float = 0.01  # ours: MAPPO's default
    max_grad_norm: float = 0.5  # 001
    mix_heuristic: bool = False  # Alg. 1 line 5; off for Table III
    checkpoint_every: int = 10
    threads: int = 1

    def __post_init__(self) -> None:
        if self.algorithm not in METHODS:
            raise EdgeprofError(f"unknown algorithm {self.algorithm!r}: use one of {', '.join(METHODS)}")
        if not 0 <= self.seed < 2 ** 32:
            raise EdgeprofError(f"the seed must lie in [0, 2**32), got {self.seed}")
        hyperparameters.require_finite(self)
        for name in ("iterations", "slots_per_iteration", "num_envs", "num_critics", "cell_size", "epochs",
                     "minibatches", "chunk_length", "checkpoint_every", "threads"):
            hyperparameters.require(self, name, low=1)
        hyperparameters.require(self, "episode_slots", low=0)
        for name in ("gamma", "gae_lambda"):
            hyperparameters.require(self, name, low=0, high=1)
        for name in ("learning_rate", "adam_eps", "clip_coef", "max_grad_norm"):
            hyperparameters.require(self, name, above=0)
        hyperparameters.require(self, "critic_lr_spread", low=1)
        hyperparameters.require(self, "entropy_coef", low=0)
        if self.combination not in ("weighted", "min") or self.objective not in ("ppo", "a2c"):
            raise EdgeprofError(f"combination must be weighted or min and objective ppo or a2c, got "
                                f"{self.combination!r} and {self.objective!r}")
        if self.cell not in ("gru", "lstm"):
            raise EdgeprofError(f"cell must be gru or lstm, got {self.cell!r}")
        self.weights()

    def weights(self) -> tuple[float, ...] | None:
        """The critics' weights (None: equal, or none for the minimum); refused unless one per critic, each
        non-negative, summing to 1."""
        if not self.critic_weights.strip():
            return None
        if self.combination == "min":
            raise EdgeprofError(f"{self.algorithm} takes the minimum of its critics: it has no critic weights")
        try:
            weights = tuple(float(part) for part in self.critic_weights.split(","))
        except ValueError:
            raise EdgeprofError(f"critic_weights must be comma-separated numbers, got {self.critic_weights!r}"
                                ) from None
        if len(weights) != self.num_critics:
            raise EdgeprofError(f"critic_weights needs one weight per critic ({self.num_critics}), got {len(weights)}")
        if any(not math.isfinite(w) or w < 0 for w in weights) or not math.isclose(math.fsum(weights), 1.0,
                                                                                   abs_tol=1e-9):
            raise EdgeprofError(f"critic_weights must be non-negative and sum to 1, got {self.critic_weights} "
                                f"(sum {math.fsum(weights):.6g})")
        return weights

    def critic_learning_rates(self) -> list[float]:
        """Critic n's learning rate: the actor's times spread ** t_n, t evenly spaced in [-1, 1]."""
        if self.num_critics == 1:
            return [self.learning_rate]
        return [self.learning_rate * self.critic_lr_spread ** float(t) for t in np.linspace(-1, 1, self.num_critics)]


def make_config(algorithm: str, **settings: Any) -> TrainConfig:
    """The configuration of a named method (`METHODS`); `settings` change any other field."""
    if algorithm not in METHODS:
        raise EdgeprofError(f"unknown algorithm {algorithm!r}: use one of {', '.join(METHODS)}")
    method = METHODS[algorithm]
    if method.objective == "a2c":
        settings.setdefault("epochs", 1)
    return TrainConfig(algorithm=algorithm, num_critics=method.num_critics, combination=method.combination,
                       objective=method.objective, widths=method.widths, cell=method.cell, **settings)


_NOT_HYPERPARAMETERS = {"algorithm", "seed", "iterations", "slots_per_iteration", "num_envs", "checkpoint_every",
                        "num_critics", "combination", "objective", "widths", "cell"}


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """`make_config` settings from NAME=VALUE strings (a `TrainConfig` field; the method's own are fixed)."""
    return hyperparameters.parse(TrainConfig, pairs, _NOT_HYPERPARAMETERS)


def config_from_record(record: dict[str, Any]) -> TrainConfig:
    """A `TrainConfig` from a run's `config.json`."""
    return TrainConfig(**{**record, "widths": tuple(record["widths"])})


def episode_seed(seed: int, iteration: int, episode: int) -> int:
    """The seed of one training episode: independent streams for every (seed, iteration, episode), apart from
    the evaluation seeds."""
    return int(np.random.SeedSequence([seed, iteration, episode, 4]).generate_state(1)[0])


# ---------------------------------------------------------------------------------------------------------------
# Networks and acting


def observe(env: CrowdEdge) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The agents' observations (E, N, F), the global state beside each agent (E, N, G) and the action masks
    (E, N, A), as tensors."""
    obs = torch.from_numpy(env.local_observation()).float()
    state = torch.from_numpy(env.global_state()).float().unsqueeze(1).expand(-1, env.num_agents, -1)
    return obs, state, torch.from_numpy(env.action_mask())


def task_actions(logits: torch.Tensor, mask: torch.Tensor, valid: np.ndarray, generator: torch.Generator | None,
                 greedy: bool = False) -> torch.Tensor:
    """A destination per task (E, N, K): drawn from each agent's masked categorical (Gumbel-max), or its most
    probable action for every task (`greedy`)."""
    dist = MaskedCategorical(logits, mask, validate=False)
    if greedy:
        return dist.mode().unsqueeze(-1).expand(*valid.shape)
    noise = gumbel_noise((*valid.shape, logits.shape[-1]), generator)
    return (dist.logits.unsqueeze(2) + noise).argmax(-1)


def action_counts(actions: torch.Tensor, valid: np.ndarray, num_actions: int) -> torch.Tensor:
    """(E, N, A) how many of each agent's tasks took each action."""
    one_hot = nn.functional.one_hot(actions, num_actions).float()
    return (one_hot * torch.from_numpy(valid).unsqueeze(-1)).sum(dim=2)


def batch_log_prob(dist: MaskedCategorical, counts: torch.Tensor) -> torch.Tensor:
    """The log-probability of a step's tasks: sum over actions of count x log pi (0 for a step without tasks)."""
    return (counts * dist.log_probs.masked_fill(~dist.mask, 0.0)).sum(dim=-1)


def ensemble_gru(nets: list[RecurrentNet], inputs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """GRU `RecurrentNet`s of one shape over the same `inputs` (T, B, F) at once, each from its own state (B, n, H),
    resetting where `starts` (T, B): outputs (n, T, B, out) and the states after the last step (B, n, H). The same
    arithmetic as `torch.nn.GRUCell` (gates r, z, n) on stacked weights, with the input projections of every step
    computed together: on a shared CPU, 5 critics cost about what 2 did one by one. The products are batched over
    the nets (`torch.baddbmm`) and the heads run one by one (a batched product with one output column rounds
    differently with one net than with five), so each net's numbers do not depend on how many are stacked beside
    it: one net of weight 1 among five trains as it does alone, bit for bit. Gradients reach each net's own
    parameters."""
    steps, batch = inputs.shape[:2]
    count = len(nets)

    def linear(features: torch.Tensor, layers: list[nn.Linear]) -> torch.Tensor:
        weight = torch.stack([layer.weight for layer in layers]).transpose(1, 2)  # (n, in, out)
        bias = torch.stack([layer.bias for layer in layers]).unsqueeze(1)  # (n, 1, out)
        return torch.baddbmm(bias, features, weight)

    features = inputs.reshape(1, steps * batch, -1).expand(count, -1, -1)
    for index in range(0, len(nets[0].body), 2):
        features = torch.relu(linear(features, [net.body[index] for net in nets]))
    cells = [net.cell for net in nets]
    w_ih = torch.stack([c.weight_ih for c in cells]).transpose(1, 2)
    b_ih = torch.stack([c.bias_ih for c in cells]).unsqueeze(1)
    projected = torch.baddbmm(b_ih, features, w_ih).reshape(count, steps, batch, -1)
    w_hh = torch.stack([c.weight_hh for c in cells]).transpose(1, 2)
    b_hh = torch.stack([c.bias_hh for c in cells]).unsqueeze(1)
    hidden = state.transpose(0, 1)  # (n, B, H)
    outputs = []
    for step in range(steps):
        hidden = torch.where(starts[step][None, :, None], torch.zeros((), dtype=hidden.dtype), hidden)
        recurrent = torch.baddbmm(b_hh, hidden, w_hh)
        x_r, x_z, x_n = projected[:, step].chunk(3, dim=-1)
        h_r, h_z, h_n = recurrent.chunk(3, dim=-1)
        reset, update = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        hidden = (1 - update) * torch.tanh(x_n + reset * h_n) + update * hidden
        outputs.append(hidden)
    out = torch.stack([net.head(sequence) for net, sequence in zip(nets, torch.stack(outputs, dim=1), strict=True)])
    return out, hidden.transpose(0, 1)


class ActorCritics(nn.Module):
    """The actor, the mixed critics and the value normaliser of one run (the parameters `evaluate` loads)."""

    def __init__(self, config: TrainConfig, obs_dim: int, state_dim: int, num_actions: int) -> None:
        super().__init__()
        self.config = config
        self.actor = RecurrentNet(obs_dim, config.widths, config.cell_size, num_actions, config.cell)
        critics = [RecurrentNet(state_dim + obs_dim, config.widths, config.cell_size, 1, config.cell)
                   for _ in range(config.num_critics)]
        self.mixed = MixedCritics(critics, config.critic_learning_rates(), config.weights(), config.combination,
                                  eps=config.adam_eps)
        self.critics = self.mixed.critics
        self.normalizer = ValueNormalizer()

    def critic_values(self, inputs: torch.Tensor, states: torch.Tensor, starts: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every critic over `inputs` (T, B, F) from its state (B, n, parts, H): normalised values (n, T, B) and the
        states after the last step. GRU critics run together (`ensemble_gru`); LSTM critics one by one."""
        if self.config.cell == "gru":
            values, last = ensemble_gru(list(self.critics), inputs, states[:, :, 0], starts)
            return values.squeeze(-1), last.unsqueeze(2)
        values, last = [], []
        for index, critic in enumerate(self.critics):
            out, state = critic(inputs, states[:, index], starts)
            values.append(out.squeeze(-1))
            last.append(state)
        return torch.stack(values), torch.stack(last, dim=1)

    def value(self, values: torch.Tensor) -> torch.Tensor:
        """The mixed value in return units of normalised critic values (n, ...)."""
        return self.normalizer.denormalize(self.mixed.combine(values))


@dataclass
class Decision:
    """One slot's decision of every agent, and what the rollout stores of it."""

    actions: torch.Tensor  # (E, N, K)
    counts: torch.Tensor  # (E, N, A)
    log_prob: torch.Tensor  # (E, N)
    value: torch.Tensor  # (E, N), return units
    obs: torch.Tensor
    state: torch.Tensor
    mask: torch.Tensor
    heuristic: torch.Tensor  # (E, N) bool: the drift-plus-penalty action was taken


@dataclass
class RecurrentStates:
    """The states fed into the next step: actor (E x N, parts, H), critics (E x N, n, parts, H)."""

    actor: torch.Tensor
    critics: torch.Tensor

    @classmethod
    def zeros(cls, nets: ActorCritics, rows: int) -> RecurrentStates:
        return cls(nets.actor.initial_state(rows), nets.critics[0].initial_state(rows, len(nets.critics)))


@torch.no_grad()
def decide(nets: ActorCritics, env: CrowdEdge, states: RecurrentStates, generator: torch.Generator | None,
           greedy: bool = False) -> tuple[Decision, RecurrentStates]:
    """Every agent's actions for the slot's tasks (drawn, or greedy), their log-probability and the mixed value,
    with Alg. 1's heuristic where configured; and the recurrent states for the next slot."""
    obs, state, mask = observe(env)
    envs, agents = obs.shape[:2]
    rows = envs * agents
    no_start = torch.zeros(1, rows, dtype=torch.bool)
    logits, actor_next = nets.actor(obs.reshape(1, rows, -1), states.actor, no_start)
    logits = logits.reshape(envs, agents, -1)
    critic_inputs = torch.cat([state, obs], dim=-1).reshape(1, rows, -1)
    values, critics_next = nets.critic_values(critic_inputs, states.critics, no_start)
    value = nets.value(values[:, 0]).reshape(envs, agents)
    valid = env.tasks.valid
    actions = task_actions(logits, mask, valid, generator, greedy)
    heuristic = torch.zeros(envs, agents, dtype=torch.bool)
    if nets.config.mix_heuristic and valid.any():
        actions, heuristic = _mix_heuristic(nets, env, actions, state, obs, states.critics)
    counts = action_counts(actions, valid, mask.shape[-1])
    log_prob = batch_log_prob(MaskedCategorical(logits, mask, validate=False), counts)
    return (Decision(actions, counts, log_prob, value, obs, state, mask, heuristic),
            RecurrentStates(actor_next, critics_next))


def _mix_heuristic(nets: ActorCritics, env: CrowdEdge, actions: torch.Tensor, state: torch.Tensor, obs: torch.Tensor,
                   critic_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Alg. 1 line 5: per agent with tasks, the policy's actions or the drift-plus-penalty ones, whichever has the
    larger -sum f' + gamma V(state with the agent's tasks queued)."""
    from edgeprof.optimize.crowd_edge import dpp_scores

    layout, tasks = env.layout, env.tasks
    e, n, k = np.nonzero(tasks.valid)
    scores = dpp_scores(env, e, n, tasks.work_gcycles[e, n, k], tasks.data_mb[e, n, k])
    chosen = {"policy": actions.numpy()[e, n, k], "dpp": scores.argmin(axis=-1)}
    levels = max(env.levels, 1)
    shape = (env.num_envs, env.num_agents)
    rows = shape[0] * shape[1]
    totals = {}
    for name, action in chosen.items():
        immediate = np.zeros(shape)
        np.add.at(immediate, (e, n), -scores[np.arange(len(e)), action])
        candidate = action // levels
        work = np.zeros((*shape, layout.num_nodes))
        np.add.at(work, (e, n, layout.candidates[n, candidate]), tasks.work_gcycles[e, n, k])
        data = np.zeros((*shape, layout.num_links + 1))
        np.add.at(data, (e[:, None], n[:, None], layout.paths[n, candidate]), tasks.data_mb[e, n, k][:, None])
        speed = layout.node_speed_ghz
        ahead = np.concatenate([np.log1p((env.backlog_gcycles[:, None] + work) / speed),
                                np.broadcast_to((env.speed_ghz / speed)[:, None], work.shape),
                                np.log1p((env.link_mb[:, None] + data[..., :-1]) / layout.link_capacity_mb_s)], axis=-1)
        inputs = torch.cat([torch.from_numpy(ahead).float(), obs], dim=-1).reshape(1, rows, -1)
        values, _ = nets.critic_values(inputs, critic_states, torch.zeros(1, rows, dtype=torch.bool))
        ahead_value = nets.value(values[:, 0]).reshape(shape).double()
        totals[name] = torch.from_numpy(immediate) + nets.config.gamma * ahead_value
    has_tasks = torch.from_numpy(tasks.valid.any(axis=-1))
    use = has_tasks & (totals["dpp"] > totals["policy"])
    heuristic_actions = torch.zeros_like(actions)
    heuristic_actions[e, n, k] = torch.from_numpy(chosen["dpp"])
    return torch.where(use.unsqueeze(-1), heuristic_actions, actions), use


# ---------------------------------------------------------------------------------------------------------------
# Training

LOG_COLUMNS = ("iteration", "env_steps", "sim_seconds", "ad_s_per_mb", "delay_s", "anlr", "e2e", "e2d", "edge_share",
               "reward", "policy_loss", "value_loss", "mixed_value_loss", "entropy", "approx_kl", "clip_fraction",
               "first_ratio_error", "heuristic_share", "steps_per_s", "seconds")
TIMING_COLUMNS = ("steps_per_s", "seconds")


def rollout_metrics(metrics: Metrics) -> dict[str, float]:
    """The training log's view of a rollout's metrics."""
    summary = metrics.summary()
    return {name: summary[name] for name in ("ad_s_per_mb", "delay_s", "anlr", "e2e", "e2d", "edge_share")}


@dataclass
class Rollout:
    buffer: RolloutBuffer
    metrics: dict[str, float] = field(default_factory=dict)


class Trainer:
    """All the state of a run; `run_iteration` = `collect` + `update`. Sets torch's thread count."""

    def __init__(self, config: TrainConfig, scenario: Any, workload: Workload) -> None:
        torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.config, self.scenario = config, scenario
        self.env = CrowdEdge(scenario, workload, config.num_envs, seed=episode_seed(config.seed, 0, 0))
        obs, state, mask = observe(self.env)
        self.nets = ActorCritics(config, obs.shape[-1], state.shape[-1], mask.shape[-1])
        self.optimizer = torch.optim.Adam(self.nets.actor.parameters(), lr=config.learning_rate, eps=config.adam_eps)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.iteration = 0
        parts, size, critics = self.nets.actor.parts, config.cell_size, config.num_critics
        self.buffer = RolloutBuffer(Phase("offload", 1), config.slots_per_iteration, config.num_envs,
                                    self.env.num_agents, fields={
                                        "obs": Field((obs.shape[-1],)), "state": Field((state.shape[-1],)),
                                        "mask": Field((mask.shape[-1],), torch.bool),
                                        "counts": Field((mask.shape[-1],)), "actor_state": Field((parts, size)),
                                        "critic_state": Field((critics, parts, size))})

    def components(self) -> dict[str, Any]:
        """Everything a checkpoint must hold for a resumed run to repeat an uninterrupted one."""
        return {"actor": self.nets.actor, "critics": self.nets.mixed, "normalizer": self.nets.normalizer,
                "optimizer": self.optimizer, "generator": self.generator}

    def run_iteration(self) -> dict[str, Any]:
        """One iteration; returns its log row (`LOG_COLUMNS`)."""
        start = time.perf_counter()
        rollout = self.collect()
        stats = self.update(rollout.buffer)
        self.iteration += 1
        seconds = time.perf_counter() - start
        steps = self.config.slots_per_iteration * self.config.num_envs
        row = {"iteration": self.iteration, "env_steps": self.iteration * steps,
               "sim_seconds": self.iteration * steps * self.env.slot_s, **rollout.metrics, **stats,
               "steps_per_s": steps / seconds, "seconds": seconds}
        return {column: row.get(column) for column in LOG_COLUMNS}

    @torch.no_grad()
    def collect(self) -> Rollout:
        """`slots_per_iteration` slots of fresh episodes in every environment, stored for `update`."""
        config, env, buffer = self.config, self.env, self.buffer
        buffer.reset()
        episode = 0
        env.reset(episode_seed(config.seed, self.iteration, episode))
        rows = env.num_envs * env.num_agents
        states = RecurrentStates.zeros(self.nets, rows)
        metrics, rewards_sum, heuristic = Metrics(env), 0.0, 0.0
        shape = (env.num_envs, env.num_agents)
        for t in range(config.slots_per_iteration):
            decision, following = decide(self.nets, env, states, self.generator)
            buffer.add_decision(t, decision.log_prob, decision.value, obs=decision.obs, state=decision.state,
                                mask=decision.mask, counts=decision.counts,
                                actor_state=states.actor.reshape(*shape, *states.actor.shape[1:]),
                                critic_state=states.critics.reshape(*shape, *states.critics.shape[1:]))
            before = env.link_mb.copy()
            placement, rewards = env.step(decision.actions.numpy())
            metrics.add(placement, before)
            rewards_sum += float(rewards.sum())
            heuristic += float(decision.heuristic.sum())
            states = following
            ends = config.episode_slots and (t + 1) % config.episode_slots == 0 and t + 1 < config.slots_per_iteration
            if ends:  # truncated: bootstrap from the state reached, then a new episode with fresh recurrent states
                final = decide(self.nets, env, states, self.generator)[0].value
                buffer.add_outcome(torch.from_numpy(rewards), truncated=torch.ones(env.num_envs, dtype=torch.bool),
                                   final_value=final)
                episode += 1
                env.reset(episode_seed(config.seed, self.iteration, episode))
                states = RecurrentStates.zeros(self.nets, rows)
            else:
                buffer.add_outcome(torch.from_numpy(rewards))
        buffer.finish(decide(self.nets, env, states, self.generator)[0].value)
        steps = config.slots_per_iteration * rows
        return Rollout(buffer, {**rollout_metrics(metrics), "reward": rewards_sum / steps,
                                "heuristic_share": heuristic / steps})

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """PPO (or the plain policy gradient) on sequence chunks; every critic on the same returns. Returns the
        mean losses, and `first_ratio_error`: max |ratio - 1| on the first minibatch before any step."""
        config, nets = self.config, self.nets
        buffer.compute_returns(config.gamma, config.gae_lambda)
        nets.normalizer.update(buffer.stored("return"))
        chunks = -(-buffer.num_steps // config.chunk_length) * buffer.num_envs * buffer.num_agents
        totals: dict[str, float] = {}
        first_ratio_error, steps = 0.0, 0
        for _ in range(config.epochs):
            for batch in buffer.sequence_minibatches(config.chunk_length, min(config.minibatches, chunks),
                                                     self.generator, hidden=("actor_state", "critic_state")):
                info = self._step(batch)
                if steps == 0:
                    first_ratio_error = info.pop("ratio_error")
                info.pop("ratio_error", None)
                for name, value in info.items():
                    totals[name] = totals.get(name, 0.0) + value
                steps += 1
        return {**{name: value / steps for name, value in totals.items()}, "first_ratio_error": first_ratio_error}

    def _step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step of the actor and of every critic on a minibatch of chunks."""
        config, nets = self.config, self.nets
        valid, starts = batch["valid"], batch["episode_start"]
        mask = batch["mask"] | ~valid.unsqueeze(-1)  # padding steps allow every action (they are not scored)
        logits, _ = nets.actor(batch["obs"], batch["actor_state"], starts)
        dist = MaskedCategorical(logits, mask, validate=False)
        log_prob = batch_log_prob(dist, batch["counts"])
        acting = valid & (batch["counts"].sum(-1) > 0)
        info: dict[str, float] = {"policy_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0,
                                  "ratio_error": 0.0}
        if bool(acting.any()):
            new, old = log_prob[acting], batch["log_prob"][acting]
            advantages = normalize_advantages(batch["advantage"][acting])
            entropy = dist.entropy()[acting].mean()
            if config.objective == "ppo":
                surrogate = ppo_policy_loss(new, old, advantages, config.clip_coef)
                policy_loss = surrogate.loss
                info.update(approx_kl=float(surrogate.approx_kl), clip_fraction=float(surrogate.clip_fraction))
            else:
                policy_loss = -(new * advantages).mean()
            self.optimizer.zero_grad()
            (policy_loss - config.entropy_coef * entropy).backward()
            nn.utils.clip_grad_norm_(nets.actor.parameters(), config.max_grad_norm)
            self.optimizer.step()
            info.update(policy_loss=float(policy_loss.detach()), entropy=float(entropy.detach()),
                        ratio_error=float((new.detach() - old).exp().sub(1.0).abs().max()))
        inputs = torch.cat([batch["state"], batch["obs"]], dim=-1)
        values, _ = nets.critic_values(inputs, batch["critic_state"], starts)
        targets = nets.normalizer.normalize(batch["return"])[valid]
        losses = [value_loss(value[valid], targets) for value in values]
        with torch.no_grad():
            mixed = value_loss(nets.mixed.combine(values.detach())[valid], targets)
        nets.mixed.update(losses, config.max_grad_norm)
        info.update(value_loss=float(torch.stack(losses).detach().mean()), mixed_value_loss=float(mixed))
        return info


# ---------------------------------------------------------------------------------------------------------------
# Evaluation

LAYERS = ("offload",)


class TrainedPolicy:
    """A trained run as a `sim.crowd_edge.Policy`: the most probable destination for every task of an agent, or
    drawn as in training (`draw`), with the heuristic mix where the run used it. Recurrent states restart with
    each episode."""

    def __init__(self, nets: ActorCritics, generator: torch.Generator | None = None) -> None:
        self.name, self.nets, self.generator = nets.config.algorithm, nets, generator
        self.states: RecurrentStates | None = None

    def act(self, env: CrowdEdge) -> np.ndarray:
        if env.t == 0 or self.states is None:
            self.states = RecurrentStates.zeros(self.nets, env.num_envs * env.num_agents)
        decision, self.states = decide(self.nets, env, self.states, self.generator, greedy=self.generator is None)
        return decision.actions.numpy()


def load_networks(run: Run, env: CrowdEdge) -> ActorCritics:
    """The run's latest actor, critics and normaliser, sized for `env`."""
    obs, state, mask = observe(env)
    nets = ActorCritics(run.config, obs.shape[-1], state.shape[-1], mask.shape[-1])
    try:
        nets.actor.load_state_dict(component_state(run.paths.checkpoint, "actor"))
        nets.mixed.load_state_dict(component_state(run.paths.checkpoint, "critics"))
        nets.normalizer.load_state_dict(component_state(run.paths.checkpoint, "normalizer"))
    except RuntimeError as error:
        raise EdgeprofError(f"the checkpoint of {run.path} does not fit this system: {error}") from None
    return nets.eval()


def policy_maker(run: Run, workload: Workload, draw: tuple[str, ...]) -> Callable[[CrowdEdge, int], TrainedPolicy]:
    """The run's policy for `sim.evaluation.run_episodes`: loaded once; with `draw`, each episode's draws come
    from its seed."""
    loaded: list[ActorCritics] = []

    def make(env: CrowdEdge, seed: int) -> TrainedPolicy:
        if not loaded:
            torch.set_num_threads(run.config.threads)
            loaded.append(load_networks(run, env))
        return TrainedPolicy(loaded[0], torch.Generator().manual_seed(seed) if draw else None)

    return make


def summary(row: dict[str, Any]) -> str:
    """One line about a log row."""
    return (f"AD {row['ad_s_per_mb']:.4g} s/MB, delay {row['delay_s']:.4g} s, ANLR {row['anlr']:.4g}, "
            f"edge share {row['edge_share']:.2f}, critic loss {row['mixed_value_loss']:.4g}")


PANELS = (Panel("ad_s_per_mb", "(a) unit delay AD (s per MB, Fig. 3)", log_scale=True),
          Panel("delay_s", "(b) delay per task (s)"), Panel("anlr", "(c) ANLR"), Panel("e2d", "(d) E2D link load"),
          Panel("mixed_value_loss", "(e) critic loss (Fig. 5)", log_scale=True), Panel("entropy", "(f) entropy"),
          Panel("edge_share", "(g) tasks to edge servers"), Panel("reward", "(h) reward per agent and slot"))


for _name, _method in METHODS.items():
    register_trainer(TrainerInfo(
        name=_name, system=NAME, description=_method.description,
        make_config=functools.partial(make_config, _name), config_from_record=config_from_record,
        hyperparameters=parse_hyperparameters, make_trainer=Trainer, log_columns=LOG_COLUMNS,
        timing_columns=TIMING_COLUMNS, make_policy=policy_maker, panels=PANELS, summary=summary, layers=LAYERS))
