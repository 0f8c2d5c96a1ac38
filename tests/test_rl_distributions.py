"""Masked categoricals never pick masked actions; auto-regressive sampling and training agree exactly; scoring
all steps at once (teacher forcing) gives what the step-by-step replay gives."""

import math

import pytest
import torch

from edgeprof.rl.distributions import (
    MaskedCategorical,
    MultiHeadMaskedCategorical,
    StorageMasker,
    autoregressive_sequence,
    score_sequences,
    storage_masks,
)


def test_masked_actions_have_probability_zero_and_are_never_sampled():
    logits = torch.tensor([[100.0, 0.0, 1.0, 50.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[False, True, True, False], [True, False, True, True]])
    dist = MaskedCategorical(logits, mask)
    assert dist.probs[~mask].tolist() == [0.0, 0.0, 0.0]
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([dist.sample(generator) for _ in range(20000)])
    assert bool(mask.gather(1, draws.T).all())
    first_row_share = (draws[:, 0] == 2).double().mean().item()
    assert first_row_share == pytest.approx(math.e / (1 + math.e), abs=0.01)  # softmax of (0, 1) over the valid pair
    second_row = torch.bincount(draws[:, 1], minlength=4) / len(draws)
    torch.testing.assert_close(second_row, torch.tensor([1 / 3, 0.0, 1 / 3, 1 / 3]), atol=0.01, rtol=0)


def test_log_prob_entropy_and_mode_over_valid_actions():
    logits = torch.tensor([[3.0, 0.0, 0.0, 0.0, 9.0]], requires_grad=True)
    mask = torch.tensor([[False, True, True, True, False]])
    dist = MaskedCategorical(logits, mask)
    assert dist.log_prob(torch.tensor([2])).item() == pytest.approx(-math.log(3))
    assert dist.entropy().item() == pytest.approx(math.log(3))
    assert dist.mode().item() in (1, 2, 3)
    (dist.entropy().sum() + dist.log_prob(torch.tensor([1])).sum()).backward()
    assert bool(torch.isfinite(logits.grad).all())
    assert logits.grad[0, 0].item() == 0.0 and logits.grad[0, 4].item() == 0.0


def test_masked_or_invalid_actions_and_empty_rows_raise():
    dist = MaskedCategorical(torch.zeros(2, 3), torch.tensor([[True, False, True], [True, True, True]]))
    with pytest.raises(ValueError, match="masked action"):
        dist.log_prob(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="lie in"):
        dist.log_prob(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        dist.log_prob(torch.tensor([[0], [0]]))
    with pytest.raises(ValueError, match="every action masked"):
        MaskedCategorical(torch.zeros(2, 3), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="bool"):
        MaskedCategorical(torch.zeros(1, 3), torch.ones(1, 3))
    with pytest.raises(ValueError, match="finite"):
        MaskedCategorical(torch.tensor([[float("nan"), 0.0]]), torch.tensor([[True, True]]))


def test_multi_head_sums_the_heads():
    server = MaskedCategorical(torch.zeros(4, 3), torch.tensor([[True, True, False]] * 4))
    point = MaskedCategorical(torch.zeros(4, 5), torch.tensor([[True] * 4 + [False]] * 4))
    joint = MultiHeadMaskedCategorical([server, point])
    actions = joint.sample(torch.Generator().manual_seed(3))
    assert actions.shape == (4, 2)
    assert bool((actions[:, 0] < 2).all()) and bool((actions[:, 1] < 4).all())
    torch.testing.assert_close(joint.log_prob(actions), torch.full((4,), -math.log(2) - math.log(4)))
    torch.testing.assert_close(joint.entropy(), torch.full((4,), math.log(2) + math.log(4)))
    with pytest.raises(ValueError, match="shape"):
        joint.log_prob(actions[:, :1])
    with pytest.raises(ValueError, match="same batch shape"):
        MultiHeadMaskedCategorical([server, MaskedCategorical(torch.zeros(3, 5), torch.ones(3, 5, dtype=torch.bool))])


class TinyGRUPolicy(torch.nn.Module):
    """A deployment-like policy: the observation sets the GRU state, each choice is embedded and fed back."""

    def __init__(self, obs_dim: int, num_choices: int, hidden: int = 16) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(obs_dim, hidden)
        self.embed = torch.nn.Embedding(num_choices, 8)
        self.cell = torch.nn.GRUCell(8, hidden)
        self.actor = torch.nn.Linear(hidden, num_choices)
        self.critic = torch.nn.Linear(hidden, 1)

    def initial_hidden(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(obs))

    def step(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(hidden) * 3.0, self.critic(hidden).squeeze(-1)

    def advance(self, hidden: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        return self.cell(self.embed(choice), hidden)


def _deployment_problem(batch: int = 64, choices: int = 9, seed: int = 0):
    torch.manual_seed(seed)
    policy = TinyGRUPolicy(obs_dim=5, num_choices=choices)
    generator = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, 5, generator=generator)
    sizes = torch.randint(1, 6, (batch, choices), generator=generator).double()
    capacity = torch.randint(0, 16, (batch,), generator=generator).double()
    return policy, obs, sizes, capacity


def test_sampled_sequences_respect_storage_and_never_repeat():
    policy, obs, sizes, capacity = _deployment_problem()
    with torch.no_grad():
        result = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                         generator=torch.Generator().manual_seed(1))
    assert result.choices.shape == (64, 9)
    for row in range(64):
        picked = result.choices[row][result.choices[row] >= 0]
        assert len(picked) == result.lengths[row]
        assert len(set(picked.tolist())) == len(picked)
        assert bool((result.choices[row, len(picked):] == -1).all())  # padding only after the sequence
        used = sizes[row, picked].sum()
        assert used <= capacity[row]
        left = torch.ones(9, dtype=torch.bool)
        left[picked] = False
        assert not bool((sizes[row, left] <= capacity[row] - used).any())  # it stops only when nothing fits
    assert bool((result.lengths == 0).any()) and bool((result.lengths > 1).any())


def test_ppo_ratio_on_freshly_sampled_sequences_is_exactly_one():
    policy, obs, sizes, capacity = _deployment_problem()
    with torch.no_grad():
        sampled = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                          generator=torch.Generator().manual_seed(2))
    replayed = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                       choices=sampled.choices)
    ratio = torch.exp(replayed.log_prob - sampled.log_prob)
    assert torch.equal(ratio, torch.ones(64))
    assert torch.equal(replayed.choices, sampled.choices)
    assert torch.equal(replayed.value, sampled.value) and torch.equal(replayed.entropy, sampled.entropy)
    replayed.log_prob.mean().backward()  # the training path carries gradients
    assert policy.actor.weight.grad is not None and bool(policy.actor.weight.grad.abs().sum() > 0)
    minibatch = torch.randperm(64, generator=torch.Generator().manual_seed(4))[:20]
    part = autoregressive_sequence(policy, policy.initial_hidden(obs[minibatch]),
                                   StorageMasker(sizes[minibatch], capacity[minibatch]),
                                   choices=sampled.choices[minibatch])
    torch.testing.assert_close(part.log_prob.detach(), sampled.log_prob[minibatch], rtol=0, atol=1e-5)


