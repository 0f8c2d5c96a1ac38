"""The split advisor: per-point costs computed by hand, the arg-min under constraints, the Pareto front against a
brute-force oracle, bandwidth sweeps, and `edgeprof split` refusing what it cannot answer with one line."""

from __future__ import annotations

import json
import math
import re
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.split_advisor import (
    Constraints,
    InfeasibleError,
    advise,
    choose_split,
    constraint_excess,
    log_spaced,
    non_dominated,
    objective_value,
    objective_weights,
    pareto_front,
    parse_weights,
    split_report,
    sweep_uplink,
)
from edgeprof.profiler.schema import validate_profile
from edgeprof.sim.split import (
    CALIBRATED_ENERGY,
    CALIBRATED_SPEED,
    GIVEN_SPEED,
    MEASURED,
    UNAVAILABLE,
    Link,
    PointCost,
    build_split_problem,
    link_costs,
    point_costs,
)

# A 3-layer toy: z = 0 uploads the 1x1x10x10 float32 input (400 B), z = 1 800 B, z = 2 100 B, z = 3 nothing.
TOY_FLOPS = (200, 400, 100)
TOY_CUT_BYTES = (800, 100)
TOY_OUTPUT_BYTES = 40
DEVICE_MS = (0.05, 2.0, 6.0, 7.0)  # z = 0 times an empty prefix: a few microseconds that the advisor ignores
EDGE_MS = (1.0, 0.8, 0.2, 0.02)  # z = L times an empty suffix
DEVICE_MJ = (0.0, 3.0, 9.0, 10.0)


def _stats(ms: float) -> dict[str, float]:
    return {"median": ms, "p10": ms, "p90": ms, "min": ms}


