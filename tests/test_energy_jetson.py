"""The Jetson backend on fake sysfs trees: rails found by label, the right board total, integration, failures
with reasons, the tegrastats fallback and the power-mode metadata."""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import pytest
from fake_jetson import BOARDS, SAMPLES, UPDATE_INTERVAL_MS, build, install_command
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprof.profiler.energy import jetson
from edgeprof.profiler.energy.base import SensorUnavailable
from edgeprof.profiler.energy.rails import RailError

INTERVAL_S = 0.003


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """An empty sysfs root the code reads, and a PATH with no Jetson commands (tests install fakes in it)."""
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    root.mkdir()
    bin_dir.mkdir()
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(root))
    monkeypatch.setenv("PATH", str(bin_dir))
    return root


def measure(meter, seconds: float = 0.15):
    with meter:
        meter.begin_window("w")
        time.sleep(seconds)
        return meter.end_window("w")


@pytest.mark.parametrize("board", BOARDS)
def test_constant_rails_measure_the_board_total(sysfs, board):
    fake = build(sysfs, board)
    reading = measure(jetson.open_meter(interval_s=INTERVAL_S))
    assert reading.average_power_w == pytest.approx(fake.total_w, rel=0.02)
    assert reading.energy_j == pytest.approx(fake.total_w * reading.duration_s, rel=0.02)
    assert reading.duration_s == pytest.approx(0.15, abs=0.05)
    assert reading.samples >= 10


# Per board: rail powers (W), the energy source and the board's power (W) by NVIDIA's rail rules (energy/rails.py):
# the input rail where the board has one, whatever its sub-rails read; AGX Xavier's six supplies; AGX Orin's
# VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0 (VDDQ_VDD2_1V8AO is fed from VIN_SYS_5V0); Thor's VIN.
TOTALS = {
    "tx2": ({"VDD_IN": 4.0, "VDD_SYS_GPU": 1.0, "VDD_SYS_CPU": 1.0}, "ina3221:VDD_IN", 4.0),
    "tx2_l4t28": ({"VDD_IN": 3.14, "VDD_SYS_GPU": 0.153, "VDD_SYS_CPU": 0.536}, "ina3221:VDD_IN", 3.14),
    "nano": ({"POM_5V_IN": 2.5, "POM_5V_GPU": 0.5, "POM_5V_CPU": 0.75}, "ina3221:POM_5V_IN", 2.5),
    "agx_xavier": (
        {"GPU": 1.0, "CPU": 2.0, "SOC": 3.0, "CV": 4.0, "VDDRQ": 5.0, "SYS5V": 6.0},
        "ina3221:sum(GPU,CPU,SOC,CV,VDDRQ,SYS5V)",
        21.0,
    ),
    "agx_orin": (
        {"VDD_GPU_SOC": 2.4, "VDD_CPU_CV": -0.4, "VIN_SYS_5V0": 4.03, "VDDQ_VDD2_1V8AO": 0.3},
        "ina3221:sum(VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0)",
        6.03,
    ),
    "orin_nano": ({"VDD_IN": 7.42, "VDD_CPU_GPU_CV": 1.0, "VDD_SOC": 1.5}, "ina3221:VDD_IN", 7.42),
    "thor": (
        {"VDD_GPU": -0.392, "VDD_CPU_SOC_MSS": 3.924, "VIN_SYS_5V0": 5.064, "VIN": 15.004},
        "ina238:VIN",
        15.004,
    ),
}


@pytest.mark.parametrize("board", TOTALS)
def test_each_board_has_its_own_total(sysfs, board):
    watts, source, total = TOTALS[board]
    fake = build(sysfs, board, watts)
    assert fake.total_w == pytest.approx(total, abs=1e-9)
    meter = jetson.open_meter(interval_s=INTERVAL_S)
    assert meter.kind == "jetson"
    assert meter.source == source
    assert meter.read_power_w() == pytest.approx(total, abs=1e-9)
    # hwmon states its update interval (longer than the polling interval here); the iio driver does not
    assert meter.update_period_s == (INTERVAL_S if BOARDS[board].layout.startswith("iio") else UPDATE_INTERVAL_MS / 1e3)


