"""Profiles, scenarios and hand-made systems for the simulator tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeprof.sim.core import Entities, SlotDraw
from edgeprof.sim.scenario import Scenario, load_scenario

SMALL_MODELS = ("lenet7", "lenet12", "resnet18", "resnet50")


@functools.cache
def _static_profile(model: str) -> dict[str, Any]:
    from edgeprof.profiler.static import profile_model

    return profile_model(model)


def synthetic_profile(model: str) -> dict[str, Any]:
    """The static profile of `model` with a made-up leakage table: SSIM 1 - z/L at z = 1..L-1."""
    profile = copy.deepcopy(_static_profile(model))
    points = profile["partition_points"]
    last = len(points) - 1
    for z in range(1, last):
        points[z]["leakage"] = {"ssim": 1 - z / last, "source": "test"}
    return profile


def write_profiles(directory: Path, models: tuple[str, ...] = SMALL_MODELS) -> dict[str, str]:
    """Synthetic profiles of `models` written to `directory`; model name -> path."""
    paths = {}
    for model in models:
        path = directory / f"{model}.json"
        path.write_text(json.dumps(synthetic_profile(model)), encoding="utf-8")
        paths[model] = str(path)
    return paths


def profiles_override(paths: dict[str, str]) -> str:
    """A `services.profiles={...}` scenario override."""
    return "services.profiles={" + ", ".join(f'{model} = "{path}"' for model, path in paths.items()) + "}"


def small_scenario(directory: Path, *overrides: str) -> Scenario:
    """The `small` preset with synthetic profiles of its models, plus `overrides`."""
    return load_scenario("small", [profiles_override(write_profiles(directory)), *overrides])


def toy_profile(name: str = "toy", param_bytes: float = 6000.0) -> dict[str, Any]:
    """A hand-made 2-layer profile (the fields the simulator reads), easy to compute with by hand:

    z  device_flops  edge_flops  upload_bytes  device_param_bytes  ssim
    0  0             3e9         1000          0                   (1)
    1  1e9           2e9         500           2000                0.5
    2  3e9           0           0             param_bytes         (0)
    """
    rows = [(0.0, 3e9, 1000, 0.0), (1e9, 2e9, 500, 2000.0), (3e9, 0.0, 0, param_bytes)]
    points = [{"z": z, "device_flops": d, "edge_flops": e, "upload_bytes": u, "device_param_bytes": p}
              for z, (d, e, u, p) in enumerate(rows)]
    points[1]["leakage"] = {"ssim": 0.5, "source": "hand"}
    return {"model": {"name": name, "batch_size": 1, "input_bytes": 1000, "param_bytes": param_bytes},
            "partition_points": points}


def hand_entities(num_servers: int, num_users: int, **values: np.ndarray | float) -> Entities:
    """One environment (E = 1) whose per-server and per-user fields are the given values (default 1)."""
    per_server = ("server_flops_per_s", "server_bandwidth_hz", "server_tx_power_w", "server_storage_bytes",
                  "cloud_rate_bps")
    per_user = ("user_flops_per_s", "user_tx_power_w", "user_joules_per_flop", "user_privacy_preference",
                "user_storage_bytes")
    arrays: dict[str, np.ndarray] = {}
    for name in per_server:
        arrays[name] = np.broadcast_to(np.asarray(values.pop(name, 1.0), float), (1, num_servers)).copy()
    for name in per_user:
        arrays[name] = np.broadcast_to(np.asarray(values.pop(name, 1.0), float), (1, num_users)).copy()
    num_services = int(values.pop("num_services", 1))
    assert not values, f"unknown fields {sorted(values)}"
    return Entities(
        server_xy_m=np.zeros((1, num_servers, 2)),
        user_xy_m=np.zeros((1, num_users, 2)),
        service_popularity=np.full((1, num_services), 1 / num_services),
        path_loss_db=np.zeros((1, num_servers, num_users)),
        episode_shadowing_db=np.zeros((1, num_servers, num_users)),
        **arrays,
    )


def hand_slot(requests: list[int], batch: list[int], gains: list[list[float]]) -> SlotDraw:
    """One environment's slot: requests and batch per user, gains[j][k]."""
    return SlotDraw(requests=np.array([requests]), batch=np.array([batch]), gains=np.array([gains], dtype=float))


def assert_allowed_or_dropped(system, association: np.ndarray, z: np.ndarray) -> None:
    """Each user's point is valid for its request, and its server is allowed by `user_masks`, or does not host
    the requested service at all (a deliberate drop: the request fails, which solvers may choose)."""
    allowed, points = system.user_masks()
    assert np.take_along_axis(points, z[..., None], -1).all()
    chosen = np.take_along_axis(allowed, association[..., None], -1)[..., 0]
    envs = np.arange(system.num_envs)[:, None]
    hosted = system.deployment[envs, system.slot.requests, association]
    assert (chosen | ~hosted).all()
