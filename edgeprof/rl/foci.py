"""FOCI (seed 002, section 4) and its learning baselines as configurations of one trainer: a parameter-shared
dueling double DQN that every device of the `foci` system acts with (`sim.foci`).

One iteration of `Trainer.run_iteration` is one episode (App. B.3: one hour, 240 steps of 15 s) seeded by
(seed, iteration). Each step every device observes, acts epsilon-greedily on the shared Q-network among the
actions its mask allows, and its transition (observation, action, reward, next observation, next mask) goes
into one shared replay (`rl.replay`); every `update_every` steps one double-DQN update (`rl.dqn.q_target`, Huber
TD loss) on a minibatch of it, and every `target_update_every` steps a hard target copy. Epsilon decays from 1 by
0.99 per episode (App. B.3). Network: a 3-layer MLP (input -> hidden -> hidden -> dueling head, `rl.dqn`).

The methods differ in what a device observes and what it is rewarded (`VARIANTS`):

- every device observes its own state: clock ratio, battery, per edge the uplink rate (log10 Mbit/s / 3),
  the distance over its perception radius r_p (clipped at 2) and whether any action at that edge meets D_st
  with the whole edge, and which edge it chose last step (one-hot, local last);
- COA (`foci`, `foci-coa`) adds eq. 5's competitor-aware records F^m (N x K: the last step's cut histograms of
  the edges within r_p, zeros elsewhere), divided by M / N (the mean devices per edge) as input scaling;
- AMFQ (`amfq`) adds the mean one-hot last action (phi entries) of the other devices within
  `neighbour_radius_m` (0: each device's r_p), the proximity-based mean field that COA replaces;
- OFR (`foci`, `foci-ofr`) rewards every device an edge served with R_n^* (eq. 4, the edge's fairness oracle,
  `optimize.foci.oracle_costs`, with the scenario's `edges.oracle_method`); devices running locally get their
  own R (the paper is silent); the others (`iql`, `amfq`, `foci-coa`) are rewarded their own R.

Choices where App. B.3 is silent (marked `ours` in `TrainConfig`): the hidden width, batch size, replay size,
warm-up, update and target-copy pace, gradient clipping, epsilon's floor, and masking actions that cannot meet
D_st even with the whole edge (`use_action_mask`; the simulator's mask, local always allowed).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.foci import oracle_costs
from edgeprof.rl import hyperparameters
from edgeprof.rl.buffers import Field
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.dqn import (
    DuelingHead,
    ExponentialSchedule,
    epsilon_greedy,
    masked_argmax,
    q_target,
    td_loss,
    update_target,
)
from edgeprof.rl.replay import ReplayBuffer
from edgeprof.rl.runs import Run
from edgeprof.rl.seeding import seed_everything
from edgeprof.rl.trainers import Panel, TrainerInfo, register_trainer
from edgeprof.sim.foci import EpisodeTotals, FociEnv, FociWorkload
from edgeprof.sim.scenario import Scenario


@dataclass(frozen=True)
class Variant:
    """What distinguishes seed 002's learning methods (section 5, Fig. 4)."""

    description: str
    oracle_reward: bool  # OFR: devices at an edge are rewarded the edge's oracle value R_n^*
    competitor_records: bool  # COA: eq. 5's records of the edges within r_p
    neighbour_actions: bool  # AMFQ: the mean one-hot action of nearby devices


