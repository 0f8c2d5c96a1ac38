import math

import numpy as np
import pytest

from edgeprof.stats import format_interval, mean_interval


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
