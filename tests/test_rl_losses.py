"""PPO losses by hand, and the broadcasting mistake of the public H-IPPO value loss refused."""

import pytest
import torch

from edgeprof.rl.losses import normalize_advantages, ppo_policy_loss, value_loss


def test_policy_loss_at_ratio_one_is_minus_the_mean_advantage():
    log_prob = torch.tensor([-1.0, -2.0, -0.5])
    result = ppo_policy_loss(log_prob, log_prob.clone(), torch.tensor([1.0, -3.0, 0.5]), clip_coef=0.2)
    assert result.loss.item() == pytest.approx(0.5)
    assert result.approx_kl.item() == 0.0 and result.clip_fraction.item() == 0.0


def test_policy_loss_clips_by_hand():
    old = torch.zeros(2)
    new = torch.log(torch.tensor([1.5, 0.5]))  # ratios 1.5 and 0.5
    result = ppo_policy_loss(new, old, torch.tensor([2.0, -1.0]), clip_coef=0.2)
    # min(1.5*2, 1.2*2) = 2.4; min(0.5*-1, 0.8*-1) = -0.8; loss = -(2.4 - 0.8)/2
    assert result.loss.item() == pytest.approx(-0.8)
    assert result.clip_fraction.item() == 1.0


def test_value_loss_refuses_broadcasting():
    with pytest.raises(ValueError, match="no broadcasting"):
        value_loss(torch.zeros(8, 1), torch.zeros(8))  # the public H-IPPO bug: (B, 1) against (B,) is (B, B)
    with pytest.raises(ValueError, match="both"):
        value_loss(torch.zeros(3), torch.zeros(3), old_predicted=torch.zeros(3))


def test_value_loss_by_hand():
    predicted, targets = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])
    assert value_loss(predicted, targets).item() == pytest.approx(0.5 * (1 + 9) / 2)
    old = torch.tensor([0.0, 0.0])  # clipped predictions 0.5 and 0.5: errors max(1, 0.25), max(9, 0.25)
    assert value_loss(predicted, targets, old, clip_coef=0.5).item() == pytest.approx(2.5)
    old = torch.tensor([2.0, 2.0])  # clipped 1.5 and 2.5: errors max(1, 2.25), max(9, 6.25)
    assert value_loss(predicted, targets, old, clip_coef=0.5).item() == pytest.approx(0.5 * (2.25 + 9) / 2)


def test_normalize_advantages():
    normalized = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert abs(normalized.mean().item()) < 1e-6 and normalized.std().item() == pytest.approx(1.0, abs=1e-6)
    assert normalize_advantages(torch.tensor([5.0])).tolist() == [0.0]
