"""MADQN, seed 004's value-based baseline (sec. VI-B), on the `crowd-edge` system.

Every MD acts with one parameter-shared recurrent Q-network, Linear(in, 32)-Linear(32, 96)-LSTMCell(96, 64)-
Linear(64, out) with ReLUs (`rl.recurrent.RecurrentNet`), over the same local observation as the actor-critic
methods (`rl.m2appo.observe`); each task of an agent's slot is epsilon-greedy on the agent's Q-values under the
action mask. Every task is one transition (its own reward, eq. 13 split by task as in `rl.m2appo`) in a uniform
replay (`rl.replay.ReplayBuffer`) that stores the LSTM state fed into the step; an update replays two steps,
(o_t, o_t+1) from that state, through the online network (Q of the taken action, and the double-DQN argmax at
t+1) and the target network (its value at t+1): `rl.dqn.q_target`, Huber `td_loss`. Choices (the paper gives
none): double DQN, rewards scaled by `reward_scale`, epsilon from 1 to 0.05 over `epsilon_decay_slots`, hard
target copies every `target_every` updates, one update of `batch_size` rows per slot once `learning_starts` rows
are stored. Stored states come from the network that acted (R2D2's stored-state replay, without burn-in).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeprof.errors import EdgeprofError
from edgeprof.rl import hyperparameters
from edgeprof.rl.buffers import Field
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.dqn import (
    LinearSchedule,
    epsilon_greedy,
    masked_argmax,
    q_target,
    td_loss,
    update_target,
)
from edgeprof.rl.m2appo import LAYERS, episode_seed, observe, rollout_metrics
from edgeprof.rl.recurrent import RecurrentNet
from edgeprof.rl.replay import ReplayBuffer
from edgeprof.rl.runs import Run
from edgeprof.rl.seeding import seed_everything
from edgeprof.rl.trainers import Panel, TrainerInfo, register_trainer
from edgeprof.sim.crowd_edge import NAME, CrowdEdge, Metrics, Workload

WIDTHS, CELL_SIZE = (32, 96), 64  # sec. VI-B


@dataclass(frozen=True)
class DQNConfig:
    """Every setting of a MADQN run (ours where not said; seed 001's learning rate and gamma)."""

    algorithm: str = "madqn"
    seed: int = 0
    iterations: int = 100
    slots_per_iteration: int = 50
    num_envs: int = 2
    learning_rate: float = 3e-4  # seed 001
    adam_eps: float = 1e-5
    gamma: float = 0.99  # seed 001
    reward_scale: float = 0.05  # a task's reward is tens of seconds and fees; TD errors of order 1
    batch_size: int = 128
    replay_capacity: int = 20_000
    learning_starts: int = 500
    target_every: int = 200
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_slots: int = 2000
    max_grad_norm: float = 10.0
    checkpoint_every: int = 10
    threads: int = 1

    def __post_init__(self) -> None:
        if self.algorithm != "madqn":
            raise EdgeprofError(f"unknown algorithm {self.algorithm!r}: use madqn")
        if not 0 <= self.seed < 2 ** 32:
            raise EdgeprofError(f"the seed must lie in [0, 2**32), got {self.seed}")
        hyperparameters.require_finite(self)
        for name in ("iterations", "slots_per_iteration", "num_envs", "batch_size", "replay_capacity",
                     "target_every", "epsilon_decay_slots", "checkpoint_every", "threads"):
            hyperparameters.require(self, name, low=1)
        hyperparameters.require(self, "learning_starts", low=0)
        hyperparameters.require(self, "gamma", low=0, high=1)
        hyperparameters.require(self, "epsilon_start", low=0, high=1)
        hyperparameters.require(self, "epsilon_end", low=0, high=self.epsilon_start)
        for name in ("learning_rate", "adam_eps", "reward_scale", "max_grad_norm"):
            hyperparameters.require(self, name, above=0)

    @property
    def epsilon(self) -> LinearSchedule:
        return LinearSchedule(self.epsilon_start, self.epsilon_end, self.epsilon_decay_slots)


def make_config(**settings: Any) -> DQNConfig:
    return DQNConfig(**settings)


_NOT_HYPERPARAMETERS = {"algorithm", "seed", "iterations", "slots_per_iteration", "num_envs", "checkpoint_every"}


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """`DQNConfig` settings from NAME=VALUE strings (the command line sets the others)."""
    return hyperparameters.parse(DQNConfig, pairs, _NOT_HYPERPARAMETERS)


def q_network(obs_dim: int, num_actions: int) -> RecurrentNet:
    return RecurrentNet(obs_dim, WIDTHS, CELL_SIZE, num_actions, "lstm")


LOG_COLUMNS = ("iteration", "env_steps", "sim_seconds", "ad_s_per_mb", "delay_s", "anlr", "e2e", "e2d", "edge_share",
               "reward", "td_loss", "q_mean", "epsilon", "updates", "steps_per_s", "seconds")
TIMING_COLUMNS = ("steps_per_s", "seconds")


class Trainer:
    """A MADQN run; `run_iteration` collects `slots_per_iteration` slots of fresh episodes, learning every slot."""

    def __init__(self, config: DQNConfig, scenario: Any, workload: Workload) -> None:
        torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.config = config
        self.env = CrowdEdge(scenario, workload, config.num_envs, seed=episode_seed(config.seed, 0, 0))
        obs, _, mask = observe(self.env)
        self.online = q_network(obs.shape[-1], mask.shape[-1])
        self.target = copy.deepcopy(self.online)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate, eps=config.adam_eps)
        self.replay = ReplayBuffer(config.replay_capacity, {
            "obs": Field((obs.shape[-1],)), "next_obs": Field((obs.shape[-1],)),
            "state": Field((self.online.parts, CELL_SIZE)), "action": Field((), torch.long), "reward": Field(()),
            "next_mask": Field((mask.shape[-1],), torch.bool)}, seed=config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.iteration, self.updates = 0, 0

    def components(self) -> dict[str, Any]:
        return {"online": self.online, "target": self.target, "optimizer": self.optimizer, "replay": self.replay,
                "generator": self.generator, "counters": _Counters(self)}

    def run_iteration(self) -> dict[str, Any]:
        start = time.perf_counter()
        config, env = self.config, self.env
        env.reset(episode_seed(config.seed, self.iteration, 0))
        rows = env.num_envs * env.num_agents
        state = self.online.initial_state(rows)
        no_start = torch.zeros(1, rows, dtype=torch.bool)
        metrics, rewards_sum, losses, q_values = Metrics(env), 0.0, [], []
        obs, _, mask = observe(env)
        slot0 = self.iteration * config.slots_per_iteration
        epsilon = config.epsilon(slot0)
        for t in range(config.slots_per_iteration):
            epsilon = config.epsilon(slot0 + t)
            with torch.no_grad():
                q, following = self.online(obs.reshape(1, rows, -1), state, no_start)
            q = q.reshape(*mask.shape)
            q_values.append(float(q.masked_fill(~mask, 0.0).sum() / mask.sum()))
            valid = env.tasks.valid
            shape = (*valid.shape, mask.shape[-1])
            actions = epsilon_greedy(q.unsqueeze(2).expand(shape), epsilon, self.generator,
                                     mask.unsqueeze(2).expand(shape))
            before = env.link_mb.copy()
            placement, rewards = env.step(actions.numpy())
            metrics.add(placement, before)
            rewards_sum += float(rewards.sum())
            next_obs, _, next_mask = observe(env)
            e, n = torch.from_numpy(placement.env), torch.from_numpy(placement.agent)
            if len(e):
                self.replay.add(obs=obs[e, n], next_obs=next_obs[e, n],
                                state=state.reshape(*valid.shape[:2], *state.shape[1:])[e, n],
                                action=actions[e, n, torch.from_numpy(placement.slot)],
                                reward=torch.from_numpy(placement.reward * config.reward_scale).float(),
                                next_mask=next_mask[e, n])
            if len(self.replay) >= max(config.learning_starts, config.batch_size):
                losses.append(self._update())
            obs, mask, state = next_obs, next_mask, following
        self.iteration += 1
        seconds = time.perf_counter() - start
        steps = config.slots_per_iteration * config.num_envs
        row = {"iteration": self.iteration, "env_steps": self.iteration * steps,
               "sim_seconds": self.iteration * steps * env.slot_s, **rollout_metrics(metrics),
               "reward": rewards_sum / (steps * env.num_agents), "td_loss": float(np.mean(losses)) if losses else None,
               "q_mean": float(np.mean(q_values)), "epsilon": epsilon, "updates": self.updates,
               "steps_per_s": steps / seconds, "seconds": seconds}
        return {column: row.get(column) for column in LOG_COLUMNS}

    def _update(self) -> float:
        """One double-DQN step on a replayed batch: two steps (o_t, o_t+1) from the stored state."""
        config = self.config
        batch = self.replay.sample(config.batch_size).data
        inputs = torch.stack([batch["obs"], batch["next_obs"]])
        starts = torch.zeros(2, config.batch_size, dtype=torch.bool)
        q, _ = self.online(inputs, batch["state"], starts)
        with torch.no_grad():
            next_q, _ = self.target(inputs, batch["state"], starts)
        taken = q[0].gather(-1, batch["action"].unsqueeze(-1)).squeeze(-1)
        target = q_target(batch["reward"], next_q[1], torch.zeros(config.batch_size, dtype=torch.bool), config.gamma,
                          next_q_online=q[1].detach(), next_mask=batch["next_mask"])
        loss = td_loss(taken, target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % config.target_every == 0:
            update_target(self.target, self.online)
        return float(loss.detach())


class _Counters:
    """The trainer's update count, as a checkpoint component."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.trainer.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.updates = int(state["updates"])


class GreedyQ:
    """A trained MADQN as a `sim.crowd_edge.Policy`: every task to the agent's best allowed action (with
    `epsilon` and a generator: epsilon-greedy, as at the end of training)."""

    def __init__(self, network: RecurrentNet, generator: torch.Generator | None = None, epsilon: float = 0.0) -> None:
        self.name, self.network, self.generator, self.epsilon = "madqn", network, generator, epsilon
        self.state: torch.Tensor | None = None

    @torch.no_grad()
    def act(self, env: CrowdEdge) -> np.ndarray:
        rows = env.num_envs * env.num_agents
        if env.t == 0 or self.state is None:
            self.state = self.network.initial_state(rows)
        obs, _, mask = observe(env)
        q, self.state = self.network(obs.reshape(1, rows, -1), self.state, torch.zeros(1, rows, dtype=torch.bool))
        q = q.reshape(*mask.shape)
        shape = (*env.tasks.valid.shape, mask.shape[-1])
        if self.generator is None:
            return masked_argmax(q, mask).unsqueeze(-1).expand(shape[:-1]).numpy()
        return epsilon_greedy(q.unsqueeze(2).expand(shape), self.epsilon, self.generator,
                              mask.unsqueeze(2).expand(shape)).numpy()


def policy_maker(run: Run, workload: Workload, draw: tuple[str, ...]) -> Callable[[CrowdEdge, int], GreedyQ]:
    loaded: list[RecurrentNet] = []

    def make(env: CrowdEdge, seed: int) -> GreedyQ:
        if not loaded:
            torch.set_num_threads(run.config.threads)
            obs, _, mask = observe(env)
            network = q_network(obs.shape[-1], mask.shape[-1])
            try:
                network.load_state_dict(component_state(run.paths.checkpoint, "online"))
            except RuntimeError as error:
                raise EdgeprofError(f"the checkpoint of {run.path} does not fit this system: {error}") from None
            loaded.append(network.eval())
        if draw:
            return GreedyQ(loaded[0], torch.Generator().manual_seed(seed), run.config.epsilon_end)
        return GreedyQ(loaded[0])

    return make


def summary(row: dict[str, Any]) -> str:
    return (f"AD {row['ad_s_per_mb']:.4g} s/MB, delay {row['delay_s']:.4g} s, ANLR {row['anlr']:.4g}, "
            f"edge share {row['edge_share']:.2f}, epsilon {row['epsilon']:.2f}")


register_trainer(TrainerInfo(
    name="madqn", system=NAME, description="baseline: recurrent DQN per MD (32-96-LSTM 64), double DQN on a replay",
    make_config=make_config, config_from_record=lambda record: DQNConfig(**record),
    hyperparameters=parse_hyperparameters, make_trainer=Trainer, log_columns=LOG_COLUMNS,
    timing_columns=TIMING_COLUMNS, make_policy=policy_maker,
    panels=(Panel("ad_s_per_mb", "(a) unit delay AD (s per MB, Fig. 3)", log_scale=True),
            Panel("delay_s", "(b) delay per task (s)"), Panel("anlr", "(c) ANLR"), Panel("td_loss", "(d) TD loss"),
            Panel("epsilon", "(e) epsilon"), Panel("edge_share", "(f) tasks to edge servers")),
    summary=summary, layers=LAYERS))
