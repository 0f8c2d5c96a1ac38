"""The multiplier's trajectory by hand, its bounds, the PID variant, and the combined advantage."""

import random

import pytest
import torch

from edgeprof.rl.lagrange import LagrangeMultiplier, PIDLagrangeMultiplier, lagrangian_advantages


def test_dual_ascent_trajectory_by_hand():
    multiplier = LagrangeMultiplier(limit=3.0)  # section V-A: lambda_0 = 0.01, lr = 0.01, bounds [0, 100]
    assert multiplier.value == 0.01
    trajectory = [multiplier.update(cost) for cost in (4.0, 5.0, 1.0, 1.0, 1.0, 3.0)]
    # 0.01 + 0.01*1 = 0.02; + 0.01*2 = 0.04; - 0.02 = 0.02; - 0.02 = 0; max(0, -0.02) = 0; + 0 = 0
    assert trajectory == pytest.approx([0.02, 0.04, 0.02, 0.0, 0.0, 0.0], abs=1e-15)
    assert trajectory[-1] == 0.0


def test_upper_bound():
    multiplier = LagrangeMultiplier(limit=1.0, init=99.0, lr=0.5)
    assert multiplier.update(5.0) == 100.0  # 99 + 0.5 * 4 = 101, projected to 100
    assert multiplier.update(0.0) == 99.5


def test_bad_values_raise():
    with pytest.raises(ValueError, match="initial"):
        LagrangeMultiplier(limit=1.0, init=-0.1)
    with pytest.raises(ValueError, match="initial"):
        PIDLagrangeMultiplier(limit=1.0, init=101.0)
    with pytest.raises(ValueError, match="finite"):
        LagrangeMultiplier(limit=1.0).update(float("nan"))


def test_pid_by_hand():
    pid = PIDLagrangeMultiplier(limit=1.0, kp=1.0, ki=0.1, kd=0.5, init=0.0)
    # e=1: I=0.1, lambda = 1 + 0.1 = 1.1; e=2, rise 1: I=0.3, lambda = 2 + 0.3 + 0.5 = 2.8;
    # e=1, falling: I=0.4, lambda = 1.4; e=-1: I=0.3, lambda = max(0, -1 + 0.3) = 0
    assert [pid.update(cost) for cost in (2.0, 3.0, 2.0, 0.0)] == pytest.approx([1.1, 2.8, 1.4, 0.0])
    assert pid.integral == pytest.approx(0.3)


def test_pid_with_only_the_integral_term_is_the_dual_ascent():
    plain, pid = LagrangeMultiplier(limit=3.0, lr=0.05), PIDLagrangeMultiplier(limit=3.0, kp=0.0, ki=0.05, kd=0.0)
    rng = random.Random(0)
    for _ in range(300):
        cost = rng.uniform(0.0, 8.0)
        assert pid.update(cost) == plain.update(cost)


@pytest.mark.parametrize("make", [lambda: LagrangeMultiplier(limit=2.0),
                                  lambda: PIDLagrangeMultiplier(limit=2.0, kp=0.2, ki=0.05, kd=0.1)])
def test_state_dict_resumes_the_same_trajectory(make):
    costs = [3.0, 2.5, 4.0, 1.0, 0.5, 2.2]
    reference = make()
    expected = [reference.update(cost) for cost in costs]
    first = make()
    for cost in costs[:3]:
        first.update(cost)
    resumed = make()
    resumed.load_state_dict(first.state_dict())
    assert [resumed.update(cost) for cost in costs[3:]] == expected[3:]


def test_lagrangian_advantages():
    rewards, costs = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.0])
    assert lagrangian_advantages(rewards, costs, 2.0).tolist() == [0.0, -4.0]
    assert lagrangian_advantages(rewards, costs, 3.0, rescale=True).tolist() == [-0.125, -1.25]
    with pytest.raises(ValueError, match="no broadcasting"):
        lagrangian_advantages(rewards, costs.unsqueeze(-1), 1.0)
