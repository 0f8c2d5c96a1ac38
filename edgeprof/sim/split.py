"""What splitting one model at each partition point costs, for one device, one edge server and one link.

This is the one place where a split's end-to-end latency and device energy are computed: the split advisor
(`edgeprof split`) and the simulator's Neurosurgeon-style heuristic both call `link_costs`. Profiles are the
plain dicts of `edgeprof.profiler.schema.load_profile`; nothing here imports torch.

For a request of N inputs at partition point z of L, with s = N / (the profiles' batch):

    T_device(z)  = measured prefix median x s,  or  device_flops(z) x s / f_device
    T_edge(z)    = measured suffix median x s,  or  edge_flops(z) x s / f_edge
    T_up(z)      = 8 x upload_bytes(z) x s / R_up
    T_down       = 8 x output_bytes x s / R_down                (R_down defaults to R_up)
    latency(z)   = T_device(L)                                   at z = L (the result is already on the device)
                 = T_device(z) + T_up(z) + RTT + T_edge(z) + T_down      otherwise
    E_device(z)  = E_compute(z) + P_tx x T_up(z)
    E_compute(z) = measured dynamic prefix energy x s,  or  device_flops(z) x s x joules_per_flop

Nothing runs on the device at z = 0 nor on the edge at z = L, so those compute terms are exactly 0 (a timed
empty module still reads a few microseconds). The radio model is seed 001's eq. (7): the radio draws P_tx while
it transmits the upload (its airtime, bits / R_up); the RTT wait, receiving the result, the radio's tail energy
and the device's idle power are charged to no split. E_compute is the dynamic (idle-subtracted) energy, the same
quantity as `device.joules_per_flop` and seed 001's epsilon x FLOPs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgeprof.errors import EdgeprofError

DEFAULT_TX_POWER_W = 0.2  # 23 dBm: the maximum of an LTE/5G-NR power-class-3 phone; seed 001 draws 20-30 dBm

MEASURED = "measured"
CALIBRATED_SPEED = "flops / calibrated speed"
GIVEN_SPEED = "flops / given speed"
CALIBRATED_ENERGY = "flops x calibrated J/FLOP"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Link:
    """One device's link to one edge server, in SI units. `downlink_bps=None` means the same rate as the uplink."""

    uplink_bps: float
    downlink_bps: float | None = None
    rtt_s: float = 0.0
    tx_power_w: float = DEFAULT_TX_POWER_W

    def __post_init__(self) -> None:
        if not self.uplink_bps > 0:
            raise EdgeprofError(f"the uplink rate must be positive, got {self.uplink_bps} bit/s")
        if self.downlink_bps is not None and not self.downlink_bps > 0:
            raise EdgeprofError(f"the downlink rate must be positive, got {self.downlink_bps} bit/s")
        if not self.rtt_s >= 0:
            raise EdgeprofError(f"the round-trip time must not be negative, got {self.rtt_s} s")
        if not self.tx_power_w >= 0:
            raise EdgeprofError(f"the transmit power must not be negative, got {self.tx_power_w} W")

    @property
    def result_downlink_bps(self) -> float:
        """The rate the result comes back at."""
        return self.uplink_bps if self.downlink_bps is None else self.downlink_bps


@dataclass(frozen=True)
class PointWork:
    """The part of a point's cost that no link changes: bytes to move, compute time and energy, leakage."""

    z: int
    after: str | None
    offloaded: bool  # z < L: the edge finishes the model and sends the result back
    upload_bytes: float
    result_bytes: float
    device_s: float
    edge_s: float
    compute_energy_j: float | None
    leakage: float | None


@dataclass(frozen=True)
class SplitProblem:
    """One model on one device and one edge server, every point's link-independent work, and where each
    quantity came from (`basis`: measured, FLOPs over a speed, unavailable) with the reason for each gap."""

    model: dict[str, Any]
    batch: int
    points: tuple[PointWork, ...]
    basis: dict[str, str]
    missing: dict[str, str]
    notes: tuple[str, ...]

    @property
    def has_energy(self) -> bool:
        return "device_energy" not in self.missing

    @property
    def has_leakage(self) -> bool:
        return "leakage" not in self.missing


