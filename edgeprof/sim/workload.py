"""Services as numpy tables built from profiles: what each partition point of each service costs.

The simulators read per-sample numbers from `edgeprof.profile/1` files (batch 1) and never import torch. Service
i is offered by base model `i // services_per_model`: the services of one model share its profile (the same
weights, FLOPs and bytes) but are deployed, requested and counted separately, as in seed 001 (nine base models,
five services each, I = 45). Leakage (eq. 3's SSIM) is required only by the systems that score privacy
(`require_leakage`); without it the column holds NaN where the profile has no table.

Every per-point array has shape (I, Lmax + 1), row i holding z = 0..L_i and padded beyond L_i with the values
of z = L_i (local-only: no edge work, no upload, no leakage), so that a gather never reads garbage; `valid`
marks the real points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprof.data import shipped_profile
from edgeprof.errors import EdgeprofError
from edgeprof.profiler.schema import load_profile
from edgeprof.sim.scenario import Scenario

PER_POINT_FIELDS = ("device_flops", "edge_flops", "upload_bytes", "prefix_param_bytes", "leakage")


@dataclass(frozen=True)
class ServiceTable:
    """Per-sample workload of every service at every partition point (SI units: FLOPs, bytes).

    Per point, shape (I, Lmax + 1): `device_flops` (layers 1..z, Omega_U), `edge_flops` (layers z+1..L,
    Omega_E), `upload_bytes` (D_up; the input at z = 0, nothing at z = L), `prefix_param_bytes` (D_U: the
    parameters a device needs to run layers 1..z), `leakage` (SSIM, eq. 3: 1 at z = 0, 0 at z = L), `valid`.
    Per service, shape (I,): `num_points` (L_i), `input_bytes` (D_raw), `model_bytes` (D_i, the whole model's
    parameters: storage in C7 and migration in eq. 23), `base_model` (index into `base_names`).
    """

    base_names: tuple[str, ...]
    services_per_model: int
    model_names: tuple[str, ...]
    base_model: np.ndarray
    num_points: np.ndarray
    input_bytes: np.ndarray
    model_bytes: np.ndarray
    valid: np.ndarray
    device_flops: np.ndarray
    edge_flops: np.ndarray
    upload_bytes: np.ndarray
    prefix_param_bytes: np.ndarray
    leakage: np.ndarray

    @property
    def num_services(self) -> int:
        return len(self.model_names)

    @property
    def num_models(self) -> int:
        return len(self.base_names)

    @property
    def max_points(self) -> int:
        """Lmax: the deepest partition point of any service."""
        return self.valid.shape[1] - 1

    @property
    def model_prefix_param_bytes(self) -> np.ndarray:
        """(num_models, Lmax + 1): `prefix_param_bytes` per base model (what a user's prefix cache holds)."""
        return self.prefix_param_bytes[:: self.services_per_model]


def _leakage_column(name: str, points: list[dict[str, Any]], required: bool) -> list[float]:
    """Eq. 3's leakage at z = 0..L: 1 at z = 0, 0 at z = L, the profile's SSIM in between (refused if absent
    and `required`, else NaN)."""
    last = len(points) - 1
    missing = [z for z in range(1, last) if (points[z].get("leakage") or {}).get("ssim") is None]
    if missing and required:
        shown = ", ".join(map(str, missing))
        raise EdgeprofError(f"profile {name} has no leakage at z={shown}: attach a table with "
                            f"`edgeprof profile {name} --leakage ...`")
    ssim = [float("nan") if z in missing else float(points[z]["leakage"]["ssim"]) for z in range(1, last)]
    return [1.0, *ssim, 0.0]


def _check_profile(name: str, profile: dict[str, Any]) -> None:
    batch = profile["model"]["batch_size"]
    if batch != 1:
        raise EdgeprofError(f"profile {name} was made at batch {batch}: the simulator needs per-sample numbers, "
                            f"so profile it with `edgeprof profile {name} --batch 1`")
    if len(profile["partition_points"]) < 2:
        raise EdgeprofError(f"profile {name} has no partition point besides z = 0: it cannot be split")


def service_table_from_profiles(
    names: Sequence[str], profiles: Sequence[dict[str, Any]], services_per_model: int, require_leakage: bool = True
) -> ServiceTable:
    """The table of `len(names) x services_per_model` services from one profile per base model."""
    if len(names) != len(profiles) or not names:
        raise EdgeprofError("give one profile for each of at least one base model")
    if services_per_model < 1:
        raise EdgeprofError(f"services_per_model must be at least 1, got {services_per_model}")
    for name, profile in zip(names, profiles, strict=True):
        _check_profile(name, profile)
    max_points = max(len(p["partition_points"]) - 1 for p in profiles)
    columns = {field: np.zeros((len(names), max_points + 1)) for field in PER_POINT_FIELDS}
    valid = np.zeros((len(names), max_points + 1), dtype=bool)
    for m, (name, profile) in enumerate(zip(names, profiles, strict=True)):
        points = profile["partition_points"]
        last = len(points) - 1
        values = {
            "device_flops": [float(p["device_flops"]) for p in points],
            "edge_flops": [float(p["edge_flops"]) for p in points],
            "upload_bytes": [float(p["upload_bytes"]) for p in points[:-1]] + [0.0],
            "prefix_param_bytes": [float(p["device_param_bytes"]) for p in points],
            "leakage": _leakage_column(name, points, require_leakage),
        }
        for field, column in values.items():
            columns[field][m, : last + 1] = column
            columns[field][m, last + 1 :] = column[-1]
        valid[m, : last + 1] = True
    per_service = np.arange(len(names) * services_per_model) // services_per_model

    def expand(array: np.ndarray) -> np.ndarray:
        expanded = np.ascontiguousarray(array[per_service])
        expanded.setflags(write=False)
        return expanded

    return ServiceTable(
        base_names=tuple(names),
        services_per_model=services_per_model,
        model_names=tuple(names[m] for m in per_service),
        base_model=expand(np.arange(len(names))),
        num_points=expand(np.array([len(p["partition_points"]) - 1 for p in profiles])),
        input_bytes=expand(np.array([float(p["model"]["input_bytes"]) for p in profiles])),
        model_bytes=expand(np.array([float(p["model"]["param_bytes"]) for p in profiles])),
        valid=expand(valid),
        **{field: expand(column) for field, column in columns.items()},
    )


def read_profile(name: str, path: str | None) -> dict[str, Any]:
    """The profile of model `name`: the file at `path` when given (it must profile that model), else the shipped
    one."""
    if path is None:
        return shipped_profile(name)
    if not Path(path).is_file():
        raise EdgeprofError(f"the profile of {name} ({path}) does not exist: fix services.profiles or make it "
                            f"with `edgeprof profile {name} --leakage ...`")
    profile = load_profile(path)
    profiled = profile["model"]["name"]
    if profiled != name and Path(profiled).stem != name:
        raise EdgeprofError(f"the profile given for {name} ({path}) profiles {profiled!r}: give {name}'s profile "
                            "or rename the model")
    return profile


def num_services(scenario: Scenario) -> int:
    """I: every base model offered `services.services_per_model` times."""
    return len(scenario["services.models"]) * scenario["services.services_per_model"]


def load_service_table(scenario: Scenario, require_leakage: bool = True) -> ServiceTable:
    """The scenario's services: `services.profiles[model]` where given, else the shipped profile of each model."""
    names = list(scenario["services.models"])
    paths = scenario["services.profiles"]
    profiles = [read_profile(name, paths.get(name)) for name in names]
    return service_table_from_profiles(names, profiles, scenario["services.services_per_model"], require_leakage)