def toy_profile(*, name: str = "toy", batch: int = 1, dtype: str = "float32", device_ms=None, edge_ms=None,
                device_mj=None, device: dict | None = None, leakage=None, cut_bytes=TOY_CUT_BYTES) -> dict:
    """A valid `edgeprof.profile/1` dict of the toy model; measured keys only where given."""
    itemsize = 4 if dtype == "float32" else 2
    shape = [batch, 1, 10, 10]
    input_bytes = math.prod(shape) * itemsize
    uploads = [input_bytes, *(b * batch for b in cut_bytes), 0]
    total = sum(TOY_FLOPS)
    layers = [{"index": i + 1, "name": f"l{i + 1}", "type": "Linear", "macs": f // 2, "flops": f,
               "elementwise_flops": 0, "params": 10, "param_bytes": 40, "output_shape": [batch, 1],
               "output_bytes": uploads[i + 1] or TOY_OUTPUT_BYTES * batch} for i, f in enumerate(TOY_FLOPS)]
    points = []
    for z, upload in enumerate(uploads):
        device_flops = sum(TOY_FLOPS[:z])
        point = {"z": z, "after": None if z == 0 else f"l{z}", "single_tensor": z < len(TOY_FLOPS),
                 "tensors": [] if upload == 0 else [{"name": f"t{z}", "shape": [upload // itemsize], "dtype": dtype,
                                                     "bytes": upload}],
                 "upload_bytes": upload, "device_flops": device_flops, "edge_flops": total - device_flops,
                 "device_param_bytes": 40 * z, "edge_param_bytes": 40 * (len(TOY_FLOPS) - z)}
        if device_ms is not None:
            point["device_latency_ms"] = _stats(device_ms[z])
            point["edge_latency_ms"] = _stats(edge_ms[z])
        if device_mj is not None:
            point["device_energy_mj"] = {"total": device_mj[z] + 1.0, "dynamic": device_mj[z]}
        if leakage is not None and leakage[z] is not None:
            point["leakage"] = {"ssim": leakage[z], "psnr": None, "baseline_ssim": 0.3, "source": "test table"}
        points.append(point)
    doc = {
        "schema": "edgeprof.profile/1", "edgeprof_version": "test", "created": "2025-01-01T00:00:00Z",
        "model": {"name": name, "source": "zoo", "weights": "random init", "input_shape": shape, "dtype": dtype,
                  "batch_size": batch, "params": 30, "param_bytes": 120, "input_bytes": input_bytes,
                  "output_shape": [batch, 10], "output_bytes": TOY_OUTPUT_BYTES * batch},
        "counting": {"tool": "test", "torch": "none", "mac_to_flop": 2, "bias": False, "elementwise": "separate",
                     "uncounted_ops": {}},
        "totals": {"macs": total // 2, "flops": total, "elementwise_flops": 0},
        "layers": layers,
        "partition_points": points,
    }
    if device is not None:
        doc["device"] = {"kind": "cpu", "name": "toy cpu", **device}
    return validate_profile(doc)


def measured(**extra) -> dict:
    return toy_profile(device_ms=DEVICE_MS, edge_ms=EDGE_MS, device_mj=DEVICE_MJ,
                       device={"flops_per_s": 1e5, "joules_per_flop": 1e-5}, **extra)


# Link: 8000 bit/s up (1000 B/s), 4000 bit/s down (500 B/s), RTT 10 ms, 0.5 W while transmitting.
TOY_LINK = Link(uplink_bps=8000, downlink_bps=4000, rtt_s=0.010, tx_power_w=0.5)


def test_end_to_end_latency_and_energy_by_hand():
    costs = point_costs(measured(), measured(), TOY_LINK)
    z1 = costs[1]
    assert z1.device_s == pytest.approx(0.002)
    assert z1.upload_s == pytest.approx(0.8)  # 800 B x 8 / 8000 bit/s
    assert z1.rtt_s == pytest.approx(0.010)
    assert z1.edge_s == pytest.approx(0.0008)
    assert z1.download_s == pytest.approx(0.08)  # 40 B x 8 / 4000 bit/s
    assert z1.latency_s == pytest.approx(0.002 + 0.8 + 0.010 + 0.0008 + 0.08)
    assert z1.radio_energy_j == pytest.approx(0.4)  # 0.5 W x 0.8 s of airtime; the RTT is not transmission
    assert z1.device_energy_j == pytest.approx(0.003 + 0.4)
    z0, last = costs[0], costs[-1]
    assert z0.device_s == 0.0 and z0.compute_energy_j == 0.0  # nothing runs on the device at z = 0
    assert z0.latency_s == pytest.approx(0.4 + 0.010 + 0.001 + 0.08)
    assert z0.device_energy_j == pytest.approx(0.5 * 0.4)
    assert (last.upload_s, last.rtt_s, last.edge_s, last.download_s) == (0.0, 0.0, 0.0, 0.0)  # result on device
    assert last.latency_s == pytest.approx(0.007) and last.device_energy_j == pytest.approx(0.010)


def test_downlink_defaults_to_the_uplink():
    costs = point_costs(measured(), measured(), Link(uplink_bps=8000))
    assert costs[1].download_s == pytest.approx(40 * 8 / 8000)
    assert costs[1].rtt_s == 0.0


def test_each_quantity_says_where_it_came_from():
    problem = build_split_problem(measured(), measured())
    assert problem.basis["device_latency"] == MEASURED and problem.basis["edge_latency"] == MEASURED
    assert problem.basis["device_energy"] == MEASURED
    assert problem.basis["leakage"] == UNAVAILABLE and not problem.has_leakage


def test_without_measurements_it_falls_back_to_calibrated_speed_and_energy_per_flop():
    static = toy_profile(device={"flops_per_s": 1e4, "joules_per_flop": 1e-6})
    problem = build_split_problem(static, static)
    assert problem.basis["device_latency"] == CALIBRATED_SPEED
    assert problem.basis["device_energy"] == CALIBRATED_ENERGY
    costs = link_costs(problem, TOY_LINK)
    assert costs[2].device_s == pytest.approx(600 / 1e4)
    assert costs[2].edge_s == pytest.approx(100 / 1e4)
    assert costs[2].compute_energy_j == pytest.approx(600 * 1e-6)


def test_a_given_speed_wins_over_measurements():
    problem = build_split_problem(measured(), measured(), device_flops_per_s=1e3, edge_flops_per_s=1e6)
    assert problem.basis["device_latency"] == GIVEN_SPEED
    assert problem.points[1].device_s == pytest.approx(200 / 1e3)
    assert problem.points[1].edge_s == pytest.approx(500 / 1e6)
    assert problem.basis["device_energy"] == MEASURED  # a speed says nothing about energy


def test_a_static_profile_without_a_speed_is_refused():
    with pytest.raises(EdgeprofError, match=r"neither measured device_latency_ms nor a calibrated .*--device-flops"):
        build_split_problem(toy_profile(), toy_profile())


def test_energy_without_measurement_or_joules_per_flop_is_unavailable_and_the_energy_objective_refused():
    problem = build_split_problem(toy_profile(), toy_profile(), device_flops_per_s=1e4, edge_flops_per_s=1e5)
    assert not problem.has_energy
    assert link_costs(problem, TOY_LINK)[1].device_energy_j is None
    with pytest.raises(EdgeprofError, match="energy objective or weight needs device energy, which is unavailable: "
                                            "the device profile has no measurements"):
        advise(problem, TOY_LINK, "energy")


def test_batch_scales_bytes_and_work_from_batch_1_and_says_it_is_an_approximation():
    one = link_costs(build_split_problem(measured(), measured()), TOY_LINK)
    problem = build_split_problem(measured(), measured(), batch=4)
    four = link_costs(problem, TOY_LINK)
    assert problem.batch == 4 and "approximation" in problem.notes[0]
    for a, b in zip(one, four, strict=True):
        assert b.upload_bytes == 4 * a.upload_bytes and b.download_bytes == 4 * a.download_bytes
        assert b.device_s == pytest.approx(4 * a.device_s) and b.edge_s == pytest.approx(4 * a.edge_s)
        assert b.device_energy_j == pytest.approx(4 * a.device_energy_j)
        assert b.rtt_s == a.rtt_s  # one request, one round trip


def test_batch_of_a_batched_profile_is_exact_or_refused():
    batched = toy_profile(batch=2, device={"flops_per_s": 1e4})
    problem = build_split_problem(batched, batched, batch=2)
    assert problem.batch == 2 and problem.points[1].upload_bytes == 1600
    with pytest.raises(EdgeprofError, match="profiles were made at batch 2, so batch 3 cannot be derived"):
        build_split_problem(batched, batched, batch=3)


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (lambda: toy_profile(name="other", device={"flops_per_s": 1e4}), r"different models \(toy on the device, oth"),
        (lambda: toy_profile(batch=2, device={"flops_per_s": 1e4}), r"different input shapes \(1x1x10x10 .*2x1x10x10"),
        (lambda: toy_profile(dtype="float16", device={"flops_per_s": 1e4}), r"different dtypes \(float32"),
        (lambda: toy_profile(cut_bytes=(800, 200), device={"flops_per_s": 1e4}), "different partition points"),
    ],
)
def test_profiles_of_different_models_shapes_dtypes_or_cuts_are_refused(edge, message):
    with pytest.raises(EdgeprofError, match=message):
        build_split_problem(toy_profile(device={"flops_per_s": 1e4}), edge())