@dataclass(frozen=True)
class PointCost:
    """A point's cost over one link, in SI units (seconds, joules, bytes); None where a quantity is unavailable."""

    z: int
    after: str | None
    upload_bytes: float
    download_bytes: float
    device_s: float
    upload_s: float
    rtt_s: float
    edge_s: float
    download_s: float
    latency_s: float
    compute_energy_j: float | None
    radio_energy_j: float
    device_energy_j: float | None
    leakage: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def point_cost(work: PointWork, link: Link) -> PointCost:
    """The formula: end-to-end latency and device energy of one point over one link (module docstring)."""
    upload_s = 8 * work.upload_bytes / link.uplink_bps
    rtt_s = link.rtt_s if work.offloaded else 0.0
    download_s = 8 * work.result_bytes / link.result_downlink_bps
    radio_energy_j = link.tx_power_w * upload_s
    return PointCost(
        z=work.z,
        after=work.after,
        upload_bytes=work.upload_bytes,
        download_bytes=work.result_bytes,
        device_s=work.device_s,
        upload_s=upload_s,
        rtt_s=rtt_s,
        edge_s=work.edge_s,
        download_s=download_s,
        latency_s=work.device_s + upload_s + rtt_s + work.edge_s + download_s,
        compute_energy_j=work.compute_energy_j,
        radio_energy_j=radio_energy_j,
        device_energy_j=None if work.compute_energy_j is None else work.compute_energy_j + radio_energy_j,
        leakage=work.leakage,
    )


def link_costs(problem: SplitProblem, link: Link) -> list[PointCost]:
    """Every point's cost over `link`, in order of z."""
    return [point_cost(work, link) for work in problem.points]


def point_costs(
    device_profile: dict[str, Any],
    edge_profile: dict[str, Any],
    link: Link,
    *,
    batch: int | None = None,
    device_flops_per_s: float | None = None,
    edge_flops_per_s: float | None = None,
) -> list[PointCost]:
    """Every point's cost for two profiles and one link: `build_split_problem`, then `link_costs`."""
    problem = build_split_problem(device_profile, edge_profile, batch=batch, device_flops_per_s=device_flops_per_s,
                                  edge_flops_per_s=edge_flops_per_s)
    return link_costs(problem, link)


def check_same_model(device_profile: dict[str, Any], edge_profile: dict[str, Any]) -> None:
    """Refuse profiles of different models, input shapes, dtypes or partition points: their costs do not add up."""
    device_model, edge_model = device_profile["model"], edge_profile["model"]
    for key, what in (("name", "models"), ("input_shape", "input shapes"), ("dtype", "dtypes")):
        if device_model[key] != edge_model[key]:
            raise EdgeprofError(
                f"the device and edge profiles are of different {what} ({_show(device_model[key])} on the device, "
                f"{_show(edge_model[key])} on the edge): profile the same model, input size and dtype on both"
            )
    device_cuts = [(p["after"], p["upload_bytes"]) for p in device_profile["partition_points"]]
    edge_cuts = [(p["after"], p["upload_bytes"]) for p in edge_profile["partition_points"]]
    if device_cuts != edge_cuts:
        raise EdgeprofError(
            f"the device and edge profiles have different partition points ({len(device_cuts)} and {len(edge_cuts)} "
            "points, or different cuts): profile both with the same --cuts"
        )


def _show(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)


def _batch_scale(profile_batch: int, batch: int | None) -> tuple[int, float, str]:
    """(batch, scale factor, what was done): exact at the profiles' batch, linear from batch 1, refused otherwise."""
    if batch is None or batch == profile_batch:
        return profile_batch, 1.0, f"batch {profile_batch}, as profiled"
    if batch < 1:
        raise EdgeprofError(f"the batch must be at least 1, got {batch}")
    if profile_batch == 1:
        return batch, float(batch), (
            f"batch {batch} from batch-1 profiles: bytes and FLOPs x {batch} (exact); measured latency and energy "
            f"x {batch} (an approximation, an upper bound that ignores the speed-up of batching)"
        )
    raise EdgeprofError(
        f"the profiles were made at batch {profile_batch}, so batch {batch} cannot be derived from them: profile at "
        f"--batch {batch} (exact) or at --batch 1 (scaled linearly, an approximation)"
    )


def _compute_seconds(profile: dict[str, Any], side: str, given_speed: float | None) -> tuple[list[float], str, str]:
    """Per-point compute time of one side (device prefix or edge suffix), its basis, and a note on the speed used."""
    points = profile["partition_points"]
    flops = [p[f"{side}_flops"] for p in points]
    if given_speed is not None:
        if not given_speed > 0:
            raise EdgeprofError(f"the {side}'s speed must be positive, got {given_speed} FLOP/s")
        return [f / given_speed for f in flops], GIVEN_SPEED, f"{side}: {given_speed / 1e9:.4g} GFLOP/s (given)"
    medians = [(p.get(f"{side}_latency_ms") or {}).get("median") for p in points]
    if all(m is not None for m in medians):
        seconds = [m / 1e3 for m in medians]
        seconds[0 if side == "device" else -1] = 0.0  # this side runs nothing there
        device = profile.get("device") or {}
        return seconds, MEASURED, f"{side}: measured on {device.get('kind', '?')} {device.get('name', '?')}"
    speed = (profile.get("device") or {}).get("flops_per_s")
    if speed:
        return [f / speed for f in flops], CALIBRATED_SPEED, f"{side}: {speed / 1e9:.4g} GFLOP/s (calibrated)"
    raise EdgeprofError(
        f"the {side} profile has neither measured {side}_latency_ms nor a calibrated device.flops_per_s: profile it "
        f"with `edgeprof profile MODEL --measure`, or give the {side}'s speed (--{side}-flops 1.5TFLOPS)"
    )


