"""HC-MAPPO-L (seed 001, section IV, Algorithm 1) and its ablations (section V-A) in one file.

One iteration of `Trainer.run_iteration`:

1. `collect`: a fresh episode of `slots_per_iteration` slots in each of E batched environments. Every delta-T
   slots each server's GRU policy picks its services (eq. 28), servers in turn; every slot each user picks a
   server and a partition point, then each server's attention policy shares out its compute and bandwidth; the simulator
   scores the slot. Rewards: eq. 24 per server and interval, eq. 25 per user with the raw delay as the
   Lagrangian cost, eq. 26 per server and slot.
2. `update`: GAE for each layer; the multiplier's dual step on the rollout's mean delay against tau-bar (eq. 33,
   before the policy updates, as in Algorithm 1 lines 17-18); then PPO for deployment (eq. 30-31, with V(h_0)
   as baseline, or eq. 29's mean step value), PPO-Lagrangian for users (eq. 38) and PPO for allocation.

Choices where the paper is silent (marked in `TrainConfig` too):

- Episodes: each iteration starts new episodes (nodes, capacities, popularity) seeded by (seed, iteration),
  as Algorithm 1's "for N episodes". Policies must then work on systems they have not seen, which is what
  `evaluate` asks of them, and a resumed run needs no environment state: the checkpoint holds the networks,
  optimisers, normalisers, multiplier and generators, and a resumed run repeats an uninterrupted one bit for bit.
- An episode is truncated, not terminated, at the end of the iteration: users and allocation bootstrap from the
  value of the state reached (the allocation agents' state needs the users' next choices, so they are drawn);
  the last deployment decision, whose reward would only come at the next interval, is left out and its value
  bootstraps the one before (`rl.buffers`).
- Servers deploy in turn, each pick seeing the sets of the servers before it (`policy.deployment_order`; or in
  rounds, one pick each a step, faster: `rl.hc_policies.DeploymentPolicy`). Deciding at once from one
  observation, identical greedy policies pick identical sets and leave the rest of the catalogue uncovered
  (measured on `small`: 91% of requests served, against 98% with the same policies sampled).
- Deployment entropy: V-A's coefficient 0.25 multiplies the mean entropy per pick of a sequence (one pick is
  one action of eq. 28, as one (server, point) is a user's). The public code puts it on the sum over the
  sequence; measured on `small` (tau-bar 1 s, 40 iterations, seed 2), that bonus kept the first pick uniform
  (log-probability ln 1/4 after 100 iterations) and the greedy servers left a model uncovered: 93% of requests
  served, against 99% with a fifth of the bonus.
- Deployment discount gamma^delta-T per decision, so all layers discount the same wall-clock future.
- Users: reward and cost critics (two heads of one trunk, the public code's, `policy.shared_critic`) with their
  own value normalisers; both advantages are standardised per minibatch, then combined as
  (A_r - lambda A_c) / (1 + lambda) (OmniSafe), so the step size does not grow with lambda. The multiplier is a
  plain projected step, not Adam (`rl.lagrange`). Methods without the multiplier have no cost critic.
- Batches: `epochs` passes over `minibatches` minibatches of whole slots for the users (all K users of a slot
  together, so the critics' global state is projected once per slot of the minibatch), and over
  `deployment_minibatches` and `allocation_minibatches` for the other layers (2 each: 95 sequences or 100 slots,
  where 8 small ones spent most of their time in per-step overhead). The public code uses 3 epochs x 8. The
  layers share no parameters, so with `threads` >= 2 they update side by side (users on one core, deployment and
  allocation on the other), each minibatch order drawn beforehand as the sequential update draws it.
- Allocation: a user alone at its server gets everything whatever the policy says, so servers with fewer than
  two users are left out of the allocation policy loss (their critic still learns).
- The global state of the users' critics is stored once per slot and environment, not once per user.
- Collection acts; it scores afterwards: the values of every slot and the deployment sequences' log-probabilities
  and values are computed in one batched pass at the end of the rollout (the policies do not change while they
  collect). Input checks of buffers and distributions run only with `debug` (they cost about a tenth of an
  iteration and the trainer's inputs are right by construction).

Two defaults differ from the paper, measured on `small` (tau-bar 0.5 s, `multiplier_lr=0.1`, 40 iterations, 5
seeds; `benchmarks/results/hc_mappo_l_before_issue26.md`) and at the paper's size (30 iterations, 2 seeds;
`benchmarks/results/hc_mappo_l_issue26.md`); `deployment_baseline="mean_step", deployment_reward="own"` restores
the paper's:

- Deployment baseline (`deployment_baseline`, default `initial`, V(h_0)): eq. 29's mean of V(h_n) reads the
  sequence's own picks for every n >= 1, so that baseline depends on the action it should judge; its critic
  then explains the returns almost exactly (value loss ~0.005 in normalised units) and the deployment policy
  barely learns (entropy per pick flat at ~0.8 over 80 iterations). V(h_0) is a value of the observation alone.
  With the team reward: every greedy request served against 0.997, hc-mappo-l's delay 0.33 s against 0.52 s.
- Deployment reward (`deployment_reward`, default `difference`): each server gets what the team's eq. 24 reward
  would lose without it, the requests of the services only it hosts less its migration, so covering a service
  no other server hosts pays and duplicating one does not. On `small`, with V(h_0) and the own reward, one seed
  in five left a model unhosted (delay 0.78 s), with the team reward (the servers' mean eq. 24 reward) none. At
  the paper's size after 30 iterations, the servers' greedy sets covered 35.0 and 35.5 of 45 services with the
  difference reward, against 30.5 and 33.7 with the team reward (33.1 / 34.5 with a coverage term on the team
  reward, 34.2 / 35.8 with the deployment entropy decayed to 0.025), with the same delays drawn.

The public code's bugs are avoided by construction: training re-scores sequences with the masks and inputs
that sampling used (first PPO ratio 1 up to float rounding, `rl.distributions`), value losses refuse
broadcasting (`rl.losses`), the allocation is an ordinary PPO policy with stochastic collection whose reward
is paired with its own action, and every layer trains only on data of the current policy.

Ablations (`ALGORITHMS`) are configurations of the same code: H-MAPPO has no multiplier; H-IPPO has no
multiplier and users' critics that see only their own observation; HC-IPPO-L has such critics and the
multiplier; Heuristic-MAPPO-L keeps our user layer with LRU deployment and equal shares.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.heuristics import LeastRecentlyUsed, equal_share_allocation
from edgeprof.rl import hyperparameters
from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.distributions import SequenceResult
from edgeprof.rl.gae import decision_gamma
from edgeprof.rl.hc_policies import (
    AllocationObservation,
    DeploymentObservation,
    HCPolicies,
    HCPolicyConfig,
    UserObservation,
    allocation_observation,
    allocation_shares,
    deployment_observation,
    draw_deployment,
    others_picks,
    user_observation,
)
from edgeprof.rl.lagrange import (
    LagrangeMultiplier,
    PIDLagrangeMultiplier,
    lagrangian_advantages,
)
from edgeprof.rl.losses import normalize_advantages, ppo_policy_loss, value_loss
from edgeprof.rl.normalizers import ValueNormalizer
from edgeprof.rl.runs import Run, load_run
from edgeprof.rl.seeding import seed_everything
from edgeprof.rl.trainers import Panel, TrainerInfo, register_trainer
from edgeprof.sim.dpa import DELAY_DISTRIBUTION
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.rollout import delay_distribution, request_values
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.workload import ServiceTable


@dataclass(frozen=True)
class Algorithm:
    """What distinguishes seed 001's learning methods (section V-A)."""

    description: str
    constrained: bool  # the Lagrange multiplier on the delay constraint
    independent_critics: bool  # users' critics see only their own observation (IPPO)
    learned_deployment: bool = True  # False: LRU deployment
    learned_allocation: bool = True  # False: equal shares
    random_fill: bool = False  # the deployment layer keeps its initial parameters and always draws


