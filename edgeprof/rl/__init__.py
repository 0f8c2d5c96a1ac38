"""Shared, tested pieces for the reinforcement-learning solvers (one readable file per algorithm builds on them).

- `buffers`: rollout storage per layer and timescale (`RolloutBuffer`, `Phase`, `Field`), flattened or in
  sequence chunks for recurrent networks (`recurrent.unroll` replays them);
- `replay`: uniform and prioritised experience replay for off-policy learners;
- `dqn`: dueling head, (double) DQN targets under masks, TD loss, epsilon schedules, target updates, adaptive
  parameter-space noise;
- `critics`: several critics, each with its own optimiser, mixed with weights or by their minimum;
- `gae`: GAE(lambda) with truncation bootstrapping (`gae`, `decision_gamma`);
- `normalizers`: running statistics for value targets and observations;
- `distributions`: masked, multi-head and auto-regressive categoricals;
- `lagrange`: the multiplier of the delay constraint (projected dual ascent, PID);
- `losses`: PPO's policy and value losses with strict shapes;
- `seeding`, `checkpoint`: one seed for everything, and resumable runs.

One file per algorithm: `hc_mappo_l` (seed 001, with its ablations; `curves` draws its training logs).

Call `torch.set_num_threads(1)` once at start-up (the caller's job): results on CPU are then reproducible bit
for bit, and these small networks run faster on a small shared machine.

Idle OpenMP threads sleep here instead of spinning (`OMP_WAIT_POLICY=PASSIVE`, unless the environment sets it;
read when torch starts, so it holds when this package is imported before torch): on a shared 2-core machine,
threads that spin while another process holds the core made a two-thread update of HC-MAPPO-L ten times slower.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.checkpoint import Checkpoint, component_state, load_checkpoint, save_checkpoint
from edgeprof.rl.critics import MixedCritics
from edgeprof.rl.distributions import (
    ChoiceMasker,
    MaskedCategorical,
    MultiHeadMaskedCategorical,
    SequenceResult,
    StepPolicy,
    StorageMasker,
    autoregressive_sequence,
    score_sequences,
    storage_masks,
)
from edgeprof.rl.dqn import (
    AdaptiveParameterNoise,
    DuelingHead,
    ExponentialSchedule,
    LinearSchedule,
    dueling_q,
    epsilon_greedy,
    masked_argmax,
    noise_threshold,
    perturbable_parameters,
    q_policy_kl,
    q_target,
    td_loss,
    update_target,
)
from edgeprof.rl.gae import decision_gamma, gae
from edgeprof.rl.lagrange import LagrangeMultiplier, PIDLagrangeMultiplier, lagrangian_advantages
from edgeprof.rl.losses import PolicyLoss, normalize_advantages, ppo_policy_loss, value_loss
from edgeprof.rl.normalizers import ObservationNormalizer, RunningMeanStd, ValueNormalizer
from edgeprof.rl.recurrent import unroll
from edgeprof.rl.replay import PrioritizedReplayBuffer, ReplayBuffer, ReplaySample
from edgeprof.rl.seeding import generator_state, rng_state, seed_everything, set_generator_state, set_rng_state

__all__ = [
    "Checkpoint", "ChoiceMasker", "Field", "LagrangeMultiplier", "MaskedCategorical", "MultiHeadMaskedCategorical",
    "ObservationNormalizer", "PIDLagrangeMultiplier", "Phase", "PolicyLoss", "RolloutBuffer", "RunningMeanStd",
    "SequenceResult", "StepPolicy", "StorageMasker", "ValueNormalizer", "autoregressive_sequence", "component_state",
    "decision_gamma",
    "gae", "generator_state", "lagrangian_advantages", "load_checkpoint", "normalize_advantages", "ppo_policy_loss",
    "rng_state", "save_checkpoint", "score_sequences", "seed_everything", "set_generator_state", "set_rng_state",
    "storage_masks", "value_loss",
    "AdaptiveParameterNoise", "DuelingHead", "ExponentialSchedule", "LinearSchedule", "MixedCritics",
    "PrioritizedReplayBuffer", "ReplayBuffer", "ReplaySample", "dueling_q", "epsilon_greedy", "masked_argmax",
    "noise_threshold", "perturbable_parameters", "q_policy_kl", "q_target", "td_loss", "unroll", "update_target",
]
