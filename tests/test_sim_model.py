"""Seed 001's cost terms (eq. 4-12, 22-24, C4-C7), each checked against arithmetic done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edgeprof.sim import model


def test_prefix_download_bytes_subtracts_the_cache_and_never_goes_negative():
    # 1000 needed, 400 held: 600 to fetch; 1500 held: nothing
    assert model.prefix_download_bytes(np.array([1000.0, 1000.0, 0.0]), np.array([400.0, 1500.0, 0.0])) == \
        pytest.approx([600.0, 0.0, 0.0])
    assert model.prefix_download_bytes(2000.0) == 2000.0


def test_download_delay():
    # 1e6 bytes = 8e6 bits at 8 Mbit/s: 1 s; nothing to fetch takes 0 s even over a zero rate; bytes over a
    # zero rate never arrive
    assert model.download_delay_s(np.array([1e6, 0.0, 1.0]), np.array([8e6, 0.0, 0.0])) == \
        pytest.approx([1.0, 0.0, np.inf])


def test_local_delay():
    # 4 samples x 5e9 FLOPs / 2e10 FLOP/s = 1 s
    assert model.local_delay_s(4, 5e9, 2e10) == pytest.approx(1.0)
    assert model.local_delay_s(4, 0.0, 2e10) == 0.0


def test_upload_delay():
    # 2 samples x 125000 bytes x 8 = 2e6 bits at 1 Mbit/s: 2 s
    assert model.upload_delay_s(2, 125_000.0, 1e6) == pytest.approx(2.0)
    assert model.upload_delay_s(np.array([2, 2]), np.array([0.0, 1.0]), 0.0) == pytest.approx([0.0, np.inf])


def test_edge_delay():
    # 3 samples x 1e9 FLOPs on 1.5e9 FLOP/s: 2 s; no edge FLOPs (z = L) with no share: 0; FLOPs with none: inf
    assert model.edge_delay_s(np.array([3, 3, 3]), np.array([1e9, 0.0, 1e9]), np.array([1.5e9, 0.0, 0.0])) == \
        pytest.approx([2.0, 0.0, np.inf])


def test_success_and_total_delay():
    # eq. 4: 0.004 + 2 + 0.004 + 2 = 4.008 s; eq. 5: tau_fail where not served or not finite
    success = model.success_delay_s(np.array([0.004, 0.004, 0.0]), 2.0, np.array([0.004, 0.004, np.inf]), 2.0)
    assert success[:2] == pytest.approx([4.008, 4.008])
    served = model.request_succeeds(np.array([True, False, True]), success)
    assert served.tolist() == [True, False, False]
    assert model.total_delay_s(success, served, 30.0) == pytest.approx([4.008, 30.0, 30.0])


def test_energy():
    # eq. 6: 1e-10 J/FLOP x 4 x 5e9 = 2 J; eq. 7: 0.2 W x 2 s = 0.4 J; eq. 8: 2.4 J, or 0 for a failed request
    compute = model.compute_energy_j(1e-10, 4, 5e9)
    transmit = model.transmit_energy_j(0.2, 2.0)
    assert compute == pytest.approx(2.0)
    assert transmit == pytest.approx(0.4)
    assert model.total_energy_j(compute, transmit, np.array([True, False])) == pytest.approx([2.4, 0.0])


def test_privacy_cost():
    # eq. 10: (0.31 + 1.88 x 0.5) = 1.25; x Leak 0.4 x D_in 3 x 602112 bytes / 1e6 = 1.25 x 0.4 x 3 x 0.602112
    # = 0.903168; a failed request sends nothing: 0; Leak 0 (local-only): 0
    cost = model.privacy_cost(0.31, 1.88, 0.5, np.array([0.4, 0.4, 0.0]), 3, 602112.0, 1e6,
                              np.array([True, False, True]))
    assert cost == pytest.approx([0.903168, 0.0, 0.0])


def test_slot_cost():
    # eq. 12: 5 x 0.2 + 5 x 0.1 = 1.5
    assert model.slot_cost(0.2, 0.1, 5.0, 5.0) == pytest.approx(1.5)
    assert model.slot_cost(np.array([0.2, 1.0]), np.array([0.1, 0.0]), 2.0, 3.0) == pytest.approx([0.7, 2.0])


def test_request_cost():
    # 2 x 0.5 + 3 x 0.25 = 1.75 for one request; 2 x 1 + 3 x 0 = 2 for the other
    assert model.request_cost(np.array([0.5, 1.0]), np.array([0.25, 0.0]), 2.0, 3.0) == pytest.approx([1.75, 2.0])


def _deployment() -> np.ndarray:
    """E = 1, I = 3, J = 2: server 0 holds services 0 and 1, server 1 holds service 2."""
    deployment = np.zeros((1, 3, 2), dtype=bool)
    deployment[0, [0, 1], 0] = True
    deployment[0, 2, 1] = True
    return deployment


def test_served_and_hit_count():
    # users request 0, 2, 2, 1 at servers 0, 0, 1, 1: served = yes, no (2 not at 0), yes, no (1 not at 1)
    requests, association = np.array([[0, 2, 2, 1]]), np.array([[0, 0, 1, 1]])
    assert model.served_by_deployment(_deployment(), requests, association).tolist() == [[True, False, True, False]]
    assert model.hit_count(_deployment(), requests, association, 2).tolist() == [[1, 1]]


def test_per_server_sum():
    # users at servers 0, 2, 0 with values 0.25, 0.5, 0.75: server 0 gets 1.0, server 1 nothing, server 2 0.5
    sums = model.per_server_sum(np.array([[0.25, 0.5, 0.75]]), np.array([[0, 2, 0]]), 3)
    assert sums.tolist() == [[1.0, 0.0, 0.5]]


def test_migration_cost():
    # newly deployed: service 0 at server 1 (1e8 bytes) and service 1 at server 1 (2e8 bytes), service 2 already
    # there; 8 x 3e8 bits / 4e8 bit/s = 6 s at server 1; server 0 keeps its services: 0 s
    old = _deployment()
    new = old.copy()
    new[0, [0, 1], 1] = True
    cost = model.migration_cost_s(new, old, np.array([1e8, 2e8, 5e8]), np.array([[2e8, 4e8]]))
    assert cost == pytest.approx(np.array([[0.0, 6.0]]))
    # deploying from scratch at server 0: 8 x (1e8 + 2e8) / 2e8 = 12 s; at server 1: 8 x 5e8 / 4e8 = 10 s
    scratch = model.migration_cost_s(old, np.zeros_like(old), np.array([1e8, 2e8, 5e8]), np.array([[2e8, 4e8]]))
    assert scratch == pytest.approx(np.array([[12.0, 10.0]]))


def test_deployment_reward():
    # eq. 24: 1.0 x 5 hits - 0.1 x 2 s = 4.8
    assert model.deployment_reward(5, 2.0, 1.0, 0.1) == pytest.approx(4.8)


def test_c4_one_server_each():
    assert model.one_server_each(np.array([[0, 1, 2, -1, 3]]), 3).tolist() == [[True, True, True, False, False]]


def test_c5_c6_capacity_checks():
    # server 0: 0.5 + 0.5 = 1 (ok); server 1: 0.7 + 0.4 = 1.1 (over)
    shares, association = np.array([[0.5, 0.7, 0.5, 0.4]]), np.array([[0, 1, 0, 1]])
    assert model.compute_capacity_ok(shares, association, 2).tolist() == [[True, False]]
    assert model.bandwidth_capacity_ok(shares, association, 2).tolist() == [[True, False]]
    # rounding within the tolerance passes
    assert model.compute_capacity_ok(np.array([[1 / 3] * 3]), np.array([[0, 0, 0]]), 1).tolist() == [[True]]


def test_c7_storage_check():
    # server 0 holds services 0 and 1: 1e8 + 2e8 = 3e8 bytes; server 1 holds service 2: 5e8
    sizes = np.array([1e8, 2e8, 5e8])
    assert model.storage_ok(_deployment(), sizes, np.array([[3e8, 5e8]])).tolist() == [[True, True]]
    assert model.storage_ok(_deployment(), sizes, np.array([[2.9e8, 6e8]])).tolist() == [[False, True]]