ALGORITHMS = {
    "hc-mappo-l": Algorithm("ours: centralised critics and the delay multiplier, all three layers learned", True,
                            False),
    "h-mappo": Algorithm("ablation: no multiplier", False, False),
    "h-ippo": Algorithm("ablation: independent critics, no multiplier", False, True),
    "hc-ippo-l": Algorithm("ablation: independent critics with the multiplier", True, True),
    "heuristic-mappo-l": Algorithm("ablation: our user layer; LRU deployment, equal-share allocation", True, False,
                                   learned_deployment=False, learned_allocation=False),
    "random-fill": Algorithm("control: hc-mappo-l over an untrained deployment layer that always draws (the "
                             "learned users and allocation; what a deployment must beat)", True, False,
                             random_fill=True),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. Sources: V-A = seed 001 section V-A; public = the public configuration
    (research/hcmappo.md 5.4); ours = our choice where both are silent. Build it with `make_config`."""

    algorithm: str = "hc-mappo-l"
    seed: int = 0
    iterations: int = 1000  # V-A: 1000 iterations
    slots_per_iteration: int = 200  # V-A: 200-step data collection
    num_envs: int = 8  # ours: environments stepped together, E x more samples per iteration
    constrained: bool = True  # set by ALGORITHMS
    learned_deployment: bool = True  # set by ALGORITHMS
    learned_allocation: bool = True  # set by ALGORITHMS
    learning_rate: float = 3e-4  # V-A, every layer
    adam_eps: float = 1e-5  # public
    gamma: float = 0.99  # V-A, per slot
    gae_lambda: float = 0.95  # V-A
    deployment_discount: str = "slot"  # ours: gamma ** delta-T per deployment decision (`rl.gae.decision_gamma`)
    deployment_reward: str = "difference"  # ours: what the team's eq. 24 loses without the server (the requests of
    # services only it hosts, less its migration); "team": the servers' mean eq. 24; "own": its own hits (eq. 24)
    deployment_coverage_coef: float = 0.0  # ours: adds this x mu_hit x the requests of the services only the
    # server hosts (those that would fail without it) to its reward
    deployment_baseline: str = "initial"  # ours: V(h_0), independent of the choices; "mean_step": eq. 29
    clip_coef: float = 0.2  # V-A
    epochs: int = 3  # public
    minibatches: int = 8  # public: the users' minibatches (of whole slots, ours)
    deployment_minibatches: int = 2  # ours (public: 8): 95 sequences each at the paper's size
    allocation_minibatches: int = 2  # ours (public: 8): 100 slots each
    user_entropy_coef: float = 0.05  # V-A
    deployment_entropy_coef: float = 0.25  # V-A; ours: on the mean entropy per pick of a sequence (see above)
    deployment_entropy_final_coef: float = 0.25  # ours: the coefficient reached after ...
    deployment_entropy_decay_iterations: int = 0  # ... this many iterations, linearly (0: constant)
    allocation_entropy_coef: float = 0.0  # ours: V-A gives none (CleanRL's continuous-action default)
    value_coef: float = 0.5  # public (reward and cost critics alike)
    max_grad_norm: float = 0.5  # public
    multiplier_init: float = 0.01  # V-A
    multiplier_lr: float = 0.01  # V-A, per second of mean delay above tau-bar
    multiplier_max: float = 100.0  # V-A
    multiplier_kind: str = "dual"  # V-A's projected step (eq. 33); "pid": Stooke et al.'s PID, ki = multiplier_lr
    multiplier_kp: float = 0.0  # "pid": proportional gain, per second of mean delay above tau-bar
    multiplier_kd: float = 0.0  # "pid": derivative gain, per second the mean delay rose since the last iteration
    random_fill: bool = False  # set by ALGORITHMS (random-fill): the deployment layer keeps its initial parameters
    # and always draws
    checkpoint_every: int = 10  # ours
    threads: int = 1  # DESIGN.md: threads of the update (collection runs on one: its operations are small); with 2 or
    # more the layers update side by side, one thread each (the same numbers as one after the other)
    debug: bool = False  # ours: check every buffer insert and distribution input (slower; same numbers)
    policy: HCPolicyConfig = field(default_factory=HCPolicyConfig)  # sizes; independent_critics by ALGORITHMS

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise EdgeprofError(f"unknown algorithm {self.algorithm!r}: use one of {', '.join(ALGORITHMS)}")
        if not 0 <= self.seed < 2 ** 32:
            raise EdgeprofError(f"the seed must lie in [0, 2**32), got {self.seed}")
        for name in ("iterations", "slots_per_iteration", "num_envs", "epochs", "minibatches", "deployment_minibatches",
                     "allocation_minibatches", "checkpoint_every", "threads"):
            if getattr(self, name) < 1:
                raise EdgeprofError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.deployment_discount not in ("slot", "decision"):
            raise EdgeprofError(f"deployment_discount must be slot or decision, got {self.deployment_discount!r}")
        if self.deployment_reward not in ("own", "team", "difference"):
            raise EdgeprofError(f"deployment_reward must be own, team or difference, got {self.deployment_reward!r}")
        if self.policy.deployment_order not in ("turn", "rounds"):
            raise EdgeprofError(f"policy.deployment_order must be turn or rounds, got {self.policy.deployment_order!r}")
        if self.multiplier_kind not in ("dual", "pid"):
            raise EdgeprofError(f"multiplier_kind must be dual or pid, got {self.multiplier_kind!r}")
        if self.random_fill and not self.learned_deployment:
            raise EdgeprofError(f"{self.algorithm} deploys with LRU: random_fill needs a learned deployment layer")
        if self.deployment_baseline not in ("mean_step", "initial"):
            raise EdgeprofError(f"deployment_baseline must be mean_step or initial, got {self.deployment_baseline!r}")
        hyperparameters.require_finite(self)
        for name in ("learning_rate", "adam_eps", "clip_coef", "max_grad_norm"):
            hyperparameters.require(self, name, above=0)
        for name in ("gamma", "gae_lambda"):
            hyperparameters.require(self, name, low=0, high=1)
        for name in ("user_entropy_coef", "deployment_entropy_coef", "allocation_entropy_coef", "value_coef",
                     "multiplier_init", "multiplier_lr", "deployment_coverage_coef", "deployment_entropy_final_coef",
                     "deployment_entropy_decay_iterations", "multiplier_kp", "multiplier_kd"):
            hyperparameters.require(self, name, low=0)
        hyperparameters.require(self, "multiplier_max", low=self.multiplier_init)
        for name in ("user_hidden", "user_layers", "deploy_hidden", "deploy_embed", "alloc_hidden"):
            hyperparameters.require(self, f"policy.{name}", low=1)
        hyperparameters.require(self, "policy.head_gain", above=0)


def make_config(algorithm: str, **settings: Any) -> TrainConfig:
    """The configuration of a named algorithm (`ALGORITHMS`); `settings` change any other field."""
    if algorithm not in ALGORITHMS:
        raise EdgeprofError(f"unknown algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
    variant = ALGORITHMS[algorithm]
    policy = replace(settings.pop("policy", HCPolicyConfig()), independent_critics=variant.independent_critics,
                     cost_critic=variant.constrained)
    return TrainConfig(algorithm=algorithm, constrained=variant.constrained,
                       learned_deployment=variant.learned_deployment,
                       learned_allocation=variant.learned_allocation, random_fill=variant.random_fill,
                       policy=policy, **settings)


# Set by `make_config`'s caller through dedicated options, or by the algorithm: not hyperparameters.
_NOT_HYPERPARAMETERS = {"algorithm", "seed", "iterations", "slots_per_iteration", "num_envs", "checkpoint_every",
                        "constrained", "learned_deployment", "learned_allocation", "random_fill",
                        "policy.independent_critics", "policy.cost_critic"}


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """`make_config` settings from NAME=VALUE strings: a `TrainConfig` field (multiplier_lr=0.1) or a network
    size `policy.NAME` (policy.user_hidden=128); values take the type of the field's default."""
    return hyperparameters.parse(TrainConfig, pairs, _NOT_HYPERPARAMETERS)


def episode_seed(seed: int, iteration: int) -> int:
    """The seed of the episodes of one iteration: independent streams for every (seed, iteration)."""
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0])