def test_leakage_comes_from_the_profile_with_z_L_at_zero():
    leaky = measured(leakage=(None, 0.6, 0.2, None))
    problem = build_split_problem(measured(), leaky)  # the device profile has none: the edge profile's is used
    assert [p.leakage for p in problem.points] == [1.0, 0.6, 0.2, 0.0]
    assert problem.basis["leakage"] == "SSIM from the edge profile (test table)"
    advice = advise(problem, TOY_LINK, "privacy")
    assert advice.best.z == 3  # nothing leaves the device
    limited = advise(problem, Link(uplink_bps=1e9), "latency", constraints=Constraints(max_leakage=0.5))
    assert limited.best.z == 2  # z = 0 and z = 1 leak more than 0.5; z = 2 beats z = 3 on a fast link


def test_partial_leakage_is_unavailable_and_refused_for_privacy():
    problem = build_split_problem(measured(leakage=(1.0, 0.6, None, None)), measured())
    assert not problem.has_leakage
    with pytest.raises(EdgeprofError, match="privacy objective or weight needs per-point leakage .* has none at z = 2"):
        advise(problem, TOY_LINK, "privacy")
    with pytest.raises(EdgeprofError, match="leakage limit needs per-point leakage"):
        advise(problem, TOY_LINK, "latency", constraints=Constraints(max_leakage=0.3))


def test_infinite_bandwidth_and_a_faster_edge_pick_z0_and_no_bandwidth_picks_z_L():
    from edgeprof.profiler.static import profile_model

    lenet = profile_model("lenet7")
    problem = build_split_problem(lenet, lenet, device_flops_per_s=1e9, edge_flops_per_s=1e10)
    assert advise(problem, Link(uplink_bps=math.inf)).best.z == 0
    assert advise(problem, Link(uplink_bps=1e-3)).best.z == len(lenet["layers"])


def test_infeasible_constraints_name_the_closest_point_and_the_miss():
    problem = build_split_problem(measured(), measured())
    with pytest.raises(InfeasibleError) as error:
        advise(problem, TOY_LINK, constraints=Constraints(max_latency_s=0.005))
    assert error.value.closest.z == 3
    assert str(error.value) == ("no partition point meets latency <= 5 ms; the closest is z=3 (after l3) with latency "
                                "7 ms (2 ms over)")


