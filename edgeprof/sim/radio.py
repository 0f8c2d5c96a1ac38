"""Seed 001's radio model (section III-C and Table I): where nodes stand, how much signal arrives, what rate it buys.

Every function takes and returns numpy arrays (float64, SI units: metres, watts, hertz, bit/s), broadcasts over
leading axes, and draws from an explicit `numpy.random.Generator`:

    PL(d)   = PL(1 m) + 10 n log10(d / 1 m)                          dB, d clamped at a minimum distance
    g       = 10^(-(PL(d) + X) / 10),  X ~ N(0, sigma^2)              linear gain with log-normal shadowing
    noise   = N0 x B x NF                                             W (N0 in dBm/Hz, NF in dB)
    R       = B log2(1 + P g / noise(B))                             bit/s (Shannon)

Up- and downlink share the bandwidth B_jk the server allocates to the user (seed 001, section III-C): the uplink
transmits at the user's power P_k, the downlink at the server's power P_j.
"""

from __future__ import annotations

import math

import numpy as np


def dbm_to_watts(dbm: np.ndarray | float) -> np.ndarray:
    """P[W] = 10^((P[dBm] - 30) / 10)."""
    return np.power(10.0, (np.asarray(dbm, dtype=np.float64) - 30.0) / 10.0)


def db_to_linear(db: np.ndarray | float) -> np.ndarray:
    """A power ratio from decibels: 10^(dB / 10)."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the most even grid with at least `count` cells: ceil(sqrt(count)) columns."""
    if count < 1:
        raise ValueError(f"a grid needs at least one point, got {count}")
    columns = math.isqrt(count - 1) + 1
    rows = -(-count // columns)
    return rows, columns


def grid_positions(count: int, area_m: float) -> np.ndarray:
    """(count, 2) cell centres of the most even grid over the square [0, area_m]^2, row by row (x, y)."""
    rows, columns = grid_shape(count)
    cell = np.arange(count)
    x = (cell % columns + 0.5) * area_m / columns
    y = (cell // columns + 0.5) * area_m / rows
    return np.stack([x, y], axis=-1)


def uniform_positions(rng: np.random.Generator, shape: tuple[int, ...], area_m: float) -> np.ndarray:
    """(*shape, 2) points drawn uniformly over the square [0, area_m]^2."""
    return rng.uniform(0.0, area_m, size=(*shape, 2))


def distances_m(servers: np.ndarray, users: np.ndarray, min_distance_m: float) -> np.ndarray:
    """(..., J, K) server-user distances from (..., J, 2) and (..., K, 2) positions, at least `min_distance_m`."""
    offsets = servers[..., :, None, :] - users[..., None, :, :]
    return np.maximum(np.sqrt(np.sum(offsets * offsets, axis=-1)), min_distance_m)


def path_loss_db(distance_m: np.ndarray, reference_db: float, exponent: float) -> np.ndarray:
    """Log-distance path loss PL(d) = PL(1 m) + 10 n log10(d / 1 m), in dB."""
    return reference_db + 10.0 * exponent * np.log10(distance_m)


def shadowing_db(rng: np.random.Generator, shape: tuple[int, ...], std_db: float) -> np.ndarray:
    """Log-normal shadowing: zero-mean Gaussian draws in dB with standard deviation `std_db`."""
    return rng.normal(0.0, std_db, size=shape)


def channel_gain(path_loss: np.ndarray, shadowing: np.ndarray | float = 0.0) -> np.ndarray:
    """Linear channel gain g = 10^(-(PL + X) / 10) from path loss and shadowing in dB."""
    return db_to_linear(-(np.asarray(path_loss) + shadowing))


def noise_power_w(bandwidth_hz: np.ndarray | float, noise_dbm_per_hz: float, noise_figure_db: float) -> np.ndarray:
    """Receiver noise N0 x B x NF in watts."""
    return dbm_to_watts(noise_dbm_per_hz) * np.asarray(bandwidth_hz, dtype=np.float64) * db_to_linear(noise_figure_db)


def shannon_rate_bps(
    bandwidth_hz: np.ndarray | float,
    power_w: np.ndarray | float,
    gain: np.ndarray | float,
    noise_dbm_per_hz: float,
    noise_figure_db: float,
) -> np.ndarray:
    """R = B log2(1 + P g / (N0 B NF)) in bit/s; 0 where no bandwidth is allocated (the limit as B -> 0)."""
    bandwidth = np.asarray(bandwidth_hz, dtype=np.float64)
    noise_per_hz = dbm_to_watts(noise_dbm_per_hz) * db_to_linear(noise_figure_db)
    received = np.asarray(power_w, dtype=np.float64) * gain
    has_band = bandwidth > 0
    snr = received / (noise_per_hz * np.where(has_band, bandwidth, 1.0))
    return np.where(has_band, bandwidth * np.log2(1.0 + snr), 0.0)


def distance_for_rate_m(
    rate_bps: np.ndarray | float,
    bandwidth_hz: float,
    power_w: float,
    noise_dbm_per_hz: float,
    noise_figure_db: float,
    reference_db: float,
    exponent: float,
) -> np.ndarray:
    """The distance at which the Shannon rate without shadowing falls to `rate_bps`: `shannon_rate_bps` and
    `path_loss_db` inverted (0 where no distance is close enough, infinite for a zero rate)."""
    rate = np.asarray(rate_bps, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        snr = np.expm1(rate / bandwidth_hz * math.log(2.0))
        gain = snr * noise_power_w(bandwidth_hz, noise_dbm_per_hz, noise_figure_db) / power_w
        loss_db = -10.0 * np.log10(gain)
        return np.power(10.0, (loss_db - reference_db) / (10.0 * exponent))
