"""DQN pieces by hand: dueling head, (double) targets under masks, TD losses, schedules, exploration, target updates,
adaptive parameter noise; and the pieces together learning a two-step task."""

import math

import pytest
import torch
from torch import nn

from edgeprof.rl.buffers import Field
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
from edgeprof.rl.replay import ReplayBuffer


def test_dueling_q_by_hand_and_its_invariants():
    value, advantages = torch.tensor([1.0, -2.0]), torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 3.0]])
    q = dueling_q(value, advantages)
    assert q.tolist() == [[0.0, 1.0, 2.0], [-3.0, -3.0, 0.0]]
    torch.testing.assert_close(q.mean(dim=-1), value)  # the advantages are centred: V is the mean Q
    torch.testing.assert_close(dueling_q(value, advantages + torch.tensor([[5.0], [-7.0]])), q)
    with pytest.raises(ValueError, match=r"value must have shape \(2,\)"):
        dueling_q(value.unsqueeze(-1), advantages)
    head = DuelingHead(4, 3)
    features = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(0))
    out = head(features)
    assert out.shape == (2, 5, 3)
    torch.testing.assert_close(out, dueling_q(head.value(features).squeeze(-1), head.advantage(features)))


def test_masked_argmax_never_picks_a_masked_action():
    q = torch.tensor([[1.0, 5.0, 5.0], [9.0, 0.0, -1.0]])
    assert masked_argmax(q).tolist() == [1, 0]  # ties go to the lowest index
    assert masked_argmax(q, torch.tensor([[True, False, True], [False, True, True]])).tolist() == [2, 1]
    with pytest.raises(ValueError, match="1 row"):
        masked_argmax(q, torch.tensor([[True, True, True], [False, False, False]]))
    with pytest.raises(ValueError, match="bool"):
        masked_argmax(q, torch.ones(2, 3))


REWARD, GAMMA = torch.tensor([1.0, 2.0, 3.0]), 0.5
TERMINATED = torch.tensor([False, True, False])
NEXT_TARGET = torch.tensor([[1.0, 5.0, 2.0], [9.0, 9.0, 9.0], [4.0, 0.0, 7.0]])
NEXT_ONLINE = torch.tensor([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])


def test_dqn_and_double_dqn_targets_by_hand():
    # DQN: the target's max, 5 and 7; the terminated row keeps its reward only
    assert q_target(REWARD, NEXT_TARGET, TERMINATED, GAMMA).tolist() == [1 + 2.5, 2.0, 3 + 3.5]
    # double DQN: the online argmax (2 and 0), valued by the target network (2 and 4)
    assert q_target(REWARD, NEXT_TARGET, TERMINATED, GAMMA, next_q_online=NEXT_ONLINE).tolist() == [2.0, 2.0, 5.0]


def test_masked_targets_value_only_allowed_next_actions():
    mask = torch.tensor([[True, False, False], [False, False, False], [False, True, True]])  # terminated row: none
    assert q_target(REWARD, NEXT_TARGET, TERMINATED, GAMMA, next_mask=mask).tolist() == [1.5, 2.0, 6.5]
    # double: online values 0, 0 for actions 1, 2 (tie: action 1), whose target value is 0
    assert q_target(REWARD, NEXT_TARGET, TERMINATED, GAMMA, NEXT_ONLINE, mask).tolist() == [1.5, 2.0, 3.0]
    mask[0] = False
    with pytest.raises(ValueError, match="every action masked"):
        q_target(REWARD, NEXT_TARGET, TERMINATED, GAMMA, next_mask=mask)


def test_targets_carry_no_gradient_and_refuse_bad_inputs():
    online = NEXT_ONLINE.clone().requires_grad_()
    assert not q_target(REWARD, NEXT_TARGET.clone().requires_grad_(), TERMINATED, GAMMA, online).requires_grad
    with pytest.raises(ValueError, match="bool"):
        q_target(REWARD, NEXT_TARGET, TERMINATED.float(), GAMMA)
    with pytest.raises(ValueError, match=r"next_q_target must have shape \(3, 1, 3\), got \(3, 3\)"):
        q_target(REWARD.unsqueeze(-1), NEXT_TARGET, TERMINATED, GAMMA)
    with pytest.raises(ValueError, match="no broadcasting"):
        q_target(REWARD, NEXT_TARGET, TERMINATED[:2], GAMMA)
    with pytest.raises(ValueError, match="gamma"):
        q_target(REWARD, NEXT_TARGET, TERMINATED, 1.5)


