"""Seeding, atomic checkpoints, and a resumed toy training run equal bit for bit to an uninterrupted one."""

import random

import numpy as np
import pytest
import torch

from edgeprof.errors import EdgeprofError
from edgeprof.rl import checkpoint as checkpoint_module
from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.checkpoint import load_checkpoint, save_checkpoint
from edgeprof.rl.distributions import MaskedCategorical
from edgeprof.rl.lagrange import LagrangeMultiplier, lagrangian_advantages
from edgeprof.rl.losses import normalize_advantages, ppo_policy_loss, value_loss
from edgeprof.rl.normalizers import ValueNormalizer
from edgeprof.rl.seeding import rng_state, seed_everything, set_rng_state


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_one_seed_seeds_every_global_generator():
    seed_everything(11)
    first = _draws()
    seed_everything(11)
    assert _draws() == first
    seed_everything(12)
    assert _draws() != first
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_rng_state_round_trip():
    seed_everything(3)
    state = rng_state()
    first = _draws()
    _draws()
    set_rng_state(state)
    assert _draws() == first


ENVS, AGENTS, OBS, ACTIONS, STEPS = 4, 2, 3, 4, 6


class ToyTrainer:
    """A tiny constrained PPO on a masked contextual bandit, using every shared piece; all its state is saved."""

    def __init__(self, seed: int) -> None:
        seed_everything(seed)
        self.env_rng = np.random.default_rng(seed + 1)
        self.shuffle = torch.Generator().manual_seed(seed + 2)
        self.actor = torch.nn.Linear(OBS, ACTIONS)
        self.critic = torch.nn.Linear(OBS, 2)  # reward and cost values, in normalised units
        self.optimizer = torch.optim.Adam([*self.actor.parameters(), *self.critic.parameters()], lr=0.05)
        self.value_norm, self.cost_norm = ValueNormalizer(), ValueNormalizer()
        self.multiplier = LagrangeMultiplier(limit=1.0, init=0.01, lr=0.05)
        self.iteration = 0
        self.buffer = RolloutBuffer(Phase("user", 1), STEPS, ENVS, AGENTS, with_costs=True, fields={
            "obs": Field((OBS,)), "action": Field((), torch.long), "mask": Field((ACTIONS,), torch.bool)})

    def components(self) -> dict:
        return {"actor": self.actor, "critic": self.critic, "optimizer": self.optimizer,
                "value_norm": self.value_norm, "cost_norm": self.cost_norm, "multiplier": self.multiplier,
                "env_rng": self.env_rng, "shuffle": self.shuffle}

    def _values(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.critic(obs)
        return self.value_norm.denormalize(out[..., 0]), self.cost_norm.denormalize(out[..., 1])

    def train_iteration(self) -> None:
        self.buffer.reset()
        obs = torch.as_tensor(self.env_rng.normal(size=(ENVS, AGENTS, OBS)), dtype=torch.float32)
        for slot in range(STEPS):
            mask = torch.as_tensor(self.env_rng.random((ENVS, AGENTS, ACTIONS)) < 0.7)
            mask[..., 0] = True
            with torch.no_grad():
                dist = MaskedCategorical(self.actor(obs), mask)
                action = dist.sample()  # the global torch generator
                value, cost_value = self._values(obs)
            self.buffer.add_decision(slot, dist.log_prob(action), value, cost_value, obs=obs, action=action,
                                     mask=mask)
            reward = obs.sum(-1) * (action.float() - 1.5) + random.gauss(0.0, 0.1)  # python's generator too
            self.buffer.add_outcome(reward, cost=action.float() / 2)
            obs = torch.as_tensor(self.env_rng.normal(size=(ENVS, AGENTS, OBS)), dtype=torch.float32)
        with torch.no_grad():
            last_value, last_cost_value = self._values(obs)
        self.buffer.finish(last_value, last_cost_value)
        self.buffer.compute_returns(gamma=0.9, lam=0.95)
        self.multiplier.update(float(self.buffer.stored("cost").mean()))
        self.value_norm.update(self.buffer.stored("return"))
        self.cost_norm.update(self.buffer.stored("cost_return"))
        for _ in range(2):
            for batch in self.buffer.minibatches(3, self.shuffle):
                dist = MaskedCategorical(self.actor(batch["obs"]), batch["mask"])
                advantages = lagrangian_advantages(normalize_advantages(batch["advantage"]),
                                                   normalize_advantages(batch["cost_advantage"]),
                                                   self.multiplier.value, rescale=True)
                policy = ppo_policy_loss(dist.log_prob(batch["action"]), batch["log_prob"], advantages, 0.2)
                predicted = self.critic(batch["obs"])
                loss = (policy.loss - 0.01 * dist.entropy().mean()
                        + value_loss(predicted[:, 0], self.value_norm.normalize(batch["return"]))
                        + value_loss(predicted[:, 1], self.cost_norm.normalize(batch["cost_return"])))
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*self.actor.parameters(), *self.critic.parameters()], 0.5)
                self.optimizer.step()
        self.iteration += 1

    def save(self, path) -> None:
        save_checkpoint(path, self.iteration, self.components(), extra={"note": "toy"})

    def load(self, path) -> None:
        self.iteration = load_checkpoint(path, self.components()).iteration

    def fingerprint(self) -> list[torch.Tensor]:
        return [*self.actor.state_dict().values(), *self.critic.state_dict().values(),
                torch.tensor(self.multiplier.value, dtype=torch.float64), self.value_norm.mean,
                self.cost_norm.sum_sq_dev]


