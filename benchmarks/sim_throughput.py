"""Benchmark: user-slot evaluations per second of the batched simulator core (`edgeprof.sim.core.evaluate`).

- System: the `paper` scenario (J = 10 servers, K = 50 users, I = 45 services: nine base models x 5).
- Workload: static profiles of seed 001's nine models made here with `profile_model` (FLOPs and bytes are real)
  and a synthetic leakage table (SSIM 1 - z/L), because the shipped profiles with measured leakage may not be
  built yet; leakage values do not change the cost of evaluating.
- Actions: random; each service deployed at each server with probability 1/2 (so some requests fail), a random
  server, a random partition point of the requested service, random shares that fill each server.
- E parallel environments per call (1, 64, 256, 1024); one thread (OMP/MKL/OpenBLAS set to 1 before numpy is
  imported). Per call: median wall time over repeated calls. Also timed: `sample_slot` (the slot's draws),
  `evaluate` with a prefix cache, `update_cache`, and `sum_delay_allocation` (the exact minimum-sum-of-delays
  shares, edgeprof.optimize.allocation) for the same random association and partition.
- Reference: a plain Python loop over environments and users computing the same formulas with scalar math, on
  a smaller E, checked to agree with `evaluate`.
- Target: at least 1,000,000 user-slot evaluations per second.

    python benchmarks/sim_throughput.py [--envs 1,64,256,1024] [--loop-envs 4] [--seed 0]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "NUMEXPR_NUM_THREADS": "1"})

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from reporting import write_result
from synthetic_profiles import synthetic_profile

import edgeprof
from edgeprof.optimize.allocation import AllocationProblem, sum_delay_allocation
from edgeprof.sim import core, model
from edgeprof.sim.scenario import Scenario, load_scenario
from edgeprof.sim.workload import ServiceTable, service_table_from_profiles

TARGET_PER_S = 1_000_000
RESULTS = Path(__file__).parent / "results"


def synthetic_table(services_per_model: int) -> ServiceTable:
    """Seed 001's nine models profiled statically here, with the stand-in leakage attached."""
    import torch

    torch.set_num_threads(1)
    models = load_scenario("paper")["services.models"]
    profiles = [synthetic_profile(name) for name in models]
    return service_table_from_profiles(models, profiles, services_per_model)


def random_actions(table: ServiceTable, entities: core.Entities, slot: core.SlotDraw, rng: np.random.Generator):
    num_envs, num_users, num_servers = entities.num_envs, entities.num_users, entities.num_servers
    deployment = rng.random((num_envs, table.num_services, num_servers)) < 0.5
    association = rng.integers(0, num_servers, size=(num_envs, num_users))
    z = (rng.random((num_envs, num_users)) * (table.num_points[slot.requests] + 1)).astype(np.int64)
    shares = []
    for _ in range(2):
        weights = rng.random((num_envs, num_users)) + 0.1
        totals = model.per_server_sum(weights, association, num_servers)
        shares.append(weights / np.take_along_axis(totals, association, axis=1))
    return deployment, association, z, shares[0], shares[1]


def _seconds_for(value: float) -> float:
    return 0.0 if value <= 0 else math.inf