def test_the_closest_point_misses_every_limit_by_the_least():
    problem = build_split_problem(measured(), measured())
    with pytest.raises(InfeasibleError) as error:  # z = 3 misses by 17% and 11%, z = 2 (196 ms, 59 mJ) by far more
        advise(problem, TOY_LINK, constraints=Constraints(max_latency_s=0.006, max_energy_j=0.009))
    assert str(error.value) == ("no partition point meets latency <= 6 ms and device energy <= 9 mJ; the closest is "
                                "z=3 (after l3) with latency 7 ms (1 ms over), device energy 10 mJ (1 mJ over)")


def _cost(z: int, latency: float, energy: float | None, leakage: float | None) -> PointCost:
    return PointCost(z=z, after=f"l{z}", upload_bytes=0.0, download_bytes=0.0, device_s=latency, upload_s=0.0,
                     rtt_s=0.0, edge_s=0.0, download_s=0.0, latency_s=latency, compute_energy_j=energy,
                     radio_energy_j=0.0, device_energy_j=energy, leakage=leakage)


small = st.floats(min_value=0, max_value=10, allow_nan=False)
costs_lists = st.lists(st.tuples(small, small, small), min_size=1, max_size=12).map(
    lambda rows: [_cost(z, *row) for z, row in enumerate(rows)])


@settings(max_examples=200, deadline=None)
@given(costs=costs_lists, weights=st.tuples(small, small, small), limits=st.tuples(small, small, small),
       use=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_the_best_point_is_the_argmin_over_the_feasible_points(costs, weights, limits, use):
    chosen = {name: w for name, w in zip(("latency", "energy", "privacy"), weights, strict=True) if w > 0}
    chosen = chosen or {"latency": 1.0}
    constraints = Constraints(*(limit if on else None for limit, on in zip(limits, use, strict=True)))
    feasible = [c for c in costs if all(getattr(c, name) <= limit for name, _, limit, _ in constraints.limits())]
    if not feasible:
        with pytest.raises(InfeasibleError):
            choose_split(costs, chosen, constraints)
        return
    best = choose_split(costs, chosen, constraints)
    assert not constraint_excess(best, constraints)
    assert objective_value(best, chosen) == min(objective_value(c, chosen) for c in feasible)


def _brute_force_front(vectors: list[tuple[float, ...]]) -> list[int]:
    def dominated(i: int) -> bool:
        return any(all(a <= b for a, b in zip(other, vectors[i], strict=True)) and other != vectors[i]
                   for other in vectors)

    return [i for i in range(len(vectors)) if not dominated(i)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 4)] * 3), max_size=20))
def test_pareto_front_is_exactly_the_non_dominated_points(vectors):
    assert non_dominated(vectors) == _brute_force_front(vectors)


def test_pareto_front_uses_the_quantities_every_point_has():
    costs = [_cost(0, 1.0, None, 0.9), _cost(1, 2.0, None, 0.5), _cost(2, 3.0, None, 0.7), _cost(3, 1.0, None, 0.9)]
    assert [c.z for c in pareto_front(costs)] == [0, 1, 3]  # equal vectors both stay; z = 2 loses to z = 1


def test_advice_marks_the_front_and_the_report_has_si_keys():
    problem = build_split_problem(measured(), measured(leakage=(None, 0.6, 0.2, None)))
    advice = advise(problem, TOY_LINK, "weighted", {"latency": 1, "energy": 0.5, "privacy": 2})
    vectors = [(c.latency_s, c.device_energy_j, c.leakage) for c in advice.costs]
    assert advice.pareto_z == _brute_force_front(vectors)
    expected = min(advice.costs, key=lambda c: c.latency_s + 0.5 * c.device_energy_j + 2 * c.leakage)
    assert advice.best.z == expected.z
    report = json.loads(json.dumps(split_report(problem, advice)))
    assert report["schema"] == "edgeprof.split/1" and report["advice"]["best"]["z"] == expected.z
    assert [p["pareto"] for p in report["advice"]["points"]] == [c.z in advice.pareto_z for c in advice.costs]
    assert report["advice"]["link"] == {"uplink_bps": 8000, "downlink_bps": 4000, "rtt_s": 0.01, "tx_power_w": 0.5}