def test_td_losses_by_hand():
    q, target = torch.tensor([0.0, 3.0], requires_grad=True), torch.tensor([0.5, 0.0], requires_grad=True)
    assert td_loss(q, target).item() == pytest.approx((0.5 * 0.25 + (3 - 0.5)) / 2)  # quadratic, then linear
    assert td_loss(q, target, "mse").item() == pytest.approx(0.5 * (0.25 + 9) / 2)
    assert td_loss(q, target, weight=torch.tensor([2.0, 0.0])).item() == pytest.approx(2 * 0.125 / 2)
    td_loss(q, target).backward()
    assert target.grad is None and q.grad.tolist() == [-0.25, 0.5]  # the target is held fixed
    with pytest.raises(ValueError, match="'huber' or 'mse'"):
        td_loss(q, target, "l1")
    with pytest.raises(ValueError, match="no broadcasting"):
        td_loss(q.unsqueeze(-1), target)


def test_schedules():
    foci = ExponentialSchedule(1.0, 0.99)
    assert [foci(0), foci(1)] == [1.0, 0.99] and foci(100) == pytest.approx(0.99 ** 100)
    assert ExponentialSchedule(1.0, 0.99, end=0.05)(1000) == 0.05
    linear = LinearSchedule(1.0, 0.1, 10)
    assert linear(0) == 1.0 and linear(5) == pytest.approx(0.55) and linear(10) == linear(50) == pytest.approx(0.1)
    assert LinearSchedule(0.4, 1.0, 4)(2) == pytest.approx(0.7)  # rising, as prioritised replay's beta
    for bad in (lambda: ExponentialSchedule(1.0, 1.5), lambda: ExponentialSchedule(0.1, 0.9, end=0.5),
                lambda: LinearSchedule(1.0, 0.0, 0), lambda: linear(-1)):
        with pytest.raises(ValueError):
            bad()


def test_epsilon_greedy_explores_only_allowed_actions_and_draws_the_same_stream():
    q = torch.tensor([0.0, 1.0, 2.0, 3.0]).expand(10_000, -1)
    mask = torch.tensor([True, True, False, True]).expand(10_000, -1)
    assert epsilon_greedy(q, 0.0, torch.Generator().manual_seed(0), mask).unique().tolist() == [3]
    explored = epsilon_greedy(q, 1.0, torch.Generator().manual_seed(0), mask)
    counts = torch.bincount(explored, minlength=4)
    assert counts[2] == 0 and (counts[[0, 1, 3]] - 10_000 / 3).abs().max() < 4 * math.sqrt(10_000 * 2 / 9)
    some = epsilon_greedy(q, 0.4, torch.Generator().manual_seed(0), mask)
    assert (some != 3).float().mean().item() == pytest.approx(0.4 * 2 / 3, abs=0.02)
    assert torch.equal(some, epsilon_greedy(q, 0.4, torch.Generator().manual_seed(0), mask))
    first, second = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    epsilon_greedy(q, 0.0, first), epsilon_greedy(q, 1.0, second)
    assert torch.equal(first.get_state(), second.get_state())  # the schedule does not shift later draws
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(q, 1.5, first)


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU(), nn.Linear(4, 2), nn.BatchNorm1d(2))


def test_target_updates_hard_and_soft():
    torch.manual_seed(0)
    online, target = _net(), _net()
    online[4].running_mean.fill_(3.0)
    before = {name: tensor.clone() for name, tensor in target.state_dict().items()}
    update_target(target, online, tau=0.25)
    torch.testing.assert_close(target[0].weight, 0.75 * before["0.weight"] + 0.25 * online[0].weight)
    assert target[4].running_mean.tolist() == [3.0, 3.0]  # statistics are copied, not averaged
    update_target(target, online)
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), online.state_dict().values(),
                                                   strict=True))
    with pytest.raises(ValueError, match="architecture"):
        update_target(nn.Linear(3, 5), nn.Linear(3, 4))
    with pytest.raises(ValueError, match="tau"):
        update_target(target, online, tau=0.0)


def test_policy_distance_and_threshold_by_hand():
    q = torch.tensor([[0.0, math.log(3.0)]])  # softmax 1/4, 3/4 against 1/2, 1/2
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert q_policy_kl(q, torch.zeros(1, 2)) == pytest.approx(expected)
    assert q_policy_kl(q, q) == 0.0
    masked = torch.tensor([[0.0, math.log(3.0), 50.0]])
    assert q_policy_kl(masked, torch.tensor([[0.0, 0.0, -50.0]]), torch.tensor([[True, True, False]])) == \
        pytest.approx(expected)
    assert noise_threshold(0.0, 4) == 0.0
    assert noise_threshold(0.1, 4) == pytest.approx(-math.log(0.925))
    with pytest.raises(ValueError):
        noise_threshold(1.0, 4)