def scalar_evaluate(table: ServiceTable, scenario: Scenario, entities: core.Entities, slot: core.SlotDraw,
                    deployment, association, z, compute_share, bandwidth_share) -> tuple[list[list[float]], list]:
    """The same formulas as `evaluate` (no cache), one user at a time with scalar math: (delays, costs). A request
    fails if its service is not deployed at its server, a needed share is zero or it would take longer than
    `system.request_deadline_s`."""
    noise_dbm_per_hz = scenario["radio.noise_dbm_per_hz"] + scenario["radio.noise_figure_db"]
    noise_per_hz = 10 ** ((noise_dbm_per_hz - 30) / 10)
    alpha1, alpha2 = scenario["privacy.alpha1"], scenario["privacy.alpha2"]
    unit, failure = scenario["privacy.data_unit_bytes"], scenario["system.failure_delay_s"]
    deadline = scenario["system.request_deadline_s"]
    mu_privacy, mu_energy = scenario["cost.mu_privacy"], scenario["cost.mu_energy"]
    delays, costs = [], []
    for e in range(entities.num_envs):
        env_delays, privacy_sum, energy_sum = [], 0.0, 0.0
        for k in range(entities.num_users):
            service, server, point = int(slot.requests[e, k]), int(association[e, k]), int(z[e, k])
            batch = float(slot.batch[e, k])
            gain = float(slot.gains[e, server, k])
            bandwidth = float(bandwidth_share[e, k]) * float(entities.server_bandwidth_hz[e, server])
            user_power = float(entities.user_tx_power_w[e, k])
            server_power = float(entities.server_tx_power_w[e, server])
            if bandwidth > 0:
                uplink = bandwidth * math.log2(1 + user_power * gain / (noise_per_hz * bandwidth))
                downlink = bandwidth * math.log2(1 + server_power * gain / (noise_per_hz * bandwidth))
            else:
                uplink = downlink = 0.0
            edge_speed = float(compute_share[e, k]) * float(entities.server_flops_per_s[e, server])
            download_bits = 8 * float(table.prefix_param_bytes[service, point])
            upload_bits = 8 * batch * float(table.upload_bytes[service, point])
            local_flops = batch * float(table.device_flops[service, point])
            edge_flops = batch * float(table.edge_flops[service, point])
            download_s = download_bits / downlink if downlink > 0 else _seconds_for(download_bits)
            local_s = local_flops / float(entities.user_flops_per_s[e, k])
            upload_s = upload_bits / uplink if uplink > 0 else _seconds_for(upload_bits)
            edge_s = edge_flops / edge_speed if edge_speed > 0 else _seconds_for(edge_flops)
            total = download_s + local_s + upload_s + edge_s
            if bool(deployment[e, service, server]) and math.isfinite(total) and total <= deadline:
                env_delays.append(total)
                energy_sum += float(entities.user_joules_per_flop[e, k]) * local_flops + user_power * upload_s
                preference = float(entities.user_privacy_preference[e, k])
                privacy_sum += ((alpha1 + alpha2 * preference) * float(table.leakage[service, point]) * batch
                                * float(table.input_bytes[service]) / unit)
            else:
                env_delays.append(failure)
        delays.append(env_delays)
        costs.append((mu_privacy * privacy_sum + mu_energy * energy_sum) / entities.num_users)
    return delays, costs


def median_seconds(work: Callable[[], object], min_total_s: float = 0.5, min_calls: int = 7) -> float:
    """Median wall time of one call, over at least `min_calls` calls and `min_total_s` seconds (after a warm-up)."""
    work()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - started < min_total_s:
        begin = time.perf_counter_ns()
        work()
        samples.append((time.perf_counter_ns() - begin) / 1e9)
    return statistics.median(samples)