VARIANTS = {
    "foci": Variant("ours: oracle-shaped fairness rewards (OFR) and competitor-aware observations (COA)", True,
                    True, False),
    "foci-ofr": Variant("ablation: OFR only", True, False, False),
    "foci-coa": Variant("ablation: COA only", False, True, False),
    "iql": Variant("independent Q-learning: local observations, own rewards", False, False, False),
    "amfq": Variant("mean-field Q-learning: adds nearby devices' mean one-hot action", False, False, True),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (App. B.3 where given, `ours` otherwise). Build it with `make_config`."""

    algorithm: str = "foci"
    seed: int = 0
    iterations: int = 300  # episodes; ours: epsilon 0.99^300 = 0.05
    checkpoint_every: int = 10  # ours
    slots_per_iteration: int = 240  # App. B.3: 1-h episodes (240 steps of 15 s)
    oracle_reward: bool = True  # set by VARIANTS
    competitor_records: bool = True  # set by VARIANTS
    neighbour_actions: bool = False  # set by VARIANTS
    hidden: int = 128  # ours: width of the 3-layer MLP's two hidden layers
    learning_rate: float = 1e-4  # App. B.3
    gamma: float = 0.7  # App. B.3
    epsilon_start: float = 1.0  # App. B.3
    epsilon_decay: float = 0.99  # App. B.3: per episode
    epsilon_end: float = 0.01  # ours: the floor
    batch_size: int = 256  # ours
    replay_capacity: int = 100_000  # ours: rows (one per device and step)
    learning_starts: int = 1_000  # ours: rows stored before the first update
    update_every: int = 1  # ours: steps between updates (one minibatch each)
    target_update_every: int = 250  # ours: steps between hard target copies
    max_grad_norm: float = 10.0  # ours
    neighbour_radius_m: float = 0.0  # AMFQ; ours: 0 uses each device's perception radius
    use_action_mask: bool = True  # ours: actions that cannot meet D_st with the whole edge are masked
    threads: int = 1  # DESIGN.md: torch threads

    def __post_init__(self) -> None:
        if self.algorithm not in VARIANTS:
            raise EdgeprofError(f"unknown algorithm {self.algorithm!r}: use one of {', '.join(VARIANTS)}")
        if not 0 <= self.seed < 2 ** 32:
            raise EdgeprofError(f"the seed must lie in [0, 2**32), got {self.seed}")
        for name in ("iterations", "checkpoint_every", "slots_per_iteration", "hidden", "batch_size",
                     "replay_capacity", "update_every", "target_update_every", "threads"):
            if getattr(self, name) < 1:
                raise EdgeprofError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.learning_starts < 0:
            raise EdgeprofError(f"learning_starts must not be negative, got {self.learning_starts}")
        if not self.learning_rate > 0 or not self.max_grad_norm > 0 or self.neighbour_radius_m < 0:
            raise EdgeprofError("learning_rate and max_grad_norm must be positive, neighbour_radius_m not negative")
        if not 0 <= self.gamma <= 1:
            raise EdgeprofError(f"gamma must lie in [0, 1], got {self.gamma}")
        if not 0 <= self.epsilon_end <= self.epsilon_start <= 1 or not 0 < self.epsilon_decay <= 1:
            raise EdgeprofError("need 0 <= epsilon_end <= epsilon_start <= 1 and epsilon_decay in (0, 1]")

    @property
    def epsilon(self) -> ExponentialSchedule:
        return ExponentialSchedule(self.epsilon_start, self.epsilon_decay, self.epsilon_end)


def make_config(algorithm: str, **settings: Any) -> TrainConfig:
    """The configuration of a named method (`VARIANTS`); `settings` change any other field."""
    if algorithm not in VARIANTS:
        raise EdgeprofError(f"unknown algorithm {algorithm!r}: use one of {', '.join(VARIANTS)}")
    variant = VARIANTS[algorithm]
    return TrainConfig(algorithm=algorithm, oracle_reward=variant.oracle_reward,
                       competitor_records=variant.competitor_records, neighbour_actions=variant.neighbour_actions,
                       **settings)


_NOT_HYPERPARAMETERS = {"algorithm", "seed", "iterations", "slots_per_iteration", "checkpoint_every",
                        "oracle_reward", "competitor_records", "neighbour_actions"}


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """`make_config` settings from NAME=VALUE strings (learning_rate=3e-4, epsilon_decay=0.97, ...)."""
    return hyperparameters.parse(TrainConfig, pairs, _NOT_HYPERPARAMETERS)


def episode_seed(seed: int, iteration: int) -> int:
    """The seed of one iteration's episode: independent streams for every (seed, iteration)."""
    return int(np.random.SeedSequence([seed, iteration, 2]).generate_state(1)[0])


# Observations


def local_observation(env: FociEnv) -> np.ndarray:
    """(M, 2 + 3 N + N + 1): clock ratio, battery over the full-clock battery, per edge the uplink rate, the
    distance over r_p and reachability, and last step's choice one-hot (module docstring)."""
    m, n = env.num_devices, env.num_edges
    full_wh = env.scenario["device.full_clock_battery_wh"]
    rate = np.log10(np.maximum(env.uplink_bps, 1.0) / 1e6) / 3.0
    reach = np.minimum(env.distances_m / np.maximum(env.perception_radius_m, 1.0)[:, None], 2.0)
    reachable = env.mask[:, :-1].reshape(m, n, env.num_cuts).any(axis=-1)
    previous = np.zeros((m, n + 1))
    chose = env.previous_choice >= 0
    previous[np.flatnonzero(chose), env.previous_choice[chose]] = 1.0
    return np.concatenate([env.clock_ratio[:, None], (env.battery_wh / full_wh)[:, None], rate, reach,
                           reachable.astype(np.float64), previous], axis=1)


def neighbour_mean_actions(env: FociEnv, radius_m: float) -> np.ndarray:
    """(M, phi): the mean one-hot last action of the other devices within `radius_m` (0: each device's r_p);
    zeros with no neighbour or before the first step."""
    m = env.num_devices
    if env.last_actions.min() < 0:
        return np.zeros((m, env.num_actions))
    offsets = env.positions[:, None, :] - env.positions[None, :, :]
    distance = np.hypot(offsets[..., 0], offsets[..., 1])
    radius = env.perception_radius_m[:, None] if radius_m == 0 else radius_m
    near = (distance <= radius) & ~np.eye(m, dtype=bool)
    one_hot = np.zeros((m, env.num_actions))
    one_hot[np.arange(m), env.last_actions] = 1.0
    counts = near.sum(axis=1, keepdims=True)
    return (near.astype(np.float64) @ one_hot) / np.maximum(counts, 1)


def observe(env: FociEnv, config: TrainConfig) -> np.ndarray:
    """Every device's observation (M, obs_dim) as float32, by the method's variant."""
    parts = [local_observation(env)]
    if config.competitor_records:
        scale = env.num_devices / env.num_edges
        parts.append(env.competitor_records().reshape(env.num_devices, -1) / scale)
    if config.neighbour_actions:
        parts.append(neighbour_mean_actions(env, config.neighbour_radius_m))
    return np.concatenate(parts, axis=1).astype(np.float32)


def observation_size(num_edges: int, num_cuts: int, config: TrainConfig) -> int:
    return (2 + 4 * num_edges + 1 + (num_edges * num_cuts if config.competitor_records else 0)
            + ((num_edges * num_cuts + 1) if config.neighbour_actions else 0))


def action_mask(env: FociEnv, config: TrainConfig) -> np.ndarray:
    return env.mask if config.use_action_mask else np.ones_like(env.mask)


class QNetwork(nn.Module):
    """The shared 3-layer MLP with a dueling head: observations (..., obs_dim) -> Q-values (..., phi)."""

    def __init__(self, observation_dim: int, num_actions: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(observation_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = DuelingHead(hidden, num_actions)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(observation))


def network_for(scenario: Scenario, workload: FociWorkload, config: TrainConfig) -> QNetwork:
    edges = scenario["system.num_edges"]
    return QNetwork(observation_size(edges, workload.num_cuts, config), edges * workload.num_cuts + 1, config.hidden)


# Training

LOG_COLUMNS = ("iteration", "env_steps", "epsilon", "reward", "shaped_reward", "latency_ms", "max_latency_ms",
               "worst_device_latency_ms", "energy_mj", "max_energy_mj", "switches_per_hour", "qos_cost",
               "violation_rate", "offload_rate", "overflow_rate", "td_loss", "q_mean", "updates", "steps_per_s",
               "seconds")
TIMING_COLUMNS = ("steps_per_s", "seconds")


class Counters:
    """Steps and updates so far (the target copies' pace), checkpointed with the rest."""

    def __init__(self) -> None:
        self.steps, self.updates = 0, 0

    def state_dict(self) -> dict[str, int]:
        return {"steps": self.steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps, self.updates = int(state["steps"]), int(state["updates"])


class Trainer:
    """All the state of a run; `run_iteration` plays and learns one episode. Sets torch's thread count."""

    def __init__(self, config: TrainConfig, scenario: Scenario, workload: FociWorkload) -> None:
        torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.config, self.scenario, self.workload = config, scenario, workload
        self.online = network_for(scenario, workload, config)
        self.target = network_for(scenario, workload, config)
        update_target(self.target, self.online)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate)
        size = observation_size(scenario["system.num_edges"], workload.num_cuts, config)
        actions = scenario["system.num_edges"] * workload.num_cuts + 1
        self.replay = ReplayBuffer(config.replay_capacity, {
            "obs": Field((size,)), "action": Field((), torch.long), "reward": Field(()),
            "next_obs": Field((size,)), "next_mask": Field((actions,), torch.bool)}, seed=config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)  # exploration
        self.counters = Counters()
        self.iteration = 0

    def components(self) -> dict[str, Any]:
        """Everything a checkpoint must hold for a resumed run to repeat an uninterrupted one."""
        return {"online": self.online, "target": self.target, "optimizer": self.optimizer, "replay": self.replay,
                "generator": self.generator, "counters": self.counters}

    def _rewards(self, env: FociEnv, outcome: Any) -> tuple[np.ndarray, np.ndarray]:
        """(own reward -cost, the reward the method learns from) per device."""
        own = -outcome.cost
        if not self.config.oracle_reward:
            return own, own
        scenario = self.scenario
        return own, -oracle_costs(outcome, env.num_edges, env.sms, scenario["edges.oracle_method"],
                                  scenario["edges.oracle_tolerance"])

    def _update(self) -> tuple[float, float]:
        config = self.config
        batch = self.replay.sample(config.batch_size).data
        q = self.online(batch["obs"])
        taken = q.gather(-1, batch["action"].unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            next_online, next_target = self.online(batch["next_obs"]), self.target(batch["next_obs"])
        terminated = torch.zeros_like(batch["reward"], dtype=torch.bool)  # episodes are truncated, never end
        target = q_target(batch["reward"], next_target, terminated, config.gamma, next_online, batch["next_mask"])
        loss = td_loss(taken, target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.counters.updates += 1
        return float(loss.detach()), float(taken.detach().mean())

    def run_iteration(self) -> dict[str, Any]:
        """One episode of acting, storing and learning; returns its log row (`LOG_COLUMNS`)."""
        start = time.perf_counter()
        config = self.config
        env = FociEnv(self.scenario, self.workload, episode_seed(config.seed, self.iteration))
        epsilon = config.epsilon(self.iteration)
        totals = EpisodeTotals(env.num_devices)
        sums = {"reward": 0.0, "shaped_reward": 0.0}
        losses, q_means = [], []
        obs, mask = observe(env, config), action_mask(env, config)
        for _ in range(config.slots_per_iteration):
            with torch.no_grad():
                q = self.online(torch.from_numpy(obs))
            actions = epsilon_greedy(q, epsilon, self.generator, torch.from_numpy(mask)).numpy()
            outcome = env.step(actions)
            totals.add(outcome)
            own, shaped = self._rewards(env, outcome)
            sums["reward"] += float(own.mean())
            sums["shaped_reward"] += float(shaped.mean())
            next_obs, next_mask = observe(env, config), action_mask(env, config)
            self.replay.add(obs=torch.from_numpy(obs), action=torch.from_numpy(actions),
                            reward=torch.from_numpy(shaped.astype(np.float32)), next_obs=torch.from_numpy(next_obs),
                            next_mask=torch.from_numpy(next_mask))
            obs, mask = next_obs, next_mask
            self.counters.steps += 1
            if len(self.replay) >= max(config.learning_starts, 1) and self.counters.steps % config.update_every == 0:
                loss, q_mean = self._update()
                losses.append(loss)
                q_means.append(q_mean)
            if self.counters.steps % config.target_update_every == 0:
                update_target(self.target, self.online)
        self.iteration += 1
        seconds = time.perf_counter() - start
        metrics = totals.metrics(env.step_s)
        row = {"iteration": self.iteration, "env_steps": self.counters.steps, "epsilon": epsilon,
               "reward": sums["reward"] / config.slots_per_iteration,
               "shaped_reward": sums["shaped_reward"] / config.slots_per_iteration, **metrics,
               "td_loss": float(np.mean(losses)) if losses else float("nan"),
               "q_mean": float(np.mean(q_means)) if q_means else float("nan"), "updates": self.counters.updates,
               "steps_per_s": config.slots_per_iteration / seconds, "seconds": seconds}
        return {column: row[column] for column in LOG_COLUMNS}


# Evaluation

LAYERS = ("device",)


class TrainedPolicy:
    """A trained run as a `foci` policy: the shared Q-network's best allowed action for every device, or (with a
    generator) epsilon-greedy at the run's last epsilon, as in training."""

    def __init__(self, config: TrainConfig, network: QNetwork, generator: torch.Generator | None = None,
                 epsilon: float = 0.0) -> None:
        self.name, self.config, self.network = config.algorithm, config, network
        self.generator, self.epsilon = generator, epsilon

    @torch.no_grad()
    def act(self, env: FociEnv) -> np.ndarray:
        q = self.network(torch.from_numpy(observe(env, self.config)))
        mask = torch.from_numpy(action_mask(env, self.config))
        if self.generator is None:
            return masked_argmax(q, mask).numpy()
        return epsilon_greedy(q, self.epsilon, self.generator, mask).numpy()


def policy_maker(run: Run, workload: FociWorkload, draw: Collection[str]):
    """The run's policies for `sim.evaluation.run_episodes`: loaded once; with the `device` layer drawn, each
    episode explores from its own seed at the last training episode's epsilon."""
    config: TrainConfig = run.config
    torch.set_num_threads(config.threads)
    network = network_for(run.scenario, workload, config)
    try:
        network.load_state_dict(component_state(run.paths.checkpoint, "online"))
    except RuntimeError as error:
        raise EdgeprofError(f"the checkpoint of {run.path} does not fit its scenario: {error}") from None
    network.eval()
    epsilon = config.epsilon(max(config.iterations - 1, 0))

    def make(env: FociEnv, seed: int) -> TrainedPolicy:
        if draw:
            return TrainedPolicy(config, network, torch.Generator().manual_seed(seed), epsilon)
        return TrainedPolicy(config, network)

    return make


def config_from_record(settings: dict[str, Any]) -> TrainConfig:
    return TrainConfig(**settings)


def summary(row: dict[str, Any]) -> str:
    return (f"latency {row['latency_ms']:.3g} ms (max {row['max_latency_ms']:.3g}), energy {row['energy_mj']:.3g} "
            f"mJ, {row['switches_per_hour']:.3g} switches/h, QoS cost {row['qos_cost']:.4g}, epsilon "
            f"{row['epsilon']:.3f}")


PANELS = (Panel("reward", "(a) mean QoS reward R (own)"), Panel("shaped_reward", "(b) reward learned from"),
          Panel("latency_ms", "(c) mean latency (ms)"), Panel("max_latency_ms", "(d) max latency (ms)"),
          Panel("energy_mj", "(e) mean energy (mJ)"), Panel("switches_per_hour", "(f) switches per device-hour"),
          Panel("violation_rate", "(g) D_st violation rate"), Panel("td_loss", "(h) TD loss", log_scale=True))


for _name, _variant in VARIANTS.items():
    register_trainer(TrainerInfo(
        name=_name, system="foci", description=_variant.description,
        make_config=functools.partial(make_config, _name), config_from_record=config_from_record,
        hyperparameters=parse_hyperparameters, make_trainer=Trainer, log_columns=LOG_COLUMNS,
        timing_columns=TIMING_COLUMNS, make_policy=policy_maker, panels=PANELS, summary=summary, layers=LAYERS))

