"""Seed 001's observation features as numpy arrays: one home for what the built-in trainer
(`rl.hc_policies`) and the PettingZoo facade (`sim.pettingzoo_env`) show the agents.

Features are put at order 1 by construction: capacities as log10 of a reference unit, workloads as
log10(1 + GFLOP) or log10(1 + MB) (0 for no work), links as log10 of the SNR (dB / 10), counts as fractions.
"""

from __future__ import annotations

import numpy as np

from edgeprof.sim import radio
from edgeprof.sim.env import EdgeSystem

# Reference units: a capacity enters as log10(value / unit), order 1 over Table I's ranges.
USER_FLOPS_UNIT = 1e10  # 10 GFLOP/s: users have 10-100 GFLOP/s -> 0..1
SERVER_FLOPS_UNIT = 1e12  # 1 TFLOP/s: servers have 0.5-2 -> -0.3..0.3
BANDWIDTH_UNIT_HZ = 1e8  # 100 MHz: servers have 50-100 MHz -> -0.3..0
STORAGE_UNIT_BYTES = 1e9  # 1 GB
POWER_UNIT_W = 1.0  # users transmit at 20-30 dBm (0.1-1 W) -> -1..0
JOULES_PER_FLOP_UNIT = 1e-10  # users spend 1e-11..1e-9 J/FLOP -> -1..1
WORK_UNIT_FLOPS = 1e9  # workloads enter as log10(1 + GFLOP)
DATA_UNIT_BYTES = 1e6  # data as log10(1 + MB)


def log10_units(value: np.ndarray, unit: float) -> np.ndarray:
    return np.log10(np.asarray(value, dtype=np.float64) / unit)


def log10_1p(value: np.ndarray, unit: float) -> np.ndarray:
    return np.log10(1.0 + np.asarray(value, dtype=np.float64) / unit)


def link_snr(system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
    """log10 SNR (dB / 10) of every link (E, J, K) as if the user had all of the server's bandwidth: uplink at
    the user's power, downlink at the server's. It folds gain, powers and bandwidth into the quantity that sets
    the rate."""
    entities, scenario = system.entities, system.scenario
    noise = radio.noise_power_w(entities.server_bandwidth_hz[..., None], scenario["radio.noise_dbm_per_hz"],
                                scenario["radio.noise_figure_db"])  # (E, J, 1)
    gains = system.slot.gains  # (E, J, K)
    uplink = np.log10(entities.user_tx_power_w[:, None, :] * gains / noise)
    downlink = np.log10(entities.server_tx_power_w[..., None] * gains / noise)
    return uplink, downlink


def server_features(system: EdgeSystem) -> np.ndarray:
    """(E, J, 3): log compute, bandwidth and storage."""
    entities = system.entities
    return np.stack([log10_units(entities.server_flops_per_s, SERVER_FLOPS_UNIT),
                     log10_units(entities.server_bandwidth_hz, BANDWIDTH_UNIT_HZ),
                     log10_units(entities.server_storage_bytes, STORAGE_UNIT_BYTES)], axis=-1)


def batch_fraction(system: EdgeSystem) -> np.ndarray:
    """(E, K) D_in over the largest batch a request can have."""
    return system.slot.batch / system.scenario["services.batch_range"][1]


def cache_fraction(system: EdgeSystem) -> np.ndarray:
    """(E, K) how deep the user's prefix cache holds the requested model, as a share of its L_i points."""
    table, requests = system.table, system.slot.requests
    if not system.scenario["users.prefix_cache"]:
        return np.zeros(requests.shape)
    depth = np.take_along_axis(system.cache.depth, table.base_model[requests][..., None], axis=-1)[..., 0]
    return depth / table.num_points[requests]


def user_features(system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
    """The user agents' observation for the current slot.

    Local (E, K, I + M + 3J + 6): [requested service one-hot, its base model one-hot, D_in share, which servers
    host it (J), uplink SNR (J), downlink SNR (J), log f_k, log P_k, log J/FLOP, Pre_k, cached depth share]. A
    one-hot through the first linear layer is the embedding e_mod of eq. 16; the base model lets the five
    services of one model share what they learn about its partition points.
    State (E, I + I + IJ + 3J + K(J + 4)): [requests share per service, demand (D_in) share per service,
    vec(X), the servers' log compute, bandwidth and storage, and per user: D_in share, log f_k, Pre_k, cached
    depth share, uplink SNR to every server].
    """
    table, entities = system.table, system.entities
    requests = system.slot.requests  # (E, K)
    num_envs, num_users = requests.shape
    service = np.eye(table.num_services)[requests]  # (E, K, I)
    base = np.eye(table.num_models)[table.base_model[requests]]  # (E, K, M)
    batch, cached = batch_fraction(system), cache_fraction(system)
    hosted = np.take_along_axis(system.deployment, requests[..., None], axis=1).astype(np.float64)  # (E, K, J)
    uplink, downlink = (snr.transpose(0, 2, 1) for snr in link_snr(system))  # (E, K, J)
    compute = log10_units(entities.user_flops_per_s, USER_FLOPS_UNIT)
    scalars = np.stack([compute, log10_units(entities.user_tx_power_w, POWER_UNIT_W),
                        log10_units(entities.user_joules_per_flop, JOULES_PER_FLOP_UNIT),
                        entities.user_privacy_preference, cached], axis=-1)  # (E, K, 5)
    local = np.concatenate([service, base, batch[..., None], hosted, uplink, downlink, scalars], axis=-1)

    per_user = np.concatenate([np.stack([batch, compute, entities.user_privacy_preference, cached], axis=-1),
                               uplink], axis=-1)  # (E, K, 4 + J)
    state = np.concatenate([service.mean(axis=1), (service * batch[..., None]).sum(axis=1) / num_users,
                            system.deployment.reshape(num_envs, -1), server_features(system).reshape(num_envs, -1),
                            per_user.reshape(num_envs, -1)], axis=-1)
    return local, state