def bench_envs(table: ServiceTable, scenario: Scenario, num_envs: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    entities = core.sample_entities(scenario, num_envs, rng)
    slot = core.sample_slot(scenario, entities, rng)
    actions = random_actions(table, entities, slot, rng)
    cache = core.empty_cache(num_envs, entities.num_users, table.num_models)
    outcome = core.evaluate(table, scenario, entities, slot, *actions)
    for index in range(5):
        cache = core.update_cache(table, entities, cache, slot.requests, actions[2], outcome.success, index)
    user_slots = num_envs * entities.num_users
    evaluate_s = median_seconds(lambda: core.evaluate(table, scenario, entities, slot, *actions))
    cached_s = median_seconds(lambda: core.evaluate(table, scenario, entities, slot, *actions, cache.depth))
    draw_s = median_seconds(lambda: core.sample_slot(scenario, entities, rng))
    update_s = median_seconds(lambda: core.update_cache(table, entities, cache, slot.requests, actions[2],
                                                        outcome.success, 9))
    deployment, association, z = actions[:3]
    allocate_s = median_seconds(lambda: sum_delay_allocation(
        AllocationProblem.from_core(table, scenario, entities, slot, deployment, association, z)))
    return {
        "num_envs": num_envs,
        "user_slots_per_call": user_slots,
        "success_rate": float(outcome.success.mean()),
        "evaluate_ms": evaluate_s * 1e3,
        "user_slot_evaluations_per_s": user_slots / evaluate_s,
        "evaluate_with_cache_ms": cached_s * 1e3,
        "user_slot_evaluations_with_cache_per_s": user_slots / cached_s,
        "sample_slot_ms": draw_s * 1e3,
        "update_cache_ms": update_s * 1e3,
        "slot_draw_evaluate_and_cache_update_per_s": user_slots / (draw_s + cached_s + update_s),
        "sum_delay_allocation_ms": allocate_s * 1e3,
    }


def bench_loop(table: ServiceTable, scenario: Scenario, num_envs: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    entities = core.sample_entities(scenario, num_envs, rng)
    slot = core.sample_slot(scenario, entities, rng)
    actions = random_actions(table, entities, slot, rng)
    outcome = core.evaluate(table, scenario, entities, slot, *actions)
    delays, costs = scalar_evaluate(table, scenario, entities, slot, *actions)
    delay_difference = float(np.max(np.abs(np.array(delays) - outcome.delay_s) / outcome.delay_s))
    cost_difference = float(np.max(np.abs(np.array(costs) - outcome.cost) / np.maximum(outcome.cost, 1e-300)))
    loop_s = median_seconds(lambda: scalar_evaluate(table, scenario, entities, slot, *actions), min_calls=3)
    user_slots = num_envs * entities.num_users
    return {
        "num_envs": num_envs,
        "user_slots_per_call": user_slots,
        "loop_ms": loop_s * 1e3,
        "user_slot_evaluations_per_s": user_slots / loop_s,
        "max_relative_difference_from_evaluate": {"delay": delay_difference, "cost": cost_difference},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="1,64,256,1024")
    parser.add_argument("--loop-envs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    scenario = load_scenario("paper")
    table = synthetic_table(scenario["services.services_per_model"])
    results = []
    for num_envs in (int(value) for value in args.envs.split(",")):
        row = bench_envs(table, scenario, num_envs, args.seed)
        print(f"E = {num_envs:5d}: evaluate {row['evaluate_ms']:8.3f} ms/call, "
              f"{row['user_slot_evaluations_per_s']:12,.0f} user-slots/s "
              f"(with cache {row['user_slot_evaluations_with_cache_per_s']:12,.0f}; draw + evaluate + cache update "
              f"{row['slot_draw_evaluate_and_cache_update_per_s']:12,.0f})")
        results.append(row)
    loop = bench_loop(table, scenario, args.loop_envs, args.seed)
    print(f"python loop, E = {loop['num_envs']}: {loop['user_slot_evaluations_per_s']:12,.0f} user-slots/s; "
          f"max relative difference from evaluate {loop['max_relative_difference_from_evaluate']}")
    best = max(results, key=lambda row: row["user_slot_evaluations_per_s"])
    document = {
        "benchmark": "sim_throughput",
        "edgeprof_version": edgeprof.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "settings": {
            "scenario": "paper",
            "num_servers": scenario["system.num_servers"],
            "num_users": scenario["system.num_users"],
            "num_services": table.num_services,
            "max_partition_points": table.max_points,
            "threads": 1,
            "seed": args.seed,
            "profiles": ("static profiles of the nine seed-001 models made with profile_model in this run, with "
                         "synthetic leakage SSIM = 1 - z/L (shipped profiles with measured leakage may not exist "
                         "yet; leakage values do not change evaluation cost)"),
            "actions": "random: deployment p = 0.5, server, z of the requested service, shares filling each server",
            "statistic": "median wall time per call",
        },
        "target_user_slot_evaluations_per_s": TARGET_PER_S,
        "results": results,
        "python_loop": loop,
        "best_user_slot_evaluations_per_s": best["user_slot_evaluations_per_s"],
        "speedup_over_python_loop": best["user_slot_evaluations_per_s"] / loop["user_slot_evaluations_per_s"],
        "meets_target": best["user_slot_evaluations_per_s"] >= TARGET_PER_S,
        "wall_s": time.perf_counter() - started,
    }
    write_result(RESULTS / "sim_throughput.json", document, "best_user_slot_evaluations_per_s")
    print(f"best {best['user_slot_evaluations_per_s']:,.0f} user-slots/s at E = {best['num_envs']} "
          f"(target {TARGET_PER_S:,})")


if __name__ == "__main__":
    main()
