import math

import numpy as np
import pytest
from scipy.stats import binomtest

from edgeprof.sim.evaluation import metric_interval, summarise
from edgeprof.stats import format_interval, mean_interval, rate_interval

Z = 1.959963984540054  # the standard normal's 97.5% point


def test_interval_of_a_list_is_the_student_t_interval_of_its_mean():
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729749464 / np.sqrt(3)  # t(0.975, 2) x sample standard deviation 1 / sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-12)
    assert all(type(value) is float for value in (mean, low, high))


def test_a_single_sample_has_no_interval():
    assert mean_interval([2.5]) == (2.5, None, None)
    assert format_interval(None, None) == "n = 1" and format_interval(1.23456, 2.0) == "1.235 .. 2"


def test_bounds_clip_the_interval_to_the_metrics_range():
    mean, low, high = mean_interval([0.9, 1.0, 1.0], bounds=(0.0, 1.0))
    assert high == 1.0 and low == pytest.approx(mean_interval([0.9, 1.0, 1.0])[1]) and mean == pytest.approx(29 / 30)
    assert mean_interval([0.0, 0.0, 3.0], bounds=(0.0, math.inf))[1] == 0.0


def test_an_array_gives_one_interval_per_position_over_its_first_axis():
    runs = np.array([[0.0, 10.0, 5.0], [2.0, 10.0, 7.0], [4.0, 10.0, 3.0], [6.0, 10.0, 1.0]])
    mean, low, high = mean_interval(runs)
    for position in range(3):
        assert (mean[position], low[position], high[position]) == pytest.approx(mean_interval(runs[:, position]))
    assert mean.tolist() == [3.0, 10.0, 4.0] and low[1] == high[1] == 10.0  # no spread: zero width


def test_wider_with_fewer_samples_of_the_same_spread():
    _, low_few, high_few = mean_interval([0.0, 1.0] * 2)
    _, low_many, high_many = mean_interval([0.0, 1.0] * 10)
    assert high_few - low_few > 2 * (high_many - low_many)


def _wilson(successes, trials):
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return interval.low, interval.high


@pytest.mark.parametrize(("successes", "trials"), [
    ([45], [50]),                      # one sample: its own trials
    ([15, 15, 15], [50, 50, 50]),      # seeds that agree exactly: no spread beyond the trials'
    ([10, 20], [50, 100]),             # equal rates over unequal trials
    ([450, 450, 451], [500, 500, 500]),  # closer than binomial noise: the design effect is truncated at 1
    ([50, 50, 50], [50, 50, 50]),      # every request served
    ([0, 0], [40, 60]),                # none served
])
def test_where_seeds_show_no_more_spread_than_the_trials_the_rate_gets_the_plain_wilson_interval(successes, trials):
    rate, low, high = rate_interval(successes, trials)
    assert rate == pytest.approx(sum(successes) / sum(trials), rel=1e-12)
    assert (low, high) == pytest.approx(_wilson(sum(successes), sum(trials)), rel=1e-9, abs=1e-12)


def test_the_wilson_interval_by_hand():
    # 45 of 50: p = 0.9, z^2 / n = 0.0768; centre (p + z^2 / 2n) / (1 + z^2 / n), half z / (1 + z^2 / n) x
    # sqrt(p (1 - p) / n + z^2 / 4n^2)
    spread = Z ** 2 / 50
    centre = (0.9 + spread / 2) / (1 + spread)
    half = Z / (1 + spread) * math.sqrt(0.9 * 0.1 / 50 + spread / 200)
    assert rate_interval([45], [50]) == pytest.approx((0.9, centre - half, centre + half), rel=1e-12)
    assert (centre - half, centre + half) == pytest.approx((0.78640, 0.95652), abs=1e-5)