def test_hwmon_chips_linked_from_sys_class_hwmon_are_read_once(sysfs):
    build(sysfs, "agx_orin")
    assert len(list((sysfs / "sys/class/hwmon").iterdir())) == 2  # the same two chips, reachable twice
    monitors = jetson.find_monitors()
    assert [monitor.device for monitor in monitors] == ["1-0040", "1-0041"]
    assert sum(len(monitor.rails) for monitor in monitors) == 4


def test_thor_monitors_are_found_only_under_sys_class_hwmon(sysfs):
    build(sysfs, "thor")
    assert not (sysfs / "sys/bus").exists()
    monitors = {monitor.device: monitor for monitor in jetson.find_monitors()}
    assert monitors["2-0044"].layout == "hwmon-ina238"
    assert [rail.name for rail in monitors["2-0044"].rails] == ["VIN"]
    assert jetson.probe() == ("INA238+INA3221 hwmon+hwmon-ina238, rails VDD_CPU_SOC_MSS, VDD_GPU, VIN_SYS_5V0, "
                              "VIN; total VIN")


def test_rails_override_sums_the_named_rails_on_sysfs(sysfs):
    fake = build(sysfs, "agx_orin", TOTALS["agx_orin"][0])
    meter = jetson.open_meter(interval_s=INTERVAL_S, rails=["VDD_GPU_SOC", "VDDQ_VDD2_1V8AO"])
    assert meter.source == "ina3221:sum(VDD_GPU_SOC,VDDQ_VDD2_1V8AO)"
    assert meter.read_power_w() == pytest.approx(fake.rails_w["VDD_GPU_SOC"] + fake.rails_w["VDDQ_VDD2_1V8AO"])
    assert meter.metadata()["total_rule"] == "--rails"
    with pytest.raises(RailError, match="this board has no rail VDD_IN"):
        jetson.open_meter(interval_s=INTERVAL_S, rails=["VDD_IN"])


@settings(max_examples=40, deadline=None)
@given(board=st.sampled_from(sorted(BOARDS)), seed=st.integers(0, 2**32 - 1))
def test_a_new_boot_with_other_numbers_and_channels_resolves_the_same_rails(board, seed):
    totals = []
    for shuffle_seed in (None, seed):
        with tempfile.TemporaryDirectory() as root, pytest.MonkeyPatch.context() as patch:
            patch.setenv("EDGEPROF_SYSFS_ROOT", root)
            fake = build(Path(root), board, shuffle_seed=shuffle_seed)
            meter = jetson.open_meter(interval_s=INTERVAL_S)
            totals.append((jetson.probe(), meter.source, meter.read_power_w()))
            assert meter.read_power_w() == pytest.approx(fake.total_w, abs=1e-9)
    assert totals[0] == totals[1]


def test_the_meter_follows_a_changing_reading(sysfs):
    fake = build(sysfs, "orin_nano", {"VDD_IN": 2.0})
    with jetson.open_meter(interval_s=0.002) as meter:
        meter.begin_window("w")
        began = time.monotonic()
        time.sleep(0.1)
        fake.set_power("VDD_IN", 6.0)
        changed = time.monotonic()
        time.sleep(0.1)
        reading = meter.end_window("w")
    expected = (2.0 * (changed - began) + 6.0 * (reading.duration_s - (changed - began))) / reading.duration_s
    assert reading.average_power_w == pytest.approx(expected, rel=0.1)


def test_probe_names_the_layout_the_rails_and_the_total(sysfs):
    build(sysfs, "orin_nano")
    assert jetson.probe() == "INA3221 hwmon, rails VDD_CPU_GPU_CV, VDD_IN, VDD_SOC; total VDD_IN"


def test_probe_of_an_iio_board_skips_nothing_and_sums_without_an_input_rail(sysfs):
    build(sysfs, "agx_xavier")
    assert jetson.probe() == (
        "INA3221 iio, rails CPU, GPU, SOC, CV, SYS5V, VDDRQ; total sum(GPU,CPU,SOC,CV,VDDRQ,SYS5V)"
    )


