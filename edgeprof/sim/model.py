"""Seed 001's cost model (section III, eq. 4-12; deployment reward terms eq. 22-23; constraints C4-C7).

One function per term, numpy broadcasting over any leading axes (environments, users), SI units (bytes, bits/s,
FLOPs, FLOP/s, seconds, joules). Bytes become bits (x 8) wherever they meet a rate.

Choices where the paper is silent, each a parameter where it is a number:

- Failure (eq. 5): a request fails when its service is not deployed at the chosen server (x_ij y_jk = 0, seed
  001's rule), when it needs something it was allocated none of (edge FLOPs with no compute share, bytes to
  move with no bandwidth: an infinite delay), or when its delay would exceed the per-request deadline
  (`request_deadline_s`, ours: without it one request over a starved link took 22 hours in a 200-slot
  rollout and the top 1% of requests carried 56% of the mean delay). A failed request costs `failure_delay_s`
  of delay and NO energy and NO privacy cost: it is dropped, and what ran before its deadline is not counted
  (seed 001 has no partial-execution term). Failure is decided by the deployment whatever z is: even
  local-only execution downloads its parameters from the associated server (section III-A).
- A zero allocation where nothing is needed is fine: no compute share at z = L (no edge FLOPs), no bandwidth
  when there is nothing to upload or download. The delay of moving or computing nothing is 0.
- Delays exclude sending the result back to the user: eq. 4 has no such term.
- The prefix download (tau_E2U) moves D_U(z) = the parameters of layers 1..z, less what the user's prefix cache
  already holds for that base model (`prefix_download_bytes`); without a cache it is all of D_U(z).
- Privacy cost (eq. 10) counts the raw input size D_raw in units of `data_unit_bytes` (the scenario's
  `privacy.data_unit_bytes`), which puts it on the scale of energy in joules.
"""

from __future__ import annotations

import numpy as np

BITS_PER_BYTE = 8.0


