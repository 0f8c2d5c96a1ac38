"""A second system defined outside edgeprof: a multi-armed bandit with one scenario section, two solvers and one
trainer, registered the way a user's package would register its own (`register` / `unregister`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprof.optimize.solve import SolverInfo, register_solver, unregister_solvers
from edgeprof.rl import hyperparameters
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.trainers import Panel, TrainerInfo, register_trainer, unregister_trainer
from edgeprof.sim.fields import declare
from edgeprof.sim.systems import System, register_system, unregister_system

NAME = "bandit"


@dataclass(frozen=True)
class ArmsFields:
    """The arms: arm i pays i / (arms - 1) on average, plus Gaussian noise."""

    arms: int = declare("number of arms", low=2, high=20)
    noise: float = declare("standard deviation of a reward")


def load_workload(scenario: Any) -> np.ndarray:
    return np.linspace(0.0, 1.0, scenario["arms.arms"])


class Episode:
    """One episode's arms and noise draws."""

    def __init__(self, means: np.ndarray, noise: float, seed: int) -> None:
        self.means, self.noise, self.rng = means, noise, np.random.default_rng(seed)

    def pull(self, arm: int) -> float:
        return float(self.means[arm] + self.noise * self.rng.standard_normal())


def run_episode(scenario, means, make_policy, slots, seed, num_envs=1, progress=None) -> dict[str, Any]:
    episode = Episode(means, scenario["arms.noise"], seed)
    policy = make_policy(episode, seed)
    arms = [policy.pick(episode) for _ in range(slots)]
    rewards = [episode.pull(arm) for arm in arms]
    return {"reward": float(np.mean(rewards)), "best_rate": float(np.mean(np.array(arms) == len(means) - 1)),
            "pulls": slots}


class Uniform:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed + 1)

    def pick(self, episode: Episode) -> int:
        return int(self.rng.integers(len(episode.means)))


class Greedy:
    """Picks the best estimated arm; with `rng`, explores with probability `epsilon` (the trainer's action)."""

    def __init__(self, estimates: list[float], epsilon: float = 0.0, rng: np.random.Generator | None = None) -> None:
        self.estimates, self.epsilon, self.rng = estimates, epsilon, rng

    def pick(self, episode: Episode) -> int:
        if self.rng is not None and self.rng.random() < self.epsilon:
            return int(self.rng.integers(len(self.estimates)))
        return int(np.argmax(self.estimates))


@dataclass(frozen=True)
class BanditConfig:
    algorithm: str = "bandit-greedy"
    seed: int = 0
    iterations: int = 3
    checkpoint_every: int = 10
    slots_per_iteration: int = 20
    epsilon: float = 0.3

    def __post_init__(self) -> None:
        if not 0 <= self.epsilon <= 1:
            from edgeprof.errors import EdgeprofError

            raise EdgeprofError(f"epsilon must lie in [0, 1], got {self.epsilon}")


class Estimates:
    """Running mean reward per arm."""

    def __init__(self, arms: int) -> None:
        self.sums, self.counts = [0.0] * arms, [0] * arms

    @property
    def values(self) -> list[float]:
        return [s / c if c else 0.0 for s, c in zip(self.sums, self.counts, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        return {"sums": list(self.sums), "counts": list(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts = list(state["sums"]), list(state["counts"])


class Trainer:
    def __init__(self, config: BanditConfig, scenario: Any, means: np.ndarray) -> None:
        self.config, self.scenario, self.means = config, scenario, means
        self.estimates = Estimates(len(means))
        self.rng = np.random.default_rng(config.seed)
        self.iteration = 0

    def components(self) -> dict[str, Any]:
        return {"estimates": self.estimates, "rng": self.rng}

    def run_iteration(self) -> dict[str, Any]:
        start = time.perf_counter()
        episode = Episode(self.means, self.scenario["arms.noise"], int(self.rng.integers(2 ** 31)))
        policy = Greedy(self.estimates.values, self.config.epsilon, self.rng)
        rewards, best = [], 0
        for _ in range(self.config.slots_per_iteration):
            arm = policy.pick(episode)
            reward = episode.pull(arm)
            self.estimates.sums[arm] += reward
            self.estimates.counts[arm] += 1
            policy.estimates = self.estimates.values
            rewards.append(reward)
            best += arm == len(self.means) - 1
        self.iteration += 1
        return {"iteration": self.iteration, "reward": float(np.mean(rewards)),
                "best_rate": best / self.config.slots_per_iteration, "seconds": time.perf_counter() - start}


def make_policy(run, means, draw):
    estimates = Estimates(len(means))
    estimates.load_state_dict(component_state(run.paths.checkpoint, "estimates"))

    def make(episode: Episode, seed: int) -> Greedy:
        if draw:
            return Greedy(estimates.values, run.config.epsilon, np.random.default_rng(seed))
        return Greedy(estimates.values)

    return make


SYSTEM = System(name=NAME, description="A multi-armed bandit (tests: a second system).", sections={"arms": ArmsFields},
                default_preset=None, metrics=("reward", "best_rate"), bounded_metrics={"best_rate": (0.0, 1.0)},
                rate_trials={"best_rate": "pulls"}, load_workload=load_workload, run_episode=run_episode)
SOLVERS = (SolverInfo("uniform", NAME, "a uniformly random arm", lambda episode, seed: Uniform(seed)),
           SolverInfo("oracle", NAME, "the best arm", lambda episode, seed: Greedy(list(episode.means))))
TRAINER = TrainerInfo(
    name="bandit-greedy", system=NAME, description="epsilon-greedy running means",
    make_config=lambda **settings: BanditConfig(**settings), config_from_record=lambda record: BanditConfig(**record),
    hyperparameters=lambda pairs: hyperparameters.parse(BanditConfig, pairs, {"algorithm", "seed", "iterations"}),
    make_trainer=Trainer, log_columns=("iteration", "reward", "best_rate", "seconds"), timing_columns=("seconds",),
    make_policy=make_policy, panels=(Panel("reward", "reward"), Panel("best_rate", "best arm rate")),
    summary=lambda row: f"reward {row['reward']:.3f}, best arm {row['best_rate']:.2f}", layers=("arm",))


def register() -> None:
    register_system(SYSTEM)
    for info in SOLVERS:
        register_solver(info)
    register_trainer(TRAINER)


def unregister() -> None:
    unregister_system(NAME)
    unregister_solvers(NAME)
    unregister_trainer(TRAINER.name)
