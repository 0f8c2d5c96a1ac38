"""Mixed critics: weights checked, combinations by hand, one critic is a plain critic bit for bit, every critic
trains on its own with its own learning rate, and a checkpoint continues exactly."""

import copy
import math

import pytest
import torch
from torch import nn

from edgeprof.rl.checkpoint import load_checkpoint, save_checkpoint
from edgeprof.rl.critics import MixedCritics
from edgeprof.rl.losses import value_loss


def _critic(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))


def _data(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    return torch.randn(16, 4, generator=generator), torch.randn(16, generator=generator)


def test_weights_must_be_a_distribution():
    critics = [_critic(0), _critic(1)]
    for weights, message in (([0.5, 0.4], r"sum to 1, got \[0.5, 0.4\] \(sum 0.9\)"),
                             ([1.5, -0.5], "non-negative"), ([math.nan, 1.0], "finite"),
                             ([1.0], "one weight per critic: 2 critics, 1 weights")):
        with pytest.raises(ValueError, match=message):
            MixedCritics(critics, [1e-3, 1e-3], weights)
    MixedCritics([_critic(k) for k in range(5)], [1e-3] * 5, [0.2] * 5)  # M2APPO: s_n = 0.2
    with pytest.raises(ValueError, match="'min' takes none"):
        MixedCritics(critics, [1e-3, 1e-3], [0.5, 0.5], combination="min")
    with pytest.raises(ValueError, match="'weighted' or 'min'"):
        MixedCritics(critics, [1e-3, 1e-3], combination="max")
    with pytest.raises(ValueError, match="one learning rate per critic"):
        MixedCritics(critics, [1e-3])
    with pytest.raises(ValueError, match="at least one critic"):
        MixedCritics([], [])


def test_combinations_by_hand():
    values = torch.tensor([[1.0, 2.0, -1.0], [3.0, 6.0, -5.0]])
    critics = [_critic(0), _critic(1)]
    assert MixedCritics(critics, [1e-3] * 2, [0.25, 0.75]).combine(values).tolist() == [2.5, 5.0, -4.0]
    assert MixedCritics(critics, [1e-3] * 2).combine(values).tolist() == values.mean(dim=0).tolist()
    assert MixedCritics(critics, [1e-3] * 2, combination="min").combine(values).tolist() == [1.0, 2.0, -5.0]
    sequences = torch.randn(5, 2, 7, 3, generator=torch.Generator().manual_seed(0))  # (critics, T, B, agents)
    mean = MixedCritics([_critic(k) for k in range(5)], [1e-3] * 5).combine(sequences)
    torch.testing.assert_close(mean, sequences.mean(dim=0))
    with pytest.raises(ValueError, match="first axis of 2 critics"):
        MixedCritics(critics, [1e-3] * 2).combine(values[:1])


def test_one_critic_is_a_plain_critic_bit_for_bit():
    plain = _critic(0)
    mixed = MixedCritics([copy.deepcopy(plain)], [3e-3], eps=1e-5)
    optimizer = torch.optim.Adam(plain.parameters(), lr=3e-3, eps=1e-5)
    for step in range(5):
        inputs, targets = _data(step)
        value = mixed.value(inputs)
        assert torch.equal(value, plain(inputs))
        optimizer.zero_grad()
        value_loss(plain(inputs), targets).backward()
        nn.utils.clip_grad_norm_(plain.parameters(), 0.5)
        optimizer.step()
        mixed.update([value_loss(mixed.critics[0](inputs), targets)], max_grad_norm=0.5)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), mixed.critics[0].parameters(), strict=True))


def test_each_critic_trains_alone_with_its_own_learning_rate():
    rates = [1e-3, 1e-2]
    alone = [_critic(0), _critic(0)]  # the same start, so only the learning rates differ
    optimizers = [torch.optim.Adam(critic.parameters(), lr=rate) for critic, rate in zip(alone, rates, strict=True)]
    mixed = MixedCritics([copy.deepcopy(critic) for critic in alone], rates)
    start = [parameter.clone() for parameter in alone[0].parameters()]
    for step in range(3):
        inputs, targets = _data(step)
        for critic, optimizer in zip(alone, optimizers, strict=True):
            optimizer.zero_grad()
            value_loss(critic(inputs), targets).backward()
            optimizer.step()
        norms = mixed.update([value_loss(critic(inputs), targets) for critic in mixed.critics])
        assert len(norms) == 2 and all(norm > 0 for norm in norms)
        if step == 0:  # Adam's first step moves every weight by about its learning rate
            for critic, rate in zip(mixed.critics, rates, strict=True):
                moved = max((p - s).abs().max().item() for p, s in zip(critic.parameters(), start, strict=True))
                assert moved == pytest.approx(rate, rel=1e-3)
    for critic, reference in zip(mixed.critics, alone, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(critic.parameters(), reference.parameters(), strict=True))
    with pytest.raises(ValueError, match="one loss per critic: 2 critics, 1 losses"):
        mixed.update([torch.tensor(0.0)])
    with pytest.raises(ValueError, match="critic loss must have shape"):
        mixed.update([torch.zeros(2), torch.zeros(2)])


def test_a_checkpoint_continues_exactly(tmp_path):
    def train(mixed: MixedCritics, steps: range) -> None:
        for step in steps:
            inputs, targets = _data(step)
            mixed.update([value_loss(critic(inputs), targets) for critic in mixed.critics])

    def make() -> MixedCritics:
        return MixedCritics([_critic(k) for k in range(3)], [1e-3, 2e-3, 5e-4], [0.5, 0.3, 0.2])

    original = make()
    train(original, range(2))
    save_checkpoint(tmp_path / "critics.pt", 2, {"critics": original})
    train(original, range(2, 4))
    resumed = MixedCritics([_critic(10 + k) for k in range(3)], [1e-3, 2e-3, 5e-4], [0.5, 0.3, 0.2])
    load_checkpoint(tmp_path / "critics.pt", {"critics": resumed})
    train(resumed, range(2, 4))
    inputs, _ = _data(9)
    assert torch.equal(resumed.value(inputs), original.value(inputs))
    with pytest.raises(ValueError, match="3 critics cannot be loaded into 2"):
        MixedCritics([_critic(0), _critic(1)], [1e-3] * 2).load_state_dict(original.state_dict())