@pytest.mark.parametrize(
    ("objective", "weights", "message"),
    [
        ("latency", {"energy": 1.0}, "weights apply to the weighted objective only"),
        ("weighted", None, "the weighted objective needs weights"),
        ("weighted", {"latency": 0.0}, "at least one weight above 0"),
        ("speed", None, "unknown objective 'speed'"),
    ],
)
def test_objective_and_weights_must_agree(objective, weights, message):
    with pytest.raises(EdgeprofError, match=message):
        objective_weights(objective, weights)


def test_parse_weights():
    assert parse_weights("latency=1, energy=0.5,privacy=2") == {"latency": 1.0, "energy": 0.5, "privacy": 2.0}
    for text, message in (("speed=1", "cannot read 'speed=1'"), ("latency=x", "'x' is not a number"),
                          ("latency=-1", "must be a finite number >= 0"), ("latency=1,latency=2", "given twice")):
        with pytest.raises(EdgeprofError, match=message):
            parse_weights(text)


def test_sweep_moves_from_local_to_offload_as_bandwidth_grows():
    fast_edge = toy_profile(device={"flops_per_s": 1e7})
    problem = build_split_problem(toy_profile(device={"flops_per_s": 1e4}), fast_edge)
    rates = log_spaced(1e2, 1e9, 8)
    assert rates[0] == pytest.approx(1e2) and rates[1] == pytest.approx(1e3) and rates[-1] == pytest.approx(1e9)
    sweep = sweep_uplink(problem, rates, Link(uplink_bps=1.0))
    best = [point.z for point in sweep.best]
    assert best[0] == 3 and best[-1] == 0
    for link, costs, point in zip(sweep.links, sweep.costs, sweep.best, strict=True):
        assert link.result_downlink_bps == link.uplink_bps  # the downlink follows the uplink
        assert point.latency_s == min(c.latency_s for c in costs)


def test_sweep_keeps_infeasible_rates_as_none_and_refuses_when_all_are():
    problem = build_split_problem(measured(), measured())
    sweep = sweep_uplink(problem, [8e3, 8e6], Link(uplink_bps=1.0), constraints=Constraints(max_latency_s=0.0069))
    assert sweep.best[0] is None and sweep.best[1].z == 0  # at 8 Mbit/s z = 0 takes 1.44 ms
    with pytest.raises(InfeasibleError, match=r"at any uplink rate of the sweep \(at 8 Mbit/s\); the closest is z=0"):
        sweep_uplink(problem, [8e3, 8e6], Link(uplink_bps=1.0), constraints=Constraints(max_latency_s=0.001))


# The command line.


@pytest.fixture
def toy_files(tmp_path):
    device, edge = tmp_path / "device.json", tmp_path / "edge.json"
    device.write_text(json.dumps(measured(leakage=(None, 0.6, 0.2, None))))
    edge.write_text(json.dumps(measured()))
    return device, edge


def test_cli_writes_the_same_numbers_as_the_python_api(run_cli, toy_files, tmp_path):
    device, edge = toy_files
    out, png = tmp_path / "split.json", tmp_path / "split.png"
    result = run_cli("split", device, edge, "--uplink", "8kbps", "--downlink", "0.5kB/s", "--rtt", "10ms",
                     "--tx-power", "500mW", "--max-leakage", "0.5", "-o", out, "--plot", png)
    assert result.code == 0, result.err
    report = json.loads(out.read_text())
    problem = build_split_problem(json.loads(device.read_text()), json.loads(edge.read_text()))
    expected = advise(problem, TOY_LINK, constraints=Constraints(max_leakage=0.5))
    assert report["advice"]["best"] == expected.best.as_dict()
    assert [p["latency_s"] for p in report["advice"]["points"]] == [c.latency_s for c in expected.costs]
    assert [p["feasible"] for p in report["advice"]["points"]] == [False, False, True, True]
    assert report["basis"]["device_latency"] == "measured"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"best for latency: z={expected.best.z} (after l{expected.best.z})" in result.out


def test_cli_sweep_prints_a_table_and_draws_the_figure(run_cli, toy_files, tmp_path):
    device, edge = toy_files
    out, png = tmp_path / "sweep.json", tmp_path / "sweep.png"
    result = run_cli("split", device, edge, "--sweep-uplink", "1kbps:1Gbps", "--sweep-points", "7", "-o", out,
                     "--plot", png)
    assert result.code == 0, result.err
    sweep = json.loads(out.read_text())["sweep"]
    assert [link["uplink_bps"] for link in sweep["links"]] == pytest.approx([10.0**k for k in range(3, 10)])
    assert sweep["best"][0]["z"] == 3 and sweep["best"][-1]["z"] == 0
    assert len(sweep["strategies"]) == 4 and "advice" not in json.loads(out.read_text())
    assert "Best point (latency) by uplink rate" in result.out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _write(tmp_path, name: str, profile: dict):
    path = tmp_path / name
    path.write_text(json.dumps(profile))
    return path


