"""GAE against hand-computed values and against the definition (a sum of discounted TD errors)."""

import pytest
import torch

from edgeprof.rl.gae import decision_gamma, gae


def _three_steps(terminated=(False, False, False), truncated=(False, False, False), next_values=(1.0, 1.5, 2.0)):
    rewards = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    values = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    return gae(rewards, values, torch.tensor(next_values, dtype=torch.float64), torch.tensor(terminated),
               torch.tensor(truncated), gamma=0.5, lam=0.5)


def test_three_steps_by_hand():
    # deltas: 1 + 0.5*1 - 0.5 = 1; 2 + 0.5*1.5 - 1 = 1.75; 3 + 0.5*2 - 1.5 = 2.5 (2 is the bootstrap V(s_3))
    # A_2 = 2.5; A_1 = 1.75 + 0.25*2.5 = 2.375; A_0 = 1 + 0.25*2.375 = 1.59375
    advantages, returns = _three_steps()
    assert advantages.tolist() == [1.59375, 2.375, 2.5]
    assert returns.tolist() == [2.09375, 3.375, 4.0]


def test_termination_bootstraps_from_zero_and_cuts_the_recursion():
    # step 1 terminates: delta_1 = 2 - 1 = 1, A_1 = 1 (step 2 is a new episode); A_0 = 1 + 0.25*1
    advantages, _ = _three_steps(terminated=(False, True, False))
    assert advantages.tolist() == [1.25, 1.0, 2.5]


def test_truncation_bootstraps_from_the_final_state_and_cuts_the_recursion():
    # step 1 is truncated in a state worth 4: delta_1 = 2 + 0.5*4 - 1 = 3, A_1 = 3; A_0 = 1 + 0.25*3
    advantages, _ = _three_steps(truncated=(False, True, False), next_values=(1.0, 4.0, 2.0))
    assert advantages.tolist() == [1.75, 3.0, 2.5]


def test_matches_the_definition_on_random_data():
    generator = torch.Generator().manual_seed(0)
    steps, agents, gamma, lam = 12, 5, 0.9, 0.8
    rewards = torch.randn(steps, agents, generator=generator, dtype=torch.float64)
    values = torch.randn(steps, agents, generator=generator, dtype=torch.float64)
    next_values = torch.randn(steps, agents, generator=generator, dtype=torch.float64)
    terminated = torch.rand(steps, agents, generator=generator) < 0.1
    truncated = (torch.rand(steps, agents, generator=generator) < 0.1) & ~terminated
    advantages, returns = gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    deltas = rewards + gamma * (~terminated) * next_values - values
    expected = torch.zeros_like(rewards)
    for t in range(steps):
        for agent in range(agents):
            weight = 1.0
            for k in range(t, steps):
                expected[t, agent] += weight * deltas[k, agent]
                if terminated[k, agent] or truncated[k, agent]:
                    break
                weight *= gamma * lam
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_lambda_zero_is_the_td_error_and_lambda_one_the_monte_carlo_return():
    rewards, values = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 0.0])
    next_values, no = torch.tensor([0.0, 0.0, 10.0]), torch.zeros(3, dtype=torch.bool)
    advantages, _ = gae(rewards, values, next_values, no, no, gamma=0.5, lam=0.0)
    assert advantages.tolist() == [1.0, 1.0, 6.0]
    _, returns = gae(rewards, values, next_values, no, no, gamma=0.5, lam=1.0)
    assert returns.tolist() == [1.0 + 0.5 + 0.25 * 6.0, 1.0 + 0.5 * 6.0, 6.0]


def test_shapes_must_match_exactly():
    rewards = torch.zeros(4, 3)
    no = torch.zeros(4, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="no broadcasting"):
        gae(rewards, torch.zeros(4, 1), torch.zeros(4, 3), no, no, 0.99, 0.95)
    with pytest.raises(ValueError, match="bool"):
        gae(rewards, rewards, rewards, no.float(), no, 0.99, 0.95)
    with pytest.raises(ValueError, match="at least one step"):
        gae(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0, 3), no[:0], no[:0], 0.99, 0.95)


def test_decision_gamma():
    assert decision_gamma(0.99, 10) == pytest.approx(0.99 ** 10)
    assert decision_gamma(0.99, 10, "decision") == 0.99
    assert decision_gamma(0.99, 1) == 0.99
    with pytest.raises(ValueError):
        decision_gamma(0.99, 0)
    with pytest.raises(ValueError):
        decision_gamma(0.99, 10, "episode")