def test_sequence_log_prob_is_the_sum_of_step_log_probs_under_the_masks_in_force():
    policy, obs, sizes, capacity = _deployment_problem(batch=8)
    with torch.no_grad():
        result = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                         generator=torch.Generator().manual_seed(5))
        for row in range(8):  # an independent re-computation, one row and one step at a time
            hidden = policy.initial_hidden(obs[row:row + 1])
            remaining, chosen, total, values = capacity[row].item(), set(), 0.0, []
            for choice in result.choices[row][: result.lengths[row]].tolist():
                logits, value = policy.step(hidden)
                allowed = [c not in chosen and sizes[row, c].item() <= remaining for c in range(9)]
                masked = logits[0].masked_fill(~torch.tensor(allowed), float("-inf"))
                total += torch.log_softmax(masked, dim=-1)[choice].item()
                values.append(value.item())
                chosen.add(choice)
                remaining -= sizes[row, choice].item()
                hidden = policy.advance(hidden, torch.tensor([choice]))
            assert result.log_prob[row].item() == pytest.approx(total, abs=1e-5)
            if values:  # eq. 29: the mean of the step values
                assert result.value[row].item() == pytest.approx(sum(values) / len(values), abs=1e-5)
            else:
                assert result.value[row].item() == pytest.approx(policy.step(policy.initial_hidden(
                    obs[row:row + 1]))[1].item(), abs=1e-6)


def _sampled_and_broken(batch: int = 16):
    """A problem, its sampled sequences, the longest row, and that row cut short or with a repeated choice."""
    policy, obs, sizes, capacity = _deployment_problem(batch=batch)
    with torch.no_grad():
        sampled = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                          generator=torch.Generator().manual_seed(6))
    long_row = int(sampled.lengths.argmax())
    shortened = sampled.choices.clone()
    shortened[long_row, sampled.lengths[long_row] - 1] = -1
    repeated = sampled.choices.clone()
    repeated[long_row, 1] = repeated[long_row, 0]
    return (policy, obs, sizes, capacity), sampled, long_row, shortened, repeated


def test_replay_refuses_sequences_the_masks_would_not_allow():
    (policy, obs, sizes, capacity), sampled, long_row, shortened, repeated = _sampled_and_broken()
    with torch.no_grad():
        with pytest.raises(ValueError, match="ends at step"):
            autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                    choices=shortened)
        smaller = capacity.clone()
        smaller[long_row] = sizes[long_row, sampled.choices[long_row, 0]] - 1  # the first choice no longer fits
        with pytest.raises(ValueError, match="masked|continues"):
            autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, smaller),
                                    choices=sampled.choices)
        with pytest.raises(ValueError, match="masked"):
            autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                    choices=repeated)