def test_resume_after_a_kill_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    total, killed_after = 6, 3
    uninterrupted = ToyTrainer(seed=5)
    for _ in range(total):
        uninterrupted.train_iteration()

    first = ToyTrainer(seed=5)
    for _ in range(killed_after):
        first.train_iteration()
    first.save(tmp_path / "run.pt")
    first.train_iteration()  # work after the checkpoint is lost with the process
    del first

    seed_everything(999)  # a new process: the global generators start elsewhere
    resumed = ToyTrainer(seed=5)
    resumed.load(tmp_path / "run.pt")
    assert resumed.iteration == killed_after
    while resumed.iteration < total:
        resumed.train_iteration()

    assert uninterrupted.multiplier.value != 0.01  # the run did move the multiplier and the parameters
    for expected, actual in zip(uninterrupted.fingerprint(), resumed.fingerprint(), strict=True):
        assert torch.equal(expected, actual)
    assert uninterrupted.optimizer.state_dict()["state"][0]["exp_avg"].equal(
        resumed.optimizer.state_dict()["state"][0]["exp_avg"])


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = ToyTrainer(seed=1)
    path = tmp_path / "run.pt"
    trainer.save(path)
    before = path.read_bytes()

    def broken_save(payload, target):
        with open(target, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", broken_save)
    trainer.iteration = 7
    with pytest.raises(EdgeprofError, match="cannot write .*run.pt: disk full"):
        trainer.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_loading_checks_what_it_loads(tmp_path):
    trainer = ToyTrainer(seed=1)
    with pytest.raises(EdgeprofError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", trainer.components())
    trainer.save(tmp_path / "run.pt")
    with pytest.raises(EdgeprofError, match="components"):
        load_checkpoint(tmp_path / "run.pt", {"actor": trainer.actor})
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EdgeprofError, match="not a readable checkpoint: it is damaged") as error:
        load_checkpoint(tmp_path / "junk.pt", trainer.components())
    assert "weights_only" not in str(error.value) and "\n" not in str(error.value)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(EdgeprofError, match="is not an"):
        load_checkpoint(tmp_path / "other.pt", trainer.components())
    result = load_checkpoint(tmp_path / "run.pt", trainer.components())
    assert result.iteration == 0 and result.extra == {"note": "toy"}