def _time_for(work: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """work / speed, 0 where there is no work (whatever the speed), infinite where work meets zero speed."""
    work = np.asarray(work, dtype=np.float64)
    speed = np.asarray(speed, dtype=np.float64)
    has_speed = speed > 0
    seconds = work / np.where(has_speed, speed, 1.0)
    return np.where(work > 0, np.where(has_speed, seconds, np.inf), 0.0)


def prefix_download_bytes(prefix_param_bytes: np.ndarray, cached_param_bytes: np.ndarray | float = 0.0) -> np.ndarray:
    """D_U(z) of section III-B, less the prefix parameters the user already holds (never negative)."""
    return np.maximum(np.asarray(prefix_param_bytes, dtype=np.float64) - cached_param_bytes, 0.0)


def download_delay_s(download_bytes: np.ndarray, downlink_bps: np.ndarray) -> np.ndarray:
    """tau_E2U = D_U / R_E2U (section III-C): fetching the prefix parameters from the associated server."""
    return _time_for(BITS_PER_BYTE * np.asarray(download_bytes, dtype=np.float64), downlink_bps)


def local_delay_s(batch: np.ndarray, device_flops: np.ndarray, user_flops_per_s: np.ndarray) -> np.ndarray:
    """tau_U = D_in x Omega_U / f_k (section III-C): layers 1..z on the device."""
    return _time_for(np.asarray(batch, dtype=np.float64) * device_flops, user_flops_per_s)


def upload_delay_s(batch: np.ndarray, upload_bytes: np.ndarray, uplink_bps: np.ndarray) -> np.ndarray:
    """tau_U2E = D_in x D_up / R_U2E (section III-C): the features crossing the cut (the input at z = 0)."""
    return _time_for(BITS_PER_BYTE * np.asarray(batch, dtype=np.float64) * upload_bytes, uplink_bps)


def edge_delay_s(batch: np.ndarray, edge_flops: np.ndarray, allocated_flops_per_s: np.ndarray) -> np.ndarray:
    """tau_E = D_in x Omega_E / f_jk (section III-C): layers z+1..L on the allocated share of the server."""
    return _time_for(np.asarray(batch, dtype=np.float64) * edge_flops, allocated_flops_per_s)


def success_delay_s(
    download_s: np.ndarray, local_s: np.ndarray, upload_s: np.ndarray, edge_s: np.ndarray
) -> np.ndarray:
    """Eq. 4: tau_succ = tau_E2U + tau_U + tau_U2E + tau_E, the four stages run one after another."""
    return download_s + local_s + upload_s + edge_s


def request_succeeds(deployed: np.ndarray, success_delay: np.ndarray, deadline_s: float = np.inf) -> np.ndarray:
    """Eq. 5's condition x_ij y_jk = 1, every needed allocation non-zero (a finite success delay), and the
    delay within the deadline."""
    return np.asarray(deployed, dtype=bool) & np.isfinite(success_delay) & (success_delay <= deadline_s)


def total_delay_s(success_delay: np.ndarray, succeeded: np.ndarray, failure_delay_s: float) -> np.ndarray:
    """Eq. 5: tau_k = tau_succ if the request succeeds, else tau_fail."""
    return np.where(succeeded, success_delay, failure_delay_s)


def compute_energy_j(joules_per_flop: np.ndarray, batch: np.ndarray, device_flops: np.ndarray) -> np.ndarray:
    """Eq. 6: e_U = epsilon x D_in x Omega_U."""
    return joules_per_flop * np.asarray(batch, dtype=np.float64) * device_flops


def transmit_energy_j(tx_power_w: np.ndarray, upload_s: np.ndarray) -> np.ndarray:
    """Eq. 7: e_U2E = P_k x tau_U2E, the radio's power over the upload's airtime."""
    return tx_power_w * np.asarray(upload_s, dtype=np.float64)


def total_energy_j(compute_j: np.ndarray, transmit_j: np.ndarray, succeeded: np.ndarray) -> np.ndarray:
    """Eq. 8: e_k = e_U + e_U2E for a request that ran; 0 for a failed one (module docstring)."""
    return np.where(succeeded, compute_j + transmit_j, 0.0)


def privacy_cost(
    alpha1: float,
    alpha2: float,
    privacy_preference: np.ndarray,
    leakage: np.ndarray,
    batch: np.ndarray,
    raw_input_bytes: np.ndarray,
    data_unit_bytes: float,
    succeeded: np.ndarray,
) -> np.ndarray:
    """Eq. 10: C_priv = (alpha1 + alpha2 Pre_k) x Leak x D_in x D_raw, D_raw in `data_unit_bytes`; 0 if failed."""
    cost = (alpha1 + alpha2 * privacy_preference) * leakage * np.asarray(batch, dtype=np.float64)
    return np.where(succeeded, cost * np.asarray(raw_input_bytes) / data_unit_bytes, 0.0)


def request_cost(privacy_cost: np.ndarray, energy_j: np.ndarray, mu_privacy: float, mu_energy: float) -> np.ndarray:
    """A request's share of eq. 12: mu1 x its privacy cost + mu2 x its energy."""
    return mu_privacy * privacy_cost + mu_energy * energy_j


def slot_cost(
    mean_privacy_cost: np.ndarray, mean_energy_j: np.ndarray, mu_privacy: float, mu_energy: float
) -> np.ndarray:
    """Eq. 12: Cost = mu1 x mean privacy cost (eq. 11) + mu2 x mean energy (eq. 9), the means over users."""
    return request_cost(mean_privacy_cost, mean_energy_j, mu_privacy, mu_energy)


def slot_objective(
    privacy_cost: np.ndarray, energy_j: np.ndarray, delay_s: np.ndarray, success: np.ndarray,
    mu_privacy: float, mu_energy: float, failure_penalty: float, delay_weight: float = 0.0,
) -> np.ndarray:
    """The per-slot objective every optimizer is scored on, per environment (E,) from (E, K) values:
    eq. 12 (mean over users of mu1 C_priv + mu2 e) + failure_penalty x the share of failed requests (a
    failed request has no energy or privacy cost, so without the penalty failing everyone would look optimal)
    + delay_weight x the mean delay (lambda: the inner problem of a primal-dual method on C8; 0 by default)."""
    per_user = request_cost(privacy_cost, energy_j, mu_privacy, mu_energy) + failure_penalty * ~success
    return per_user.mean(axis=-1) + delay_weight * delay_s.mean(axis=-1)


def served_by_deployment(deployment: np.ndarray, requests: np.ndarray, association: np.ndarray) -> np.ndarray:
    """(E, K) x_{i_k, j_k}: whether each user's requested service is deployed at its server.

    deployment (E, I, J) bool, requests and association (E, K) service and server indices.
    """
    envs = np.arange(deployment.shape[0])[:, None]
    return deployment[envs, requests, association]


def per_server_sum(values: np.ndarray, association: np.ndarray, num_servers: int) -> np.ndarray:
    """(E, J) sum of per-user `values` (E, K) over the users associated with each server."""
    num_envs = association.shape[0]
    flat = (np.arange(num_envs)[:, None] * num_servers + association).ravel()
    sums = np.bincount(flat, weights=np.asarray(values, dtype=np.float64).ravel(), minlength=num_envs * num_servers)
    return sums.reshape(num_envs, num_servers)


def hit_count(deployment: np.ndarray, requests: np.ndarray, association: np.ndarray, num_servers: int) -> np.ndarray:
    """Eq. 22 for one slot: (E, J) number of users at each server whose requested service it has deployed."""
    served = served_by_deployment(deployment, requests, association)
    return per_server_sum(served, association, num_servers).astype(np.int64)


def migration_cost_s(
    new_deployment: np.ndarray, old_deployment: np.ndarray, model_bytes: np.ndarray, cloud_rate_bps: np.ndarray
) -> np.ndarray:
    """Eq. 23: (E, J) sum over newly deployed services of D_i / R_C2E, the seconds spent fetching them.

    Deployments (E, I, J) bool, model_bytes (I,), cloud_rate_bps (E, J).
    """
    newly = new_deployment & ~old_deployment
    fetched_bits = BITS_PER_BYTE * np.einsum("eij,i->ej", newly.astype(np.float64), model_bytes)
    return fetched_bits / cloud_rate_bps


def deployment_reward(hits: np.ndarray, migration_s: np.ndarray, mu_hit: float, mu_migration: float) -> np.ndarray:
    """Eq. 24: R_dep = mu_hit H_j - mu_mig C_mig_j."""
    return mu_hit * hits - mu_migration * migration_s


def one_server_each(association: np.ndarray, num_servers: int) -> np.ndarray:
    """C4 (with C2): each user is associated with exactly one existing server, i.e. an index in 0..J-1."""
    return (association >= 0) & (association < num_servers)


def compute_capacity_ok(
    compute_share: np.ndarray, association: np.ndarray, num_servers: int, tolerance: float = 1e-9
) -> np.ndarray:
    """C5: (E, J) whether the compute shares f_jk / f_j of each server's users sum to at most 1."""
    return per_server_sum(compute_share, association, num_servers) <= 1.0 + tolerance


def bandwidth_capacity_ok(
    bandwidth_share: np.ndarray, association: np.ndarray, num_servers: int, tolerance: float = 1e-9
) -> np.ndarray:
    """C6: (E, J) whether the bandwidth shares B_jk / B_j of each server's users sum to at most 1."""
    return per_server_sum(bandwidth_share, association, num_servers) <= 1.0 + tolerance


def storage_ok(deployment: np.ndarray, model_bytes: np.ndarray, storage_bytes: np.ndarray) -> np.ndarray:
    """C7: (E, J) whether the services deployed at each server (deployment (E, I, J)) fit its storage S_j."""
    used = np.einsum("eij,i->ej", deployment.astype(np.float64), model_bytes)
    return used <= storage_bytes