def test_an_empty_tree_has_no_sensor_and_says_where_it_looked(sysfs):
    for attempt in (jetson.probe, jetson.open_meter):
        with pytest.raises(SensorUnavailable) as problem:
            attempt()
        assert str(sysfs / "sys/bus/i2c/drivers/ina3221x") in str(problem.value)
        assert str(sysfs / "sys/bus/i2c/drivers/ina3221") in str(problem.value)
        assert str(sysfs / "sys/class/hwmon") in str(problem.value)
        assert "no tegrastats" in str(problem.value)


@pytest.mark.parametrize("how", ["missing", "unreadable", "garbage"])
@pytest.mark.parametrize("board", ["tx2", "agx_orin", "thor"])
def test_a_broken_rail_file_is_unavailable_with_its_path(sysfs, board, how):
    rail = BOARDS[board].total_rails[0]
    path = build(sysfs, board).break_reading(rail, how)
    for attempt in (jetson.probe, jetson.open_meter):
        with pytest.raises(SensorUnavailable, match=str(path)):
            attempt()


def test_a_rail_breaking_while_sampling_fails_the_window_with_its_path(sysfs):
    fake = build(sysfs, "agx_orin")
    with jetson.open_meter(interval_s=INTERVAL_S) as meter:
        meter.begin_window("w")
        path = fake.break_reading("VDD_CPU_CV", "garbage")
        time.sleep(0.02)
        with pytest.raises(SensorUnavailable, match=str(path)):
            meter.end_window("w")


def test_metadata_records_the_monitors_total_and_power_mode(sysfs, tmp_path):
    build(sysfs, "agx_orin")
    install_command(tmp_path / "bin", "nvpmodel", 'echo "NV Power Mode: MAXN"; echo 0')
    install_command(tmp_path / "bin", "jetson_clocks", 'echo "GPU MinFreq=1300500000 MaxFreq=1300500000"')
    meter = jetson.open_meter(interval_s=INTERVAL_S)
    assert meter.metadata() == {
        "monitors": [
            {"device": "1-0040", "layout": "hwmon", "rails": ["VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"],
             "update_interval_s": UPDATE_INTERVAL_MS / 1e3, "samples": SAMPLES},
            {"device": "1-0041", "layout": "hwmon", "rails": ["VDDQ_VDD2_1V8AO"],
             "update_interval_s": UPDATE_INTERVAL_MS / 1e3, "samples": SAMPLES},
        ],
        "total": "sum(VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0)",
        "total_rule": "Jetson AGX Orin: VDDQ_VDD2_1V8AO is supplied from VIN_SYS_5V0, so it is not added",
        "polling_interval_s": INTERVAL_S,
        "nvpmodel": "MAXN",
        "jetson_clocks": "GPU MinFreq=1300500000 MaxFreq=1300500000",
    }


def test_missing_or_failing_commands_record_none(sysfs, tmp_path):
    build(sysfs, "tx2")
    meter = jetson.open_meter(interval_s=INTERVAL_S)
    assert meter.metadata()["nvpmodel"] is None and meter.metadata()["jetson_clocks"] is None
    install_command(tmp_path / "bin", "jetson_clocks", "echo 'must be run as root' >&2; exit 1")
    assert jetson.board_state() == {"nvpmodel": None, "jetson_clocks": None}


def lines_every(period_s: float, lines: list[str]):
    """`lines` over and over, one per period, as tegrastats prints them."""
    for line in itertools.cycle(lines):
        time.sleep(period_s)
        yield line


