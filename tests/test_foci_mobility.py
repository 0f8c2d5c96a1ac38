"""Mobility for the foci system: the trace CSV round trip and its refusals, Porto's POLYLINE converter (on a small
sample we wrote in Kaggle's train.csv format: the real data cannot be downloaded here), the seeded
random-waypoint generator, trip following, and seeded k-means edge placement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.foci import FociEnv
from edgeprof.sim.mobility import (
    PORTO_DOWNTOWN,
    RandomWaypoint,
    Trace,
    TraceMobility,
    convert_porto,
    kmeans,
    read_trace,
    write_trace,
)
from edgeprof.sim.scenario import load_scenario

PORTO_HEADER = '"TRIP_ID","CALL_TYPE","ORIGIN_CALL","ORIGIN_STAND","TAXI_ID","TIMESTAMP","DAY_TYPE","MISSING_DATA",' \
               '"POLYLINE"\n'


def porto_row(trip: str, fixes: list[tuple[float, float]], missing: str = "False") -> str:
    """One train.csv row: POLYLINE holds [longitude, latitude] pairs."""
    polyline = json.dumps([[lon, lat] for lat, lon in fixes])
    return f'"{trip}","C","","","20000589","1372636858","A","{missing}","{polyline}"\n'


def downtown_walk(count: int, start=(41.1450, -8.6150), step=(0.0004, 0.0003)) -> list[tuple[float, float]]:
    return [(start[0] + i * step[0], start[1] + i * step[1]) for i in range(count)]


def test_trace_round_trip_in_metres_and_degrees(tmp_path):
    rng = np.random.default_rng(0)
    for columns in (("x_m", "y_m"), ("lat", "lon")):
        scale = np.array([1.0, 1.0]) if columns == ("x_m", "y_m") else np.array([1e-3, 1e-3])
        trace = Trace(columns, ("taxi 1", "b,2"), (np.array([0.0, 15.0, 30.5]), np.array([3.0, 4.0])),
                      (rng.uniform(0, 900, (3, 2)) * scale + [41, -8] * (scale < 1),
                       rng.uniform(0, 900, (2, 2)) * scale + [41, -8] * (scale < 1)))
        path = tmp_path / f"{columns[0]}.csv"
        write_trace(path, trace)
        back = read_trace(path)
        assert back.columns == columns and back.devices == trace.devices
        for a, b in zip(back.times_s + back.coordinates, trace.times_s + trace.coordinates, strict=True):
            assert np.array_equal(a, b)


def test_lat_lon_project_to_metres():
    trace = Trace(("lat", "lon"), ("a",), (np.array([0.0, 1.0]),), (np.array([[41.0, -8.6], [41.001, -8.599]]),))
    (positions,) = trace.positions_m()
    assert positions[0] == pytest.approx([0.0, 0.0])
    assert positions[1][1] == pytest.approx(111.19, abs=0.01)  # a thousandth of a degree of latitude
    assert positions[1][0] == pytest.approx(111.19 * np.cos(np.radians(41.0005)), abs=0.01)


@pytest.mark.parametrize(("text", "message"), [
    ("device,time,x_m,y_m\n", "line 1: the header must be device,t_s,x_m,y_m or device,t_s,lat,lon"),
    ("device,t_s,x_m,y_m\na,0,1\n", "line 2: expected 4 fields"),
    ("device,t_s,x_m,y_m\na,0,1,2\na,x,1,2\n", "line 3: t_s 'x' is not a number"),
    ("device,t_s,x_m,y_m\na,0,1,2\na,0,3,4\n", "line 3: t_s 0 of device 'a' does not follow its previous fix"),
    ("device,t_s,lat,lon\na,0,95,2\n", "line 2: lat must lie in [-90, 90]"),
    ("device,t_s,x_m,y_m\n,0,1,2\n", "line 2: the device name is empty"),
    ("device,t_s,x_m,y_m\na,0,nan,2\n", "line 2: x_m must be finite"),
    ("device,t_s,x_m,y_m\n", "has no fixes"),
])
def test_bad_trace_lines_are_refused_with_their_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(EdgeprofError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_trace(path)


def test_porto_converter_keeps_the_longest_run_inside_the_box(tmp_path):
    outside = (41.17, -8.58)
    source = tmp_path / "train.csv"
    source.write_text(PORTO_HEADER
                      + porto_row("T1", downtown_walk(5))
                      + porto_row("T2", [outside, *downtown_walk(2), outside, *downtown_walk(4, (41.146, -8.612))])
                      + porto_row("T3", downtown_walk(6), missing="True")
                      + porto_row("T4", [outside, outside])
                      + porto_row("T5", downtown_walk(1)))
    count = convert_porto(source, tmp_path / "trace.csv")
    trace = read_trace(tmp_path / "trace.csv")
    assert count == 2 and trace.devices == ("T1", "T2") and trace.columns == ("lat", "lon")
    assert trace.times_s[0].tolist() == [0.0, 15.0, 30.0, 45.0, 60.0]
    assert trace.coordinates[0] == pytest.approx(np.array(downtown_walk(5)))
    assert trace.coordinates[1] == pytest.approx(np.array(downtown_walk(4, (41.146, -8.612))))
    lat_min, lat_max, lon_min, lon_max = PORTO_DOWNTOWN
    side_ns = (lat_max - lat_min) * 111_195
    side_ew = (lon_max - lon_min) * 111_195 * np.cos(np.radians(41.1496))
    assert side_ns * side_ew / 1e6 == pytest.approx(2.5, rel=0.01)  # the paper's 2.5 km^2
    assert convert_porto(source, tmp_path / "one.csv", max_trips=1) == 1


def test_porto_converter_refuses_a_broken_file(tmp_path):
    source = tmp_path / "train.csv"
    source.write_text('"TRIP_ID","POLYLINE"\n"T1","[]"\n')
    with pytest.raises(EdgeprofError, match="lacks column"):
        convert_porto(source, tmp_path / "out.csv")
    source.write_text(PORTO_HEADER + '"T1","C","","","2","1","A","False","[[-8.61, oops]]"\n')
    with pytest.raises(EdgeprofError, match="line 2: POLYLINE is not a JSON list"):
        convert_porto(source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_the_trace_command_converts_and_refuses_bad_input(run_cli, tmp_path):
    source = tmp_path / "train.csv"
    source.write_text(PORTO_HEADER + porto_row("T1", downtown_walk(3)))
    result = run_cli("trace", "porto", source, "-o", tmp_path / "trace.csv")
    assert result.code == 0 and "wrote 1 trips" in result.out, result.err
    bad = run_cli("trace", "porto", source, "-o", tmp_path / "x.csv", "--box", "41,42,-9")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1 and "lat_min, lat_max" in bad.err
    missing = run_cli("trace", "porto", tmp_path / "none.csv", "-o", tmp_path / "x.csv")
    assert missing.code == 2 and "cannot read" in missing.err and not (tmp_path / "x.csv").exists()


def test_random_waypoint_is_seeded_bounded_and_speed_limited():
    def walk(seed):
        motion = RandomWaypoint(np.random.default_rng(seed), 50, (800.0, 500.0), (2.0, 8.0), (0.0, 30.0))
        return np.stack([motion.positions.copy()] + [motion.advance(15.0).copy() for _ in range(60)])

    positions = walk(1)
    assert np.array_equal(positions, walk(1)) and not np.array_equal(positions, walk(2))
    assert positions.min() >= 0 and positions[..., 0].max() <= 800 and positions[..., 1].max() <= 500
    steps = np.hypot(*np.diff(positions, axis=0).transpose(2, 0, 1))
    assert steps.max() <= 8.0 * 15.0 + 1e-9 and steps.mean() > 2.0  # they move, no faster than v_max
    assert (steps == 0).any()  # and pause


def test_trace_mobility_follows_trips_and_chains_them():
    times = (np.array([0.0, 100.0]), np.array([0.0, 50.0, 60.0]))
    fixes = (np.array([[0.0, 0.0], [100.0, 0.0]]), np.array([[0.0, 500.0], [50.0, 500.0], [50.0, 510.0]]))
    motion = TraceMobility(np.random.default_rng(0), 20, times, fixes)
    for _ in range(30):
        positions = motion.advance(7.0)
        on_first = (positions[:, 1] == 0) & (positions[:, 0] >= 0) & (positions[:, 0] <= 100)
        on_second = ((positions[:, 1] == 500) & (positions[:, 0] <= 50)) | (
            (positions[:, 0] == 50) & (positions[:, 1] >= 500) & (positions[:, 1] <= 510))
        assert np.all(on_first | on_second)
    with pytest.raises(EdgeprofError, match="two fixes"):
        TraceMobility(np.random.default_rng(0), 2, (np.array([0.0]),), (np.zeros((1, 2)),))


def test_kmeans_is_seeded_and_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[100.0, 100.0], [900.0, 200.0], [500.0, 800.0]])
    points = np.concatenate([c + rng.normal(0, 20, (200, 2)) for c in centres])
    found = kmeans(points, 3, seed=7)
    assert np.array_equal(found, kmeans(points, 3, seed=7))
    assert sorted(map(tuple, np.round(found, -2))) == sorted(map(tuple, centres))
    with pytest.raises(EdgeprofError, match="at least 4 points"):
        kmeans(points[:3], 4, seed=0)


def test_a_scenario_runs_on_a_trace(tmp_path):
    rng = np.random.default_rng(1)
    trips = [np.cumsum(rng.normal(0, 40, (30, 2)), axis=0) + 500 for _ in range(10)]
    path = tmp_path / "trace.csv"
    write_trace(path, Trace(("x_m", "y_m"), tuple(f"d{i}" for i in range(10)),
                            tuple(15.0 * np.arange(30) for _ in trips), tuple(trips)))
    scenario = load_scenario("foci-small", ["mobility.source=trace", f"mobility.trace='{path}'"])
    workload = load_workload(scenario)
    every = np.concatenate(trips)
    assert np.all(workload.edge_positions >= every.min(axis=0) - 1e-9)
    assert np.all(workload.edge_positions <= every.max(axis=0) + 1e-9)
    env = FociEnv(scenario, workload, 0)
    env.step(np.full(env.num_devices, env.num_actions - 1))
    assert env.t == 1 and np.isfinite(env.positions).all()


def test_a_bad_trace_exits_2_with_its_line(run_cli, tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("device,t_s,x_m,y_m\na,0,1,2\na,15,abc,2\n")
    result = run_cli("solve", "--scenario", "foci-small", "--solver", "alp", "--set", "mobility.source=trace",
                     "--set", f"mobility.trace='{path}'")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "line 3: x_m 'abc' is not a number" in result.err