def test_parameter_noise_perturbs_weights_but_not_norms_and_adapts():
    torch.manual_seed(0)
    online, perturbed = _net(), _net()
    assert perturbable_parameters(online) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    noise = AdaptiveParameterNoise(seed=0, initial_std=0.5)
    noise.perturb(online, into=perturbed)
    for name, parameter in online.named_parameters():
        changed = not torch.equal(parameter, dict(perturbed.named_parameters())[name])
        assert changed == (name in ("0.weight", "0.bias", "3.weight", "3.bias")), name
    big, big_perturbed = nn.Linear(100, 100), nn.Linear(100, 100)
    AdaptiveParameterNoise(seed=1, initial_std=0.5).perturb(big, into=big_perturbed)
    assert (big_perturbed.weight - big.weight).std().item() == pytest.approx(0.5, rel=0.02)
    again = _net()
    AdaptiveParameterNoise(seed=0, initial_std=0.5).perturb(online, into=again)
    assert torch.equal(again[0].weight, perturbed[0].weight)  # same seed, same perturbation
    assert noise.adapt(distance=0.01, threshold=0.02) == pytest.approx(0.5 * 1.01)
    assert noise.adapt(distance=0.03, threshold=0.02) == pytest.approx(0.5)
    restored = AdaptiveParameterNoise(seed=7)
    restored.load_state_dict(noise.state_dict())
    first, second = _net(), _net()
    noise.perturb(online, into=first), restored.perturb(online, into=second)
    assert restored.std == noise.std and torch.equal(first[0].weight, second[0].weight)


def test_the_pieces_learn_a_two_step_task():
    """State 0: action a moves to state 1 + a with reward 0; states 1, 2: action 0 or 1 pays (0.2, 1.0) or (0.5,
    0.0) and ends. Q*(0) = gamma x (1.0, 0.5). Action 1 is masked in state 2."""
    torch.manual_seed(0)
    gamma, generator = 0.9, torch.Generator().manual_seed(0)
    payoff = torch.tensor([[0.0, 0.0], [0.2, 1.0], [0.5, 0.0]])
    masks = torch.tensor([[True, True], [True, True], [True, False]])
    online = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), DuelingHead(16, 2))
    target = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), DuelingHead(16, 2))
    update_target(target, online)
    optimizer = torch.optim.Adam(online.parameters(), lr=1e-2)
    replay = ReplayBuffer(500, {"state": Field((), torch.long), "action": Field((), torch.long),
                                "reward": Field(()), "next_state": Field((), torch.long),
                                "terminated": Field((), torch.bool)}, seed=0)
    epsilon = ExponentialSchedule(1.0, 0.98, end=0.05)
    one_hot = torch.eye(3)
    for episode in range(150):
        state = torch.tensor(0)
        while True:
            with torch.no_grad():
                action = epsilon_greedy(online(one_hot[state]), epsilon(episode), generator, masks[state])
            ends = bool(state > 0)
            next_state = torch.tensor(0) if ends else 1 + action
            replay.add(state=state, action=action, reward=payoff[state, action], next_state=next_state,
                       terminated=torch.tensor(ends))
            sample = replay.sample(32).data
            with torch.no_grad():
                next_obs = one_hot[sample["next_state"]]
                targets = q_target(sample["reward"], target(next_obs), sample["terminated"], gamma, online(next_obs),
                                   masks[sample["next_state"]])
            taken = online(one_hot[sample["state"]]).gather(-1, sample["action"].unsqueeze(-1)).squeeze(-1)
            optimizer.zero_grad()
            td_loss(taken, targets, "mse").backward()
            optimizer.step()
            update_target(target, online, tau=0.05)
            if ends:
                break
            state = next_state
    with torch.no_grad():
        q = online(one_hot)
    torch.testing.assert_close(q[0], gamma * torch.tensor([1.0, 0.5]), atol=0.05, rtol=0.0)
    torch.testing.assert_close(q[1], torch.tensor([0.2, 1.0]), atol=0.05, rtol=0.0)
    assert q[2, 0].item() == pytest.approx(0.5, abs=0.05)