def test_seeds_that_disagree_widen_the_interval_by_their_design_effect_by_hand():
    # rates 0.2, 0.8, 0.5 of 50 requests each: p = 0.5; var(p) = sample variance 0.09 / 3 seeds = 0.03;
    # n_eff = p (1 - p) / var = 8.33, times (z / t(0.975, 2))^2 for a spread from 3 seeds; at p = 0.5 the Wilson
    # interval is 0.5 +- z / (2 sqrt(n_eff + z^2))
    effective = 0.25 / 0.03 * (Z / 4.302652729749464) ** 2
    half = Z / (2 * math.sqrt(effective + Z ** 2))
    rate, low, high = rate_interval([10, 40, 25], [50, 50, 50])
    assert (rate, low, high) == pytest.approx((0.5, 0.5 - half, 0.5 + half), rel=1e-9)
    plain_low, plain_high = _wilson(75, 150)
    assert low < plain_low - 0.2 and high > plain_high + 0.2  # the 150 requests are not 150 independent trials


def test_where_the_seeds_spread_dominates_the_rate_interval_is_about_the_student_t_interval():
    rates = [0.50, 0.51, 0.52]
    trials = [1_000_000] * 3
    _, low, high = rate_interval([rate * count for rate, count in zip(rates, trials, strict=True)], trials)
    _, t_low, t_high = mean_interval(rates)
    assert (low, high) == pytest.approx((t_low, t_high), rel=1e-3)


def test_rate_intervals_stay_in_range_contain_the_estimate_and_never_have_zero_width():
    rng = np.random.default_rng(0)
    for _ in range(300):
        seeds = int(rng.integers(1, 6))
        trials = rng.integers(1, 200, size=seeds)
        rate = rng.choice([0.0, 1.0, rng.uniform(), rng.uniform(0.95, 1.0)])
        successes = rng.binomial(trials, rate)
        estimate, low, high = rate_interval(successes, trials)
        assert 0.0 <= low <= estimate <= high <= 1.0 and high - low > 0, (successes, trials)
    _, low, high = rate_interval([100, 100, 100], [100, 100, 100])
    assert high == 1.0 and 0.98 < low < 1.0  # three perfect seeds: not [1, 1]


def test_rate_interval_leaves_out_samples_without_trials_and_refuses_impossible_counts():
    assert rate_interval([0, 5], [0, 10]) == rate_interval([5], [10])
    for successes, trials, message in [([11], [10], "successes must lie in"), ([-1], [10], "successes must lie in"),
                                       ([1], [-2], "non-negative"), ([1, 2], [3], "differ in length"),
                                       ([0, 0], [0, 0], "at least one trial")]:
        with pytest.raises(ValueError, match=message):
            rate_interval(successes, trials)


def test_a_rate_with_its_counts_gets_the_binomial_interval_and_one_without_them_the_clipped_student_t():
    rates, trials = [1.0, 1.0, 1.0], [50, 50, 50]
    assert metric_interval(rates, trials, (0.0, 1.0)) == pytest.approx((1.0, *_wilson(150, 150)))
    fallback = mean_interval(rates, (0.0, 1.0))
    assert fallback == (1.0, 1.0, 1.0)  # what the Student-t interval says of three perfect seeds
    assert metric_interval(rates, None, (0.0, 1.0)) == fallback  # not a declared rate
    assert metric_interval(rates, [50, None, 50], (0.0, 1.0)) == fallback  # a row without its count
    assert metric_interval([0.0, 0.0], [0, 0], (0.0, 1.0)) == mean_interval([0.0, 0.0], (0.0, 1.0))  # no trial


def test_summarise_weighs_each_seed_by_its_trials_and_leaves_out_undefined_rates():
    rows = [{"completion_rate": 1.0, "ended_tasks": 10, "delay_s": 2.0},
            {"completion_rate": 0.5, "ended_tasks": 30, "delay_s": 4.0},
            {"completion_rate": None, "ended_tasks": 0, "delay_s": None}]
    summary = summarise(rows, ("completion_rate", "delay_s"), {"completion_rate": (0.0, 1.0)},
                        {"completion_rate": "ended_tasks"})
    assert summary["completion_rate"] == pytest.approx((*rate_interval([10, 15], [10, 30]), 2))
    assert summary["completion_rate"][0] == pytest.approx(25 / 40)  # not the mean of the rates, 0.75
    assert summary["delay_s"] == pytest.approx((*mean_interval([2.0, 4.0]), 2))