class UserDrivenLRU(LeastRecentlyUsed):
    """`optimize.heuristics.LeastRecentlyUsed` deployment fed by the users' own choices (Heuristic-MAPPO-L):
    `record` notes, at each slot, which server each request went to."""

    def record(self, system: EdgeSystem, association: np.ndarray) -> None:
        if self.last_requested is None or system.t == 0:
            shape = (system.num_envs, system.num_servers, system.table.num_services)
            self.last_requested = np.full(shape, -1, dtype=np.int64)
        envs = np.arange(system.num_envs)[:, None]
        self.last_requested[envs, association, system.slot.requests] = system.t


# ---------------------------------------------------------------------------------------------------------------
# Training

LOG_COLUMNS = (
    "iteration", "env_steps", "cost", "objective", "delay_s", "delay_constraint_s", "energy_j", "privacy_cost",
    "success_rate", *DELAY_DISTRIBUTION, "user_reward", "deployment_reward", "allocation_reward", "multiplier",
    "user_policy_loss", "user_value_loss", "user_cost_value_loss", "user_entropy", "user_approx_kl",
    "deployment_policy_loss", "deployment_value_loss", "deployment_entropy", "deployment_approx_kl",
    "allocation_policy_loss", "allocation_value_loss", "allocation_entropy", "allocation_approx_kl",
    "steps_per_s", "seconds",
)
TIMING_COLUMNS = ("steps_per_s", "seconds")  # wall-clock: the only columns a resumed run does not repeat


