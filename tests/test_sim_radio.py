"""The radio model: unit conversions, placements, distances, path loss, shadowing, noise and Shannon rates, each
against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeprof.sim import radio


def test_unit_conversions():
    # 30 dBm = 1 W, 20 dBm = 0.1 W, 43 dBm = 10^1.3 W = 19.95 W; 6 dB = 10^0.6 = 3.981
    assert radio.dbm_to_watts(np.array([30.0, 20.0, 43.0])) == pytest.approx([1.0, 0.1, 19.952623])
    assert radio.db_to_linear(6.0) == pytest.approx(3.981072)
    assert radio.db_to_linear(-10.0) == pytest.approx(0.1)


@pytest.mark.parametrize("count, shape", [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (2, 3)),
                                          (6, (2, 3)), (9, (3, 3)), (10, (3, 4)), (17, (4, 5))])
def test_grid_shape_is_the_most_even_grid_that_holds_every_point(count, shape):
    assert radio.grid_shape(count) == shape
    rows, columns = shape
    assert rows * columns >= count and abs(rows - columns) <= 1


def test_grid_shape_refuses_no_points():
    with pytest.raises(ValueError, match="at least one point"):
        radio.grid_shape(0)


def test_grid_positions_are_cell_centres_row_by_row():
    # J = 10 in 1000 m: 3 rows x 4 columns, cells 250 m wide and 333.3 m high; centres x = 125, 375, 625, 875
    # and y = 166.7, 500, 833.3; the first 10 cells row by row, so point 9 is row 2, column 1.
    positions = radio.grid_positions(10, 1000.0)
    assert positions.shape == (10, 2)
    assert positions[0] == pytest.approx([125.0, 1000 / 6])
    assert positions[3] == pytest.approx([875.0, 1000 / 6])
    assert positions[4] == pytest.approx([125.0, 500.0])
    assert positions[9] == pytest.approx([375.0, 5000 / 6])
    assert len({tuple(p) for p in positions}) == 10


def test_uniform_positions_lie_in_the_area_and_repeat_with_the_seed():
    first = radio.uniform_positions(np.random.default_rng(3), (4, 500), 300.0)
    again = radio.uniform_positions(np.random.default_rng(3), (4, 500), 300.0)
    assert first.shape == (4, 500, 2)
    assert np.array_equal(first, again)
    assert first.min() >= 0 and first.max() <= 300.0
    assert first.mean() == pytest.approx(150.0, rel=0.05)


def test_distances_are_euclidean_and_clamped():
    servers = np.array([[0.0, 0.0], [10.0, 0.0]])
    users = np.array([[3.0, 4.0], [10.0, 0.2], [0.0, 0.0]])
    # server 0: 5 (3-4-5), 10.002 (sqrt(100 + 0.04)), 0 -> 1; server 1: sqrt(49 + 16) = 8.062, 0.2 -> 1, 10
    expected = [[5.0, math.sqrt(100.04), 1.0], [math.sqrt(65.0), 1.0, 10.0]]
    assert radio.distances_m(servers, users, 1.0) == pytest.approx(np.array(expected))


def test_distances_broadcast_over_environments():
    servers = np.zeros((2, 1, 2))
    users = np.array([[[3.0, 4.0]], [[6.0, 8.0]]])
    assert radio.distances_m(servers, users, 1.0)[:, 0, 0] == pytest.approx([5.0, 10.0])


def test_path_loss_is_log_distance():
    # 30 dB + 10 x 3.5 x log10(d): 30 at 1 m, 65 at 10 m, 100 at 100 m, 30 + 35 x 2.69897 = 124.46 at 500 m
    loss = radio.path_loss_db(np.array([1.0, 10.0, 100.0, 500.0]), 30.0, 3.5)
    assert loss == pytest.approx([30.0, 65.0, 100.0, 124.463946])


def test_shadowing_draws_have_the_stated_spread_and_repeat_with_the_seed():
    draws = radio.shadowing_db(np.random.default_rng(0), (200_000,), 8.0)
    assert abs(draws.mean()) < 0.1
    assert draws.std() == pytest.approx(8.0, rel=0.01)
    assert np.array_equal(radio.shadowing_db(np.random.default_rng(5), (3, 4), 8.0),
                          radio.shadowing_db(np.random.default_rng(5), (3, 4), 8.0))


def test_channel_gain_adds_shadowing_to_path_loss():
    # 100 dB of loss: g = 1e-10; 10 dB of favourable shadowing (X = -10) makes it 1e-9
    assert radio.channel_gain(100.0) == pytest.approx(1e-10)
    assert radio.channel_gain(np.array([100.0, 100.0]), np.array([-10.0, 10.0])) == pytest.approx([1e-9, 1e-11])


def test_noise_power():
    # -174 dBm/Hz + 60 dB (1 MHz) + 6 dB (NF) = -108 dBm = 10^-13.8 W = 1.585e-14 W
    assert radio.noise_power_w(1e6, -174.0, 6.0) == pytest.approx(10**-13.8)
    assert radio.noise_power_w(np.array([1e6, 2e6]), -174.0, 0.0) == pytest.approx([10**-14.4, 2 * 10**-14.4])


def test_shannon_rate():
    # B = 1 MHz, noise 10^-13.8 W; P g = 3 x noise gives SNR 3: R = 1e6 x log2(4) = 2 Mbit/s.
    # At B = 2 MHz the noise doubles: SNR 1.5, R = 2e6 x log2(2.5) = 2.644 Mbit/s.
    noise = 10**-13.8
    gain = 3 * noise / 0.1
    assert radio.shannon_rate_bps(1e6, 0.1, gain, -174.0, 6.0) == pytest.approx(2e6)
    assert radio.shannon_rate_bps(2e6, 0.1, gain, -174.0, 6.0) == pytest.approx(2e6 * math.log2(2.5))
    # the downlink at the server's 0.5 W: SNR 15, R = 1e6 x log2(16) = 4 Mbit/s
    assert radio.shannon_rate_bps(1e6, 0.5, gain, -174.0, 6.0) == pytest.approx(4e6)


def test_shannon_rate_is_zero_without_bandwidth_and_grows_with_it():
    bandwidth = np.array([0.0, 1e5, 1e6, 1e7])
    rates = radio.shannon_rate_bps(bandwidth, 0.2, 1e-11, -174.0, 6.0)
    assert rates[0] == 0.0
    assert np.all(np.diff(rates) > 0)


def test_distance_for_rate_inverts_path_loss_and_shannon():
    distances = np.array([1.0, 37.5, 250.0, 1200.0])
    gain = radio.channel_gain(radio.path_loss_db(distances, 30.0, 3.5))
    rates = radio.shannon_rate_bps(20e6, 0.2, gain, -174.0, 6.0)
    back = radio.distance_for_rate_m(rates, 20e6, 0.2, -174.0, 6.0, 30.0, 3.5)
    np.testing.assert_allclose(back, distances, rtol=1e-9)
    assert radio.distance_for_rate_m(0.0, 20e6, 0.2, -174.0, 6.0, 30.0, 3.5) == np.inf
    assert radio.distance_for_rate_m(1e12, 20e6, 0.2, -174.0, 6.0, 30.0, 3.5) == 0.0