@pytest.mark.parametrize(
    ("edge", "args", "message"),
    [
        (lambda t: _write(t, "o.json", toy_profile(name="other", device={"flops_per_s": 1}, device_ms=DEVICE_MS,
                                                   edge_ms=EDGE_MS)),
         ["--uplink", "20Mbps"], "different models"),
        (lambda t: _write(t, "o.json", toy_profile(dtype="float16", device={"flops_per_s": 1}, device_ms=DEVICE_MS,
                                                   edge_ms=EDGE_MS)),
         ["--uplink", "20Mbps"], "different dtypes"),
        (None, ["--uplink", "20Mbs"], "--uplink: unknown bit-rate unit 'Mbs'"),
        (None, ["--uplink", "20MBps"], "--uplink: .*written for both bits and bytes"),
        (None, ["--uplink", "20Mbps", "--rtt", "10"], "--rtt: '10' has no unit"),
        (None, ["--uplink", "20Mbps", "--device-flops", "1TFLOPs"], "--device-flops: .*FLOPs is a count"),
        (None, ["--uplink", "20Mbps", "--max-latency", "1us"],
         r"no partition point meets latency <= 1 µs; the closest is z=0 \(the input\) with latency 1.18 ms "
         r"\(1.18 ms over\)"),
        (None, ["--uplink", "20Mbps", "--objective", "privacy"], "privacy objective or weight needs per-point leakage"),
        (None, ["--uplink", "20Mbps", "--max-leakage", "0.3"], "leakage limit needs per-point leakage"),
        (None, ["--uplink", "20Mbps", "--objective-weights", "latency=1"],
         "weights apply to the weighted objective only"),
        (None, ["--uplink", "20Mbps", "--objective", "weighted", "--objective-weights", "latency"],
         "cannot read 'latency'"),
        (None, ["--uplink", "20Mbps", "--batch", "0"], "--batch"),
        (None, [], "give the link's rate: --uplink RATE"),
        (None, ["--sweep-uplink", "1Gbps:1Mbps"], "--sweep-uplink: the low end"),
    ],
)
def test_cli_refuses_with_one_line_exit_2_and_no_output(run_cli, tmp_path, edge, args, message):
    device = _write(tmp_path, "d.json", measured())
    edge_path = edge(tmp_path) if edge else device
    out = tmp_path / "out.json"
    result = run_cli("split", device, edge_path, *args, "-o", out)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: ")
    assert re.search(message, lines[0])
    assert not out.exists()


def test_cli_energy_objective_without_energy_is_refused(run_cli, tmp_path):
    static = _write(tmp_path, "s.json", toy_profile(device={"flops_per_s": 1e4}))
    result = run_cli("split", static, static, "--uplink", "1Mbps", "--objective", "energy")
    assert result.code == 2
    assert ("energy objective or weight needs device energy, which is unavailable: the device profile has no energy "
            "measurement (not measured) and no device.joules_per_flop") in result.err


def test_cli_batch_4_from_batch_1_profiles(run_cli, toy_files, tmp_path):
    device, edge = toy_files
    out = tmp_path / "b.json"
    assert run_cli("split", device, edge, "--uplink", "8kbps", "--batch", "4", "-q", "-o", out).code == 0
    report = json.loads(out.read_text())
    assert report["batch"] == 4 and "approximation" in report["notes"][0]
    assert report["advice"]["points"][1]["upload_bytes"] == 4 * 800


def test_every_combination_of_quantities_has_a_front():
    for energy, leakage in product((None, 1.0), (None, 0.5)):
        costs = [_cost(0, 1.0, energy, leakage), _cost(1, 2.0, energy, leakage)]
        assert [c.z for c in pareto_front(costs)] == [0]


def test_cli_writes_both_outputs_or_neither(run_cli, toy_files, tmp_path, monkeypatch):
    from edgeprof.optimize import split_advisor

    device, edge = toy_files
    out, png = tmp_path / "advice.json", tmp_path / "advice.png"

    def broken_plot(figure, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(split_advisor, "save_png", broken_plot)
    result = run_cli("split", device, edge, "--uplink", "8kbps", "-o", out, "--plot", png)
    assert result.code == 2 and "No space left on device" in result.err
    assert not out.exists() and not png.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([device.name, edge.name])