@dataclass
class Rollout:
    """One iteration's data. Buffers hold per-agent quantities; what is per slot and environment (the users'
    global state, the allocation observation and its logits) is kept once here, one (E, ...) entry per slot,
    and buffers refer to row t * E + e of their concatenation."""

    user: RolloutBuffer
    deployment: RolloutBuffer | None
    allocation: RolloutBuffer | None
    states: list[torch.Tensor] = field(default_factory=list)
    allocation_obs: list[AllocationObservation] = field(default_factory=list)
    allocation_logits: list[torch.Tensor] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def _slot_samples(t: int, envs: int, agents: int) -> torch.Tensor:
    """(E, agents) the index of slot t's per-environment sample (states and allocation observations are stored
    once per slot and environment, in slot-major order)."""
    return (t * envs + torch.arange(envs)).unsqueeze(-1).expand(envs, agents)


Loss = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, torch.Tensor]]]  # minibatch -> loss, info


class Trainer:
    """All the state of a run; `run_iteration` = `collect` + `update`. Sets torch's thread count."""

    def __init__(self, config: TrainConfig, scenario: Scenario, table: ServiceTable) -> None:
        interval = scenario["system.slots_per_deployment"]
        if self.learns_deployment(config) and config.slots_per_iteration <= interval:
            raise EdgeprofError(f"slots per iteration ({config.slots_per_iteration}) must exceed delta-T "
                                f"({interval}) so that a deployment decision gets its reward within an iteration")
        torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.config, self.scenario, self.table = config, scenario, table
        self.system = EdgeSystem(scenario, table, config.num_envs, seed=episode_seed(config.seed, 0))
        self.policies = HCPolicies.for_system(self.system, config.policy)
        self.policies.user.validate = self.policies.deployment.validate = config.debug
        self.layers = ("user", *(("deployment",) if self.learns_deployment(config) else ()),
                       *(("allocation",) if config.learned_allocation else ()))
        self.optimizers = {name: torch.optim.Adam(getattr(self.policies, name).parameters(), lr=config.learning_rate,
                                                  eps=config.adam_eps) for name in self.layers}
        self.normalizers = {name: ValueNormalizer() for name in ("user", "cost", "deployment", "allocation")}
        initial, limit = config.multiplier_init if config.constrained else 0.0, scenario["system.delay_constraint_s"]
        self.multiplier = (PIDLagrangeMultiplier(limit, config.multiplier_kp, config.multiplier_lr,
                                                 config.multiplier_kd, initial, config.multiplier_max)
                           if config.multiplier_kind == "pid"
                           else LagrangeMultiplier(limit, initial, config.multiplier_lr, config.multiplier_max))
        self.generator = torch.Generator().manual_seed(config.seed)  # actions and minibatch order
        self.iteration = 0
        self.rollout = self._new_rollout()

    @staticmethod
    def learns_deployment(config: TrainConfig) -> bool:
        """Whether the deployment layer trains (not LRU, not random-fill's untrained draws)."""
        return config.learned_deployment and not config.random_fill

    def components(self) -> dict[str, Any]:
        """Everything a checkpoint must hold for a resumed run to repeat an uninterrupted one."""
        return {"policies": self.policies, "multiplier": self.multiplier, "generator": self.generator,
                **{f"optimizer_{name}": optimizer for name, optimizer in self.optimizers.items()},
                **{f"normalizer_{name}": normalizer for name, normalizer in self.normalizers.items()}}

    def _new_rollout(self) -> Rollout:
        """Buffers sized for one iteration, made once and reset by every `collect`."""
        config, system = self.config, self.system
        slots, envs = config.slots_per_iteration, config.num_envs
        user_obs = user_observation(system)
        validate = config.debug
        user = RolloutBuffer(Phase("user", 1), slots, envs, system.num_users, with_costs=config.constrained,
                             validate=validate, fields={
                                 "local": Field(tuple(user_obs.local.shape[-1:])), "action": Field((2,), torch.long),
                                 "server_mask": Field((system.num_servers,), torch.bool),
                                 "point_mask": Field(tuple(user_obs.point_mask.shape[-1:]), torch.bool),
                                 "state_index": Field((), torch.long)})
        deployment = allocation = None
        if self.learns_deployment(config):
            interval = self.scenario["system.slots_per_deployment"]
            features = deployment_observation(system).features.shape[-1]
            deployment = RolloutBuffer(Phase("deployment", interval), math.ceil(slots / interval), envs,
                                       system.num_servers, validate=validate, fields={
                                           "features": Field((features,)),
                                           "choices": Field((self.table.num_services,), torch.long),
                                           "others": Field((self.table.num_services, self.table.num_services)),
                                           "storage_bytes": Field((), torch.float64)})
        if config.learned_allocation:
            allocation = RolloutBuffer(Phase("allocation", 1), slots, envs, system.num_servers, validate=validate,
                                       fields={"sample": Field((), torch.long), "server": Field((), torch.long),
                                               "active": Field((), torch.bool)})
        return Rollout(user, deployment, allocation)

    def run_iteration(self) -> dict[str, Any]:
        """One iteration; returns its log row (`LOG_COLUMNS`; None for a layer that does not learn)."""
        start = time.perf_counter()
        rollout = self.collect()
        stats = self.update(rollout)
        self.iteration += 1
        seconds = time.perf_counter() - start
        steps = self.config.slots_per_iteration * self.config.num_envs
        row = {"iteration": self.iteration, "env_steps": self.iteration * steps, **rollout.metrics, **stats,
               "delay_constraint_s": self.scenario["system.delay_constraint_s"], "steps_per_s": steps / seconds,
               "seconds": seconds}
        return {column: row.get(column) for column in LOG_COLUMNS}

    # Collection ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def collect(self) -> Rollout:
        """Fresh episodes in every environment, `slots_per_iteration` slots, stored for `update`."""
        torch.set_num_threads(1)
        system, rollout = self.system, self.rollout
        system.reset(episode_seed(self.config.seed, self.iteration))
        for buffer in (rollout.user, rollout.deployment, rollout.allocation):
            if buffer is not None:
                buffer.reset()
        rollout.states, rollout.allocation_obs, rollout.allocation_logits = [], [], []
        lru = None if self.config.learned_deployment else UserDrivenLRU()
        sums: dict[str, float] = {}
        delays = []

        def add(name: str, values: Any) -> None:
            sums[name] = sums.get(name, 0.0) + float(np.sum(values))

        for t in range(self.config.slots_per_iteration):
            if system.deployment_due:
                if lru is not None:
                    system.deploy(lru.deploy(system))
                else:
                    rewards = self._deploy(rollout)
                    if rewards is not None:
                        add("deployment_reward", rewards)
                        add("deployment_decisions", rewards.size)
            association, z = self._act(rollout, t)
            if lru is not None:
                lru.record(system, association)
            compute_share, bandwidth_share = self._allocate(rollout, t, association, z)
            outcome = system.step(association, z, compute_share, bandwidth_share)
            user_rewards = system.user_rewards(outcome)
            rollout.user.add_outcome(user_rewards, cost=outcome.delay_s if self.config.constrained else None)
            if rollout.allocation is not None:
                allocation_rewards = system.allocation_rewards(outcome, association)
                rollout.allocation.add_outcome(allocation_rewards)
                add("allocation_reward", allocation_rewards)
            for name, values in request_values(system, outcome).items():
                add(name, values)
            delays.append(outcome.delay_s)
            add("success_rate", outcome.success)
            add("user_reward", user_rewards)
        self._bootstrap(rollout)

        requests = self.config.slots_per_iteration * system.num_envs * system.num_users
        rollout.metrics = {name: sums[name] / requests for name in (
            "cost", "objective", "delay_s", "energy_j", "privacy_cost", "success_rate", "user_reward")}
        rollout.metrics.update(delay_distribution(np.stack(delays)))
        if rollout.allocation is not None:
            rollout.metrics["allocation_reward"] = sums["allocation_reward"] / (
                self.config.slots_per_iteration * system.num_envs * system.num_servers)
        if "deployment_decisions" in sums:
            rollout.metrics["deployment_reward"] = sums["deployment_reward"] / sums["deployment_decisions"]
        return rollout

    def _deploy(self, rollout: Rollout) -> np.ndarray | None:
        """Draw each server's services; the reward (E, J) of the interval that ended goes to the decision that
        started it. Returns that reward (None at the first decision). The sequences are scored in `_bootstrap`."""
        system, config = self.system, self.config
        alone = sole_host_requests(system)
        hits = system.interval_hits.astype(np.float64)
        obs, choices, deployment = draw_deployment(self.policies.deployment, system, self.generator)
        rewards = system.deploy(deployment)  # eq. 24
        mu_hit = self.scenario["cost.mu_hit"]
        if config.deployment_reward == "team":
            rewards = np.repeat(rewards.mean(axis=1, keepdims=True), rewards.shape[1], axis=1)
        elif config.deployment_reward == "difference":  # the hits of others' services would move to them
            rewards = rewards - mu_hit * (hits - alone)
        rewards = rewards + config.deployment_coverage_coef * mu_hit * alone
        buffer = rollout.deployment
        finished = system.t > 0
        if buffer is not None:
            if finished:
                buffer.add_outcome(rewards)
            buffer.add_decision(system.t, features=obs.features, choices=choices, storage_bytes=obs.storage_bytes,
                                others=others_picks(choices, self.table.num_services,
                                                    config.policy.deployment_order))
        return rewards if finished else None

    def _act(self, rollout: Rollout, t: int) -> tuple[np.ndarray, np.ndarray]:
        obs = user_observation(self.system)
        actions, log_prob = self.policies.user.act(obs, self.generator)
        rollout.user.add_decision(t, log_prob, local=obs.local, action=actions, server_mask=obs.server_mask,
                                  point_mask=obs.point_mask,
                                  state_index=_slot_samples(t, self.config.num_envs, self.system.num_users))
        rollout.states.append(obs.state)
        return actions[..., 0].numpy(), actions[..., 1].numpy()

    def _user_values(self, obs: UserObservation) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reward and cost values in return units (the cost value None without a cost critic)."""
        value, cost_value = self.policies.user.values(obs)
        return (self.normalizers["user"].denormalize(value),
                None if cost_value is None else self.normalizers["cost"].denormalize(cost_value))

    def _allocate(self, rollout: Rollout, t: int, association: np.ndarray,
                  z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if rollout.allocation is None:
            return equal_share_allocation(self.system, association)
        system, envs, servers = self.system, self.config.num_envs, self.system.num_servers
        obs = allocation_observation(system, association, z)
        logits, log_prob = self.policies.allocation.act(obs, self.generator)
        rollout.allocation.add_decision(t, log_prob, sample=_slot_samples(t, envs, servers),
                                        server=torch.arange(servers).expand(envs, servers),
                                        active=self.policies.allocation.shared_servers(obs))
        rollout.allocation_obs.append(obs)
        rollout.allocation_logits.append(logits)
        compute_share, bandwidth_share = allocation_shares(logits, obs.association, servers)
        return compute_share.numpy(), bandwidth_share.numpy()

    def _bootstrap(self, rollout: Rollout) -> None:
        """Score the rollout in one pass per layer (values, and the deployment sequences' log-probabilities),
        then close the truncated episodes: value of the state reached for users and allocation agents."""
        system, config = self.system, self.config
        steps, envs = config.slots_per_iteration, config.num_envs
        user = rollout.user
        every = UserObservation(user.decisions("local").flatten(0, 2), torch.cat(rollout.states),
                                user.decisions("server_mask").flatten(0, 2), user.decisions("point_mask").flatten(0, 2),
                                user.decisions("state_index").flatten())
        value, cost_value = self._user_values(every)
        shape = (steps, envs, system.num_users)
        user.set_scores(value=value.reshape(shape),
                        cost_value=None if cost_value is None else cost_value.reshape(shape))
        obs = user_observation(system)
        user.finish(*self._user_values(obs))
        if rollout.allocation is not None:
            values = self.policies.allocation.value(_concatenated(rollout.allocation_obs))
            rollout.allocation.set_scores(value=self.normalizers["allocation"].denormalize(values).reshape(
                steps, envs, system.num_servers))
            actions, _ = self.policies.user.act(obs, self.generator)
            next_obs = allocation_observation(system, actions[..., 0].numpy(), actions[..., 1].numpy())
            rollout.allocation.finish(self.normalizers["allocation"].denormalize(
                self.policies.allocation.value(next_obs)))
        if rollout.deployment is not None:
            buffer = rollout.deployment
            sequences = self.policies.deployment.evaluate(self._deployment_observation(buffer.decisions),
                                                           buffer.decisions("choices"), buffer.decisions("others"))
            buffer.set_scores(sequences.log_prob, self.normalizers["deployment"].denormalize(
                self._deployment_value(sequences)))
            buffer.finish()

    def _deployment_observation(self, stored: Callable[[str], torch.Tensor]) -> DeploymentObservation:
        """The deployment observations of a buffer's decisions (`stored`: one of its accessors)."""
        return DeploymentObservation(stored("features"), stored("storage_bytes"),
                                     torch.from_numpy(self.table.model_bytes.astype(np.float64)))

    # Update -------------------------------------------------------------------------------------------------

    def update(self, rollout: Rollout) -> dict[str, float]:
        """Algorithm 1 lines 14-24. Returns the losses and diagnostics by layer, including
        `{layer}_first_ratio_error`: max |ratio - 1| on the first minibatch, before any step (0 up to float
        rounding, as the data were just sampled from these parameters)."""
        config = self.config
        torch.set_num_threads(config.threads)
        rollout.user.compute_returns(config.gamma, config.gae_lambda)
        if rollout.deployment is not None:
            gamma = decision_gamma(config.gamma, self.scenario["system.slots_per_deployment"],
                                   config.deployment_discount)
            rollout.deployment.compute_returns(gamma, config.gae_lambda)
        if rollout.allocation is not None:
            rollout.allocation.compute_returns(config.gamma, config.gae_lambda)
        if config.constrained:
            self.multiplier.update(rollout.metrics["delay_s"])  # eq. 33: mean delay of every request vs tau-bar
        stats: dict[str, float] = {"multiplier": self.multiplier.value}

        self.normalizers["user"].update(rollout.user.stored("return"))
        if config.constrained:
            self.normalizers["cost"].update(rollout.user.stored("cost_return"))
        states = torch.cat(rollout.states)
        layers: list[tuple[str, RolloutBuffer, int, Loss]] = [
            ("user", rollout.user, config.minibatches, lambda batch: self._user_loss(batch, states))]
        if rollout.deployment is not None:
            self.normalizers["deployment"].update(rollout.deployment.stored("return"))
            layers.append(("deployment", rollout.deployment, config.deployment_minibatches, self._deployment_loss))
        if rollout.allocation is not None:
            self.normalizers["allocation"].update(rollout.allocation.stored("return"))
            obs = _concatenated(rollout.allocation_obs)
            logits = torch.cat(rollout.allocation_logits)
            layers.append(("allocation", rollout.allocation, config.allocation_minibatches,
                           lambda batch: self._allocation_loss(batch, obs, logits)))
        # every layer's minibatch orders are drawn first, in the order the layers are listed, so that updating
        # the layers side by side draws what updating them one after the other does
        jobs = [(*layer, self._minibatch_orders(layer[0], layer[1])) for layer in layers]
        workers = min(config.threads, len(jobs))
        threads = max(config.threads // workers, 1)
        torch.set_num_threads(threads)
        if workers == 1:
            results = [self._optimise(*job) for job in jobs]
        else:  # the layers share nothing they write; torch releases the GIL in its operations. Each worker sets its
            # own thread count (MKL's is per thread: a new thread would use every core and round differently)
            with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(threads,)) as pool:
                results = list(pool.map(lambda job: self._optimise(*job), jobs))
        for result in results:
            stats.update(result)
        return stats

    def _minibatch_orders(self, layer: str, buffer: RolloutBuffer) -> list[torch.Tensor]:
        """One shuffled order per epoch of the units `_optimise` draws minibatches of (whole slots, except for
        deployment's sequences), from the trainer's generator."""
        units = buffer.num_steps * buffer.num_envs * (1 if layer != "deployment" else buffer.num_agents)
        return [torch.randperm(units, generator=self.generator) for _ in range(self.config.epochs)]

    def _optimise(self, layer: str, buffer: RolloutBuffer, minibatches: int, loss: Loss,
                  orders: list[torch.Tensor]) -> dict[str, float]:
        """`epochs` passes over minibatches in `orders` (of whole slots, except for deployment's sequences); the
        diagnostics averaged over minibatches."""
        module, optimizer, config = getattr(self.policies, layer), self.optimizers[layer], self.config
        whole_rows = layer != "deployment"
        totals: dict[str, float] = {}
        steps = 0
        first_ratio_error = 0.0
        for order in orders:
            for batch in buffer.minibatches(min(minibatches, len(order)), whole_rows=whole_rows, order=order):
                total, info = loss(batch)
                if steps == 0:
                    first_ratio_error = float(info["ratio_error"])
                optimizer.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
                optimizer.step()
                for name, value in info.items():
                    totals[name] = totals.get(name, 0.0) + float(value.detach())
                steps += 1
        stats = {f"{layer}_{name}": value / steps for name, value in totals.items() if name != "ratio_error"}
        stats[f"{layer}_first_ratio_error"] = first_ratio_error
        return stats

    def _user_loss(self, batch: dict[str, torch.Tensor], states: torch.Tensor
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """PPO-Lagrangian (eq. 38) with the reward and cost critics (PPO on the reward alone without a cost
        critic: lambda is 0 there). The critics project the global states of the minibatch's slots only."""
        config, policy = self.config, self.policies.user
        slots, index = torch.unique(batch["state_index"], return_inverse=True)
        obs = UserObservation(batch["local"], states[slots], batch["server_mask"], batch["point_mask"], index)
        log_prob, entropy = policy.evaluate(obs, batch["action"])
        value, cost_value = policy.values(obs)
        advantages = normalize_advantages(batch["advantage"])
        reward_loss = value_loss(value, self.normalizers["user"].normalize(batch["return"]))
        critics_loss, info = reward_loss, {}
        if cost_value is not None:
            advantages = lagrangian_advantages(advantages, normalize_advantages(batch["cost_advantage"]),
                                               self.multiplier.value, rescale=True)
            cost_loss = value_loss(cost_value, self.normalizers["cost"].normalize(batch["cost_return"]))
            critics_loss = reward_loss + cost_loss
            info["cost_value_loss"] = cost_loss
        surrogate = ppo_policy_loss(log_prob, batch["log_prob"], advantages, config.clip_coef)
        total = surrogate.loss - config.user_entropy_coef * entropy.mean() + config.value_coef * critics_loss
        return total, {"policy_loss": surrogate.loss, "value_loss": reward_loss, **info,
                       "entropy": entropy.mean(), "approx_kl": surrogate.approx_kl,
                       "ratio_error": _ratio_error(log_prob, batch["log_prob"])}

    def _deployment_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """PPO on whole sequences (eq. 30-31) with the critic of `_deployment_value`."""
        config = self.config
        result = self.policies.deployment.evaluate(self._deployment_observation(batch.__getitem__), batch["choices"],
                                                   batch["others"])
        surrogate = ppo_policy_loss(result.log_prob, batch["log_prob"], normalize_advantages(batch["advantage"]),
                                    config.clip_coef)
        critic_loss = value_loss(self._deployment_value(result),
                                 self.normalizers["deployment"].normalize(batch["return"]))
        entropy = (result.entropy / result.lengths.clamp(min=1)).mean()  # per pick
        total = surrogate.loss - self.deployment_entropy_coef() * entropy + config.value_coef * critic_loss
        return total, {"policy_loss": surrogate.loss, "value_loss": critic_loss, "entropy": entropy,
                       "approx_kl": surrogate.approx_kl,
                       "ratio_error": _ratio_error(result.log_prob, batch["log_prob"])}

    def deployment_entropy_coef(self) -> float:
        """The deployment entropy coefficient of this iteration: from `deployment_entropy_coef` linearly to
        `deployment_entropy_final_coef` over `deployment_entropy_decay_iterations`."""
        config = self.config
        progress = min(self.iteration / config.deployment_entropy_decay_iterations, 1.0) if (
            config.deployment_entropy_decay_iterations) else 0.0
        return config.deployment_entropy_coef + progress * (config.deployment_entropy_final_coef
                                                            - config.deployment_entropy_coef)

    def _deployment_value(self, sequence: SequenceResult) -> torch.Tensor:
        """The deployment critic's value of a decision: V(h_0) (`initial`) or eq. 29's mean step value."""
        return sequence.value if self.config.deployment_baseline == "mean_step" else sequence.initial_value

    def _allocation_loss(self, batch: dict[str, torch.Tensor], obs: AllocationObservation, logits: torch.Tensor
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """PPO per server: each sample's slot and environment is evaluated whole, then its server's terms kept
        (minibatches hold whole slots, so each slot is evaluated once)."""
        config, policy = self.config, self.policies.allocation
        samples, rows = torch.unique(batch["sample"], return_inverse=True)
        whole = AllocationObservation(obs.users[samples], obs.servers[samples], obs.association[samples])
        log_probs, entropies = policy.evaluate(whole, logits[samples])  # (U, J)
        server = batch["server"]
        log_prob, entropy = log_probs[rows, server], entropies[rows, server]
        value = policy.value(whole)[rows, server]
        critic_loss = value_loss(value, self.normalizers["allocation"].normalize(batch["return"]))
        active = batch["active"]
        zero = critic_loss.new_zeros(())
        surrogate_loss, approx_kl, mean_entropy, ratio_error = zero, zero, zero, zero
        if bool(active.any()):
            surrogate = ppo_policy_loss(log_prob[active], batch["log_prob"][active],
                                        normalize_advantages(batch["advantage"][active]), config.clip_coef)
            surrogate_loss, approx_kl = surrogate.loss, surrogate.approx_kl
            mean_entropy = entropy[active].mean()
            ratio_error = _ratio_error(log_prob[active], batch["log_prob"][active])
        total = surrogate_loss - config.allocation_entropy_coef * mean_entropy + config.value_coef * critic_loss
        return total, {"policy_loss": surrogate_loss, "value_loss": critic_loss, "entropy": mean_entropy,
                       "approx_kl": approx_kl, "ratio_error": ratio_error}


def sole_host_requests(system: EdgeSystem) -> np.ndarray:
    """(E, J): requests of the interval so far for the services that only this server hosts (they would have
    failed without it)."""
    hosts = system.deployment  # (E, I, J)
    alone = hosts & (hosts.sum(axis=-1, keepdims=True) == 1)
    return np.einsum("eij,ei->ej", alone.astype(np.float64), system.interval_requests)


def _concatenated(observations: list[AllocationObservation]) -> AllocationObservation:
    """One allocation observation (S E, ...) from the slots' (E, ...) ones."""
    return AllocationObservation(*(torch.cat([getattr(obs, f.name) for obs in observations])
                                   for f in fields(AllocationObservation)))


def _ratio_error(log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> torch.Tensor:
    return (log_prob.detach() - old_log_prob).exp().sub(1.0).abs().max()


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


LAYERS = ("deployment", "user", "allocation")


class TrainedPolicy:
    """A trained run as a simulator `Policy` (`sim.rollout`): every learned layer acts greedily (the most probable
    services, server and point; the mean allocation logits), except the layers in `draw`, which draw their actions
    from `generator` as in training; heuristic layers act as in training, and a random-fill run's untrained
    deployment always draws."""

    def __init__(self, config: TrainConfig, policies: HCPolicies, generator: torch.Generator | None = None,
                 draw: Collection[str] = ()) -> None:
        unknown = sorted(set(draw) - set(LAYERS))
        if unknown:
            raise EdgeprofError(f"unknown layer(s) {', '.join(unknown)}: use {', '.join(LAYERS)}")
        draw = {*draw, *(("deployment",) if config.random_fill else ())}
        if draw and generator is None:
            raise ValueError("drawing actions needs a generator")
        self.name, self.config, self.policies = config.algorithm, config, policies
        self.generator, self.draw = generator, frozenset(draw)
        self.lru = None if config.learned_deployment else UserDrivenLRU()

    def drawing(self, seed: int, layers: Collection[str] = LAYERS) -> TrainedPolicy:
        """The same policies with `layers` drawing their actions, reproducibly from `seed`."""
        return TrainedPolicy(self.config, self.policies, torch.Generator().manual_seed(seed), layers)

    def _greedy(self, layer: str) -> bool:
        return layer not in self.draw

    @classmethod
    def load(cls, rundir: str | Path, system: EdgeSystem) -> TrainedPolicy:
        """The latest checkpoint of `rundir`, sized for `system` (the run's scenario)."""
        run = load_run(rundir)
        policies = HCPolicies.for_system(system, run.config.policy)
        try:
            policies.load_state_dict(component_state(run.paths.checkpoint, "policies"))
        except RuntimeError as error:
            raise EdgeprofError(f"the checkpoint of {rundir} does not fit this system: {error}") from None
        generator = torch.Generator().manual_seed(0) if run.config.random_fill else None
        return cls(run.config, policies.eval(), generator)

    @torch.no_grad()
    def deploy(self, system: EdgeSystem) -> np.ndarray:
        if self.lru is not None:
            return self.lru.deploy(system)
        return draw_deployment(self.policies.deployment, system, self.generator, self._greedy("deployment"))[2]

    @torch.no_grad()
    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        actions, _ = self.policies.user.act(user_observation(system), self.generator, self._greedy("user"))
        association, z = actions[..., 0].numpy(), actions[..., 1].numpy()
        if self.lru is not None:
            self.lru.record(system, association)
        return association, z

    @torch.no_grad()
    def allocate(self, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.config.learned_allocation:
            return equal_share_allocation(system, association)
        obs = allocation_observation(system, association, z)
        logits, _ = self.policies.allocation.act(obs, self.generator, self._greedy("allocation"))
        compute_share, bandwidth_share = allocation_shares(logits, obs.association, system.num_servers)
        return compute_share.numpy(), bandwidth_share.numpy()


def policy_maker(run: Run, table: ServiceTable, draw: tuple[str, ...]) -> Callable[[EdgeSystem, int], TrainedPolicy]:
    """The run's policies for `sim.evaluation.run_episodes`: loaded once, sized by the first episode's system;
    the layers in `draw` (and random-fill's deployment, always) draw their actions from each episode's seed."""
    loaded: list[TrainedPolicy] = []

    def make(system: EdgeSystem, seed: int) -> TrainedPolicy:
        if not loaded:
            torch.set_num_threads(run.config.threads)
            loaded.append(TrainedPolicy.load(run.path, system))
        return loaded[0].drawing(seed, draw) if draw or run.config.random_fill else loaded[0]

    return make


def config_from_record(settings: dict[str, Any]) -> TrainConfig:
    """A `TrainConfig` from a run's `config.json`."""
    policy = HCPolicyConfig(**settings.pop("policy"))
    return TrainConfig(**settings, policy=policy)


def summary(row: dict[str, Any]) -> str:
    """One line about a log row (the progress bar's and the last line's)."""
    return (f"cost {row['cost']:.4g}, delay {row['delay_s']:.4g} s (tau-bar {row['delay_constraint_s']:g} s), "
            f"energy {row['energy_j']:.4g} J, privacy {row['privacy_cost']:.4g}, success rate "
            f"{row['success_rate']:.3f}, lambda {row['multiplier']:.4g}")


PANELS = (Panel("objective", "(a) objective: cost + failure penalty"),
          Panel("delay_s", "(b) delay (s, log scale)", log_scale=True, limit_column="delay_constraint_s",
                limit_label="tau-bar (s)"),
          Panel("cost", "(c) cost  mu1 C_priv + mu2 e"), Panel("energy_j", "(d) energy (J)"),
          Panel("privacy_cost", "(e) privacy cost"), Panel("success_rate", "(f) success rate"),
          Panel("multiplier", "(g) lambda"), Panel("user_entropy", "(h) user entropy"))


for _name, _variant in ALGORITHMS.items():
    register_trainer(TrainerInfo(
        name=_name, system="dpa", description=_variant.description,
        make_config=functools.partial(make_config, _name), config_from_record=config_from_record,
        hyperparameters=parse_hyperparameters, make_trainer=Trainer, log_columns=LOG_COLUMNS,
        timing_columns=TIMING_COLUMNS, make_policy=policy_maker, panels=PANELS, summary=summary, layers=LAYERS))