def test_greedy_is_deterministic_and_empty_problems_work():
    policy, obs, sizes, capacity = _deployment_problem(batch=6)
    with torch.no_grad():
        first = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                        greedy=True)
        second = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                         greedy=True)
        assert torch.equal(first.choices, second.choices)
        nothing_fits = autoregressive_sequence(policy, policy.initial_hidden(obs),
                                               StorageMasker(sizes, torch.zeros(6, dtype=torch.float64)))
    assert bool((nothing_fits.choices == -1).all()) and nothing_fits.log_prob.tolist() == [0.0] * 6
    assert nothing_fits.value.shape == (6,)


def test_a_step_value_of_the_wrong_shape_raises():
    policy, obs, sizes, capacity = _deployment_problem(batch=4)

    class ColumnValues(TinyGRUPolicy):
        def step(self, hidden):
            logits, value = super().step(hidden)
            return logits, value.unsqueeze(-1)  # (B, 1): would broadcast to (B, B)

    bad = ColumnValues(5, 9)
    with pytest.raises(ValueError, match="step value"):
        autoregressive_sequence(bad, bad.initial_hidden(obs), StorageMasker(sizes, capacity))


class RecordingMasker(StorageMasker):
    """A `StorageMasker` that keeps the masks it gave at each step."""

    def __init__(self, sizes, capacity):
        super().__init__(sizes, capacity)
        self.history = []

    def allowed(self):
        self.history.append(super().allowed())
        return self.history[-1]


def test_storage_masks_are_the_maskers_masks_at_every_step():
    policy, obs, sizes, capacity = _deployment_problem()
    masker = RecordingMasker(sizes, capacity)
    with torch.no_grad():
        sampled = autoregressive_sequence(policy, policy.initial_hidden(obs), masker,
                                          generator=torch.Generator().manual_seed(7))
    masks = storage_masks(sizes, capacity, sampled.choices)
    assert masks.shape == (64, 9, 9)
    steps = len(masker.history) - 1  # the last call found nothing allowed anywhere and ended the loop
    assert torch.equal(masks[:, :steps], torch.stack(masker.history[:steps], dim=1))
    one_size = storage_masks(sizes[0], capacity, sampled.choices)  # sizes (C,) shared by every row
    assert torch.equal(one_size, storage_masks(sizes[0].expand(64, -1), capacity, sampled.choices))


def _teacher_forced_logits(policy, obs, choices):
    """Every step's logits and values of `TinyGRUPolicy` when the stored choices are fed back."""
    hidden, logits, values = policy.initial_hidden(obs), [], []
    for step in range(choices.shape[1]):
        step_logits, value = policy.step(hidden)
        logits.append(step_logits)
        values.append(value)
        hidden = policy.advance(hidden, choices[:, step].clamp(min=0))
    return torch.stack(logits, dim=1), torch.stack(values, dim=1)


def test_scoring_all_steps_at_once_equals_the_step_by_step_replay():
    policy, obs, sizes, capacity = _deployment_problem()
    with torch.no_grad():
        sampled = autoregressive_sequence(policy, policy.initial_hidden(obs), StorageMasker(sizes, capacity),
                                          generator=torch.Generator().manual_seed(8))
    logits, values = _teacher_forced_logits(policy, obs, sampled.choices)
    scored = score_sequences(logits, storage_masks(sizes, capacity, sampled.choices), sampled.choices, values)
    for name in ("log_prob", "entropy", "value", "initial_value", "step_log_probs", "step_values"):
        torch.testing.assert_close(getattr(scored, name).detach(), getattr(sampled, name), rtol=0, atol=1e-5)
    assert torch.equal(scored.lengths, sampled.lengths) and torch.equal(scored.choices, sampled.choices)
    with torch.no_grad():  # V(h_0): the value before any choice, whatever the sequence
        torch.testing.assert_close(sampled.initial_value, policy.step(policy.initial_hidden(obs))[1])
    assert bool((sampled.lengths == 0).any())  # rows with no step take V(h_0), as in the replay
    scored.log_prob.sum().backward()
    assert policy.actor.weight.grad is not None


def test_scoring_at_once_refuses_what_the_replay_refuses():
    (policy, obs, sizes, capacity), sampled, _, shortened, repeated = _sampled_and_broken()
    with torch.no_grad():
        for stored, message in ((shortened, "ends at step"), (repeated, "masked|continues")):
            logits, _ = _teacher_forced_logits(policy, obs, stored)
            with pytest.raises(ValueError, match=message):
                score_sequences(logits, storage_masks(sizes, capacity, stored), stored)
        logits, _ = _teacher_forced_logits(policy, obs, sampled.choices)
        no_room = torch.zeros_like(capacity)
        with pytest.raises(ValueError, match="continues at step 0"):
            score_sequences(logits, storage_masks(sizes, no_room, sampled.choices), sampled.choices)