def _compute_energy(profile: dict[str, Any]) -> tuple[list[float] | None, str, str | None]:
    """Per-point dynamic energy of the device's prefix, its basis, and why it is unavailable (or None)."""
    points = profile["partition_points"]
    dynamic_mj = [(p.get("device_energy_mj") or {}).get("dynamic") for p in points]
    if all(e is not None for e in dynamic_mj):
        joules = [e / 1e3 for e in dynamic_mj]
        joules[0] = 0.0
        return joules, MEASURED, None
    device = profile.get("device")
    if device and device.get("joules_per_flop") is not None:
        return [p["device_flops"] * device["joules_per_flop"] for p in points], CALIBRATED_ENERGY, None
    if device is None:
        return None, UNAVAILABLE, "the device profile has no measurements (edgeprof profile MODEL --measure)"
    why = device.get("energy_unavailable") or "not measured"
    return None, UNAVAILABLE, f"the device profile has no energy measurement ({why}) and no device.joules_per_flop"


def _leakage(
    device_profile: dict[str, Any], edge_profile: dict[str, Any]
) -> tuple[list[float] | None, str, str | None]:
    """Per-point SSIM from the first profile (device, then edge) that has it at every point z = 1..L-1.

    z = L sends nothing, so its leakage is 0; z = 0 sends the input itself, 1 unless the profile says otherwise.
    """
    gaps = []
    for side, profile in (("device", device_profile), ("edge", edge_profile)):
        entries = [p.get("leakage") for p in profile["partition_points"]]
        if not any(entries):
            continue
        missing = [z for z, entry in enumerate(entries[1:-1], start=1) if entry is None]
        if missing:
            gaps.append(f"the {side} profile has none at z = {', '.join(map(str, missing))}")
            continue
        first = entries[0]["ssim"] if entries[0] else 1.0
        source = next(entry["source"] for entry in entries if entry)
        values = [first, *(entry["ssim"] for entry in entries[1:-1]), 0.0]
        return values, f"SSIM from the {side} profile ({source})", None
    return None, UNAVAILABLE, "; ".join(gaps) or "neither profile has per-point leakage (partition_points[].leakage)"


def build_split_problem(
    device_profile: dict[str, Any],
    edge_profile: dict[str, Any],
    *,
    batch: int | None = None,
    device_flops_per_s: float | None = None,
    edge_flops_per_s: float | None = None,
) -> SplitProblem:
    """Every point's link-independent work, from a profile of the device and one of the edge server.

    Compute time comes from an explicit speed (`*_flops_per_s`) when one is given, else from the profile's
    measured prefix (device) or suffix (edge) medians, else from FLOPs over the profile's calibrated
    `device.flops_per_s`. Device energy is the measured dynamic prefix energy, else FLOPs x
    `device.joules_per_flop`, else unavailable. `batch` defaults to the profiles' batch; another batch is
    derived only from batch-1 profiles, by scaling linearly (exact for bytes and FLOPs, an upper bound for
    measured latency and energy).
    """
    check_same_model(device_profile, edge_profile)
    model = device_profile["model"]
    batch, scale, batch_note = _batch_scale(model["batch_size"], batch)
    device_s, device_basis, device_note = _compute_seconds(device_profile, "device", device_flops_per_s)
    edge_s, edge_basis, edge_note = _compute_seconds(edge_profile, "edge", edge_flops_per_s)
    energy_j, energy_basis, energy_gap = _compute_energy(device_profile)
    leakage, leakage_basis, leakage_gap = _leakage(device_profile, edge_profile)
    last = len(device_profile["partition_points"]) - 1
    points = tuple(
        PointWork(
            z=z,
            after=point["after"],
            offloaded=z < last,
            upload_bytes=point["upload_bytes"] * scale,
            result_bytes=model["output_bytes"] * scale if z < last else 0.0,
            device_s=device_s[z] * scale,
            edge_s=edge_s[z] * scale,
            compute_energy_j=None if energy_j is None else energy_j[z] * scale,
            leakage=None if leakage is None else leakage[z],
        )
        for z, point in enumerate(device_profile["partition_points"])
    )
    missing = {key: gap for key, gap in (("device_energy", energy_gap), ("leakage", leakage_gap)) if gap is not None}
    return SplitProblem(
        model={key: model[key] for key in ("name", "input_shape", "dtype", "batch_size", "output_bytes")},
        batch=batch,
        points=points,
        basis={"device_latency": device_basis, "edge_latency": edge_basis, "upload": "bytes / uplink rate",
               "download": "model.output_bytes / downlink rate", "device_energy": energy_basis,
               "leakage": leakage_basis},
        missing=missing,
        notes=(batch_note, device_note, edge_note),
    )
