"""FOCI's fairness oracle (P-EDGE-2): the greedy integer optimum equals brute force over every composition; IPLS
lands within (1 + eps) of bisection; min-risk rounding never over-allocates, gives each device an SM and uses
them all."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeprof.optimize.fairness import (
    costs,
    greedy_allocation,
    ipls,
    min_risk_allocation,
    min_risk_rounding,
    oracle_allocation,
    oracle_cost,
    relaxed_optimum,
)


def compositions(total: int, parts: int):
    """Every way to write `total` as `parts` positive integers, in order."""
    for cuts in itertools.combinations(range(1, total), parts - 1):
        bounds = (0, *cuts, total)
        yield np.diff(bounds)


def brute_force(rc, rf, total) -> float:
    return min(costs(rc, rf, sms).max() for sms in compositions(total, len(rc)))


def random_case(rng, max_devices=5, max_sms=12):
    devices = int(rng.integers(1, max_devices + 1))
    total = int(rng.integers(devices, max_sms + 1))
    rc = rng.uniform(0.01, 1.0, devices) * rng.choice([1.0, 10.0], devices)
    rf = rng.uniform(0.01, 2.0, devices) * rng.choice([1.0, 30.0], devices)
    return rc, rf, total


def test_greedy_equals_brute_force_over_every_composition():
    rng = np.random.default_rng(0)
    for _ in range(300):
        rc, rf, total = random_case(rng)
        sms = greedy_allocation(rc, rf, total)
        assert sms.sum() == total and sms.min() >= 1
        assert costs(rc, rf, sms).max() == pytest.approx(brute_force(rc, rf, total), rel=1e-12)


def test_greedy_hand_case():
    # device 0 needs 4 of 6 SMs to match device 1 at 1 SM... c0 = 1 + 8/l, c1 = 3 + 1/l
    sms = greedy_allocation([1.0, 3.0], [8.0, 1.0], 6)
    assert sms.tolist() == [4, 2] and costs([1.0, 3.0], [8.0, 1.0], sms).max() == 3.5


@pytest.mark.parametrize("eps", [0.001, 0.01, 0.1])
def test_ipls_is_within_one_plus_eps_of_bisection(eps):
    rng = np.random.default_rng(1)
    for _ in range(300):
        rc, rf, total = random_case(rng, max_devices=25, max_sms=40)
        exact = relaxed_optimum(rc, rf, total)
        result = ipls(rc, rf, total, eps)
        assert exact <= result.level * (1 + 1e-12) and result.level <= (1 + eps) * exact * (1 + 1e-12)
        assert result.shares.sum() <= total * (1 + 1e-12) and result.shares.min() >= 1.0
        assert costs(rc, rf, result.shares).max() <= result.level * (1 + 1e-9)


def test_ipls_tests_logarithmically_many_levels():
    rc, rf = np.full(20, 0.1), np.linspace(0.5, 5.0, 20)
    result = ipls(rc, rf, 24, 0.001)
    assert result.tests <= 14  # log2 of a few thousand grid points


def test_relaxation_lower_bounds_the_integer_optimum():
    rng = np.random.default_rng(2)
    for _ in range(100):
        rc, rf, total = random_case(rng)
        assert relaxed_optimum(rc, rf, total) <= brute_force(rc, rf, total) * (1 + 1e-12)


@pytest.mark.parametrize("rule", ["lowest_cost", "smallest_increase"])
@pytest.mark.parametrize("eps", [0.01, 0.1])
def test_rounding_never_over_allocates_gives_each_one_and_uses_all(rule, eps):
    rng = np.random.default_rng(3)
    for _ in range(500):
        rc, rf, total = random_case(rng, max_devices=12, max_sms=30)
        sms = min_risk_rounding(rc, rf, ipls(rc, rf, total, eps).shares, total, rule)
        assert sms.dtype == np.int64 and sms.sum() == total and sms.min() >= 1


def test_rounding_terminates_where_the_literal_loop_would_not():
    # eps 0.1 makes the grid coarse: the rounded-up shares can fall short of L (theta < 0)
    rng = np.random.default_rng(4)
    short = 0
    for _ in range(400):
        rc, rf, total = random_case(rng, max_devices=12, max_sms=30)
        shares = ipls(rc, rf, total, 0.1).shares
        short += int(np.ceil(shares - 1e-9).sum() < total)
        assert min_risk_rounding(rc, rf, shares, total).sum() == total
    assert short > 0


def test_lowest_cost_rounding_is_near_exact_and_smallest_increase_is_not_always():
    rng = np.random.default_rng(5)
    gaps = {"lowest_cost": [], "smallest_increase": []}
    for _ in range(200):
        rc, rf, total = random_case(rng)
        best = brute_force(rc, rf, total)
        for rule, found in gaps.items():
            sms = min_risk_allocation(rc, rf, total, 0.01, rule)
            found.append(costs(rc, rf, sms).max() / best - 1)
    assert min(gaps["lowest_cost"]) >= -1e-12 and max(gaps["lowest_cost"]) < 0.02
    assert max(gaps["smallest_increase"]) > max(gaps["lowest_cost"])


def test_oracle_dispatch_and_value():
    rc, rf = np.array([0.2, 0.5, 0.1]), np.array([2.0, 0.3, 1.0])
    assert oracle_allocation("greedy", rc, rf, 8).tolist() == greedy_allocation(rc, rf, 8).tolist()
    assert oracle_cost("greedy", rc, rf, 8) == pytest.approx(brute_force(rc, rf, 8))
    assert oracle_cost("min-risk", rc, rf, 8) >= oracle_cost("greedy", rc, rf, 8) - 1e-12
    with pytest.raises(ValueError, match="oracle method"):
        oracle_allocation("exact", rc, rf, 8)


def test_single_device_gets_every_sm_and_bad_inputs_are_refused():
    assert greedy_allocation([0.1], [1.0], 7).tolist() == [7]
    assert min_risk_allocation([0.1], [1.0], 7).tolist() == [7]
    with pytest.raises(ValueError, match="cannot give each of 3 devices"):
        greedy_allocation([0.1] * 3, [1.0] * 3, 2)
    with pytest.raises(ValueError, match="rf > 0"):
        ipls([0.1], [0.0], 3)
    with pytest.raises(ValueError, match="eps must be positive"):
        ipls([0.1], [1.0], 3, 0.0)


def test_the_bisection_reference_agrees_with_seed_001s_minmax_allocation():
    """Where no device needs the l >= 1 floor, the relaxation is seed 001's min-max compute split with local
    times (`allocation.minmax_noise_limited_shares` with nothing to transfer): Rc = local time, Rf / L = the
    edge seconds on the whole server, l = L x share."""
    from edgeprof.optimize.allocation import minmax_noise_limited_shares

    rng = np.random.default_rng(6)
    checked = 0
    for _ in range(50):
        devices, total = int(rng.integers(2, 9)), 24
        rc, rf = rng.uniform(0.01, 0.1, devices), rng.uniform(0.1, 0.5, devices)
        none, ones = np.zeros((1, devices)), np.ones((1, devices))
        share, _ = minmax_noise_limited_shares((rf / total)[None], none, none, ones, ones, rc[None],
                                               np.zeros((1, devices), dtype=np.int64), 1)
        if (total * share).min() < 1:
            continue
        checked += 1
        assert costs(rc, rf, total * share[0]).max() == pytest.approx(relaxed_optimum(rc, rf, total), rel=1e-9)
    assert checked >= 25