def test_tegrastats_lines_integrate_to_the_board_total():
    tx2 = (
        "RAM 2007/7852MB (lfb 180x4MB) CPU [1%@345,off] GR3D_FREQ 0%@114 VDD_SYS_GPU 153/153 VDD_SYS_SOC 384/384 "
        "VDD_4V0_WIFI 0/0 VDD_IN 1423/1423 VDD_SYS_CPU 153/153 VDD_SYS_DDR 230/230"
    )
    meter = jetson.TegrastatsMeter(lines_every(0.005, [tx2]), period_s=0.005)
    reading = measure(meter)
    assert meter.source == "tegrastats:VDD_IN"
    assert reading.average_power_w == pytest.approx(1.423, rel=0.02)
    assert reading.energy_j == pytest.approx(1.423 * reading.duration_s, rel=0.02)
    assert reading.samples >= 10


def test_tegrastats_lines_without_an_input_rail_sum_and_alternating_lines_average():
    low = "07-25-2026 09:08:28 GR3D_FREQ 12%@[1300,1300] VDD_GPU_SOC 1000mW/1000mW/1000mW VDD_CPU_CV 1000mW/0mW/0mW"
    high = "07-25-2026 09:08:29 GR3D_FREQ 12%@[1300,1300] VDD_GPU_SOC 3000mW/1000mW/3000mW VDD_CPU_CV 3000mW/0mW/0mW"
    meter = jetson.TegrastatsMeter(lines_every(0.005, [low, high]), period_s=0.005)
    reading = measure(meter, 0.2)
    assert meter.source == "tegrastats:sum(VDD_GPU_SOC,VDD_CPU_CV)"
    assert meter.metadata()["total_rule"] == "no board rule matched: sum of all rails"
    assert reading.average_power_w == pytest.approx(4.0, rel=0.1)


def test_tegrastats_follows_the_board_rule_and_the_rails_override():
    thor = "VDD_GPU -392mW/-392mW VDD_CPU_SOC_MSS 3924mW/3835mW VIN_SYS_5V0 5064mW/5055mW VIN 15004mW/15096mW"
    meter = jetson.TegrastatsMeter([thor], period_s=0.005)
    assert meter.read_power_w() == pytest.approx(15.004)
    assert meter.source == "tegrastats:VIN"
    override = jetson.TegrastatsMeter([thor], period_s=0.005, rails=("VDD_GPU", "VDD_CPU_SOC_MSS"))
    assert override.read_power_w() == pytest.approx(3.532)
    assert override.source == "tegrastats:sum(VDD_GPU,VDD_CPU_SOC_MSS)"
    with pytest.raises(RailError, match="no rail VDD_IN"):
        jetson.TegrastatsMeter([thor], period_s=0.005, rails=("VDD_IN",)).read_power_w()


def test_tegrastats_that_stops_or_prints_no_rails_is_unavailable():
    meter = jetson.TegrastatsMeter(["VDD_IN 5000mW/5000mW"], period_s=0.005)
    meter.begin_window("w")
    with pytest.raises(SensorUnavailable, match="stopped printing"):
        meter.end_window("w")
    meter.close()
    without_rails = jetson.TegrastatsMeter(["RAM 2007/7852MB CPU [1%@345] GR3D_FREQ 0%"], period_s=0.005)
    with pytest.raises(SensorUnavailable, match="no power rails"):
        without_rails.start()


def test_without_sysfs_a_tegrastats_command_is_the_fallback(sysfs, tmp_path, monkeypatch):
    script = (
        '[ "$1" = --interval ] || exit 2\n'
        "while true; do echo \"RAM 2007/7852MB GR3D_FREQ 0% VDD_IN 5000mW/4000mW VDD_SOC 1000mW/1000mW\"; "
        'sleep "$(($2 / 1000)).$(printf %03d $(($2 % 1000)))"; done'
    )
    command = install_command(tmp_path / "bin", "tegrastats", script)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert jetson.probe().startswith(f"tegrastats ({command}); no sysfs power monitor: no INA3221 power monitor under")
    meter = jetson.open_meter(interval_s=0.005)
    assert meter.kind == "tegrastats" and meter.source == "tegrastats:VDD_IN"
    assert meter.update_period_s == 0.005
    reading = measure(meter)
    assert reading.average_power_w == pytest.approx(5.0, rel=0.02)
    assert meter.process.poll() is not None  # closing the meter ended tegrastats
