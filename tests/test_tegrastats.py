"""tegrastats lines from every Jetson generation parse to the right rail powers, and the board total rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeprof.profiler.energy.tegrastats import board_total_w, describe_total, parse_line, total_rails

# Verbatim lines (research notes, section 3.2), the rail powers they hold (W) and the board total (W).
LINES = {
    "tx2_jetpack4": (
        "RAM 2007/7852MB (lfb 180x4MB) SWAP 0/3926MB (cached 0MB) CPU [1%@345,off,off,0%@345,2%@346,0%@345] "
        "EMC_FREQ 16%@102 GR3D_FREQ 0%@114 APE 150 PLL@35.5C MCPU@35.5C PMIC@100C Tboard@33C GPU@34.5C "
        "BCPU@35.5C thermal@35.1C Tdiode@33.5C VDD_SYS_GPU 153/153 VDD_SYS_SOC 384/384 VDD_4V0_WIFI 0/0 "
        "VDD_IN 1423/1423 VDD_SYS_CPU 153/153 VDD_SYS_DDR 230/230",
        {"VDD_SYS_GPU": 0.153, "VDD_SYS_SOC": 0.384, "VDD_4V0_WIFI": 0.0, "VDD_IN": 1.423, "VDD_SYS_CPU": 0.153,
         "VDD_SYS_DDR": 0.230},
        1.423,
    ),
    "nano": (
        "RAM 2015/3964MB (lfb 98x4MB) SWAP 29/1982MB (cached 3MB) CPU [6%@102,5%@102,4%@102,3%@102] "
        "EMC_FREQ 0% GR3D_FREQ 0% PLL@28C CPU@31.5C PMIC@100C GPU@30.5C AO@36C thermal@31.25C "
        "POM_5V_IN 1388/1388 POM_5V_GPU 122/122 POM_5V_CPU 163/163",
        {"POM_5V_IN": 1.388, "POM_5V_GPU": 0.122, "POM_5V_CPU": 0.163},
        1.388,
    ),
    "agx_xavier_jetpack4": (
        "RAM 407/15823MB (lfb 3702x4MB) SWAP 0/7911MB (cached 0MB) CPU [..%@2265,...] EMC_FREQ 0% "
        "GR3D_FREQ ..% AO@26.5C GPU@28C iwlwifi@30C Tdiode@31.25C PMIC@100C AUX@26.5C CPU@27.5C "
        "thermal@27.45C Tboard@27C GPU 1155/1155 CPU 385/385 SOC 2504/2503 CV 0/0 VDDRQ 192/192 SYS5V 2692/2692",
        {"GPU": 1.155, "CPU": 0.385, "SOC": 2.504, "CV": 0.0, "VDDRQ": 0.192, "SYS5V": 2.692},
        6.928,
    ),
    "orin_nano_guide": (
        "RAM 2840/7620MB (lfb 512x4MB) SWAP 0/4096MB CPU [25%@1420,off,off,20%@1420,22%@1420,18%@1420] "
        "GR3D_FREQ 76% ... CPU@42.5C thermal@41.7C VDD_IN 5765mW VDD_CPU_GPU_CV 1548mW VDD_SOC 1497mW",
        {"VDD_IN": 5.765, "VDD_CPU_GPU_CV": 1.548, "VDD_SOC": 1.497},
        5.765,
    ),
    "orin_nx_current_average": (
        "VDD_IN 7421mW/8050mW VDD_CPU_GPU_CV 1000mW/1200mW",
        {"VDD_IN": 7.421, "VDD_CPU_GPU_CV": 1.0},
        7.421,
    ),
    "agx_orin_jetpack6": (
        "11-14-2024 12:34:56 RAM 3162/30536MB (lfb 6x4MB) SWAP 0/15268MB (cached 0MB) CPU [1%@729,0%@729,off,...] "
        "EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] cpu@47.968C soc0@46.906C gpu@46.343C tj@47.968C "
        "VDD_GPU_SOC 3175mW/3175mW",
        {"VDD_GPU_SOC": 3.175},
        3.175,
    ),
    "agx_orin_jetpack7": (
        "07-25-2026 09:08:28 RAM 20642/62817MB (lfb 1x2MB) CPU [23%@2201,...] EMC_FREQ 3%@3199 "
        "GR3D_FREQ 12%@[1300,1300] NVENC0 off ... APE 174 cpu@52.968C/52.968C soc2@48.406C/48.406C "
        "soc0@49.531C/49.531C gpu@47.625C/47.625C VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW "
        "VIN_SYS_5V0 5500mW/5500mW/5500mW",
        {"VDD_GPU_SOC": 5.139, "VDD_CPU_CV": 3.268, "VIN_SYS_5V0": 5.5},
        13.907,
    ),
}


@pytest.mark.parametrize("board", LINES)
def test_research_lines_parse_to_their_rail_powers_and_total(board):
    line, rails, total = LINES[board]
    parsed = parse_line(line)
    assert parsed == pytest.approx(rails, abs=1e-12)
    assert list(parsed) == list(rails)
    assert board_total_w(parsed) == pytest.approx(total, abs=1e-12)


def test_fields_that_are_not_rails_give_nothing():
    line = (
        "RAM 2007/7852MB (lfb 180x4MB) SWAP 0/3926MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [1%@345,off,off] "
        "EMC_FREQ 16%@102 GR3D_FREQ @[1000,1000,1000] VIC_FREQ 0%@115 MTS fg 0% bg 0% APE 150 NVENC0 off "
        "CV0@-256C Tdiode@-256C cpu@52.968C/52.968C"
    )
    assert parse_line(line) == {}
    assert parse_line("") == {}


def test_a_thor_style_line_with_disconnected_sensors_keeps_its_rails():
    line = (
        "08-01-2026 10:00:00 RAM 3000/125000MB CPU [off,off,2%@1000] GR3D_FREQ @[1000,1000,1000] CV0@-256C "
        "VDD_GPU 1200mW/1100mW/1300mW VDD_CPU_SOC_MSS 4000mW/4000mW/4100mW"
    )
    assert parse_line(line) == pytest.approx({"VDD_GPU": 1.2, "VDD_CPU_SOC_MSS": 4.0})


NOT_RAILS = [
    "RAM 2007/7852MB", "(lfb 180x4MB)", "SWAP 0/3926MB", "(cached 0MB)", "CPU [1%@345,off,off,0%@345]",
    "EMC_FREQ 16%@102", "GR3D_FREQ 0%", "GR3D_FREQ 12%@[1300,1300]", "GR3D_FREQ @[1000,1000,1000]", "NVENC0 off",
    "APE 174", "cpu@52.968C/52.968C", "Tdiode@-256C", "VIC_FREQ 0%@115", "MTS fg 0% bg 0%", "...",
]


@st.composite
def tegrastats_lines(draw):
    """A line with random rails in every power format, between other fields, and the rails' current power."""
    names = draw(st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True), min_size=1, max_size=6,
                          unique=True))
    fields = draw(st.lists(st.sampled_from(NOT_RAILS), max_size=8))
    expected = {}
    for name in names:
        values = draw(st.lists(st.integers(0, 99_999), min_size=1, max_size=3))
        unit = "mW" if len(values) == 1 else draw(st.sampled_from(["mW", ""]))
        fields.append(f"{name} {'/'.join(f'{value}{unit}' for value in values)}")
        expected[name] = values[0] / 1e3
    timestamp = draw(st.sampled_from(["", "07-25-2026 09:08:28 "]))
    return timestamp + " ".join(draw(st.permutations(fields))), expected


@given(tegrastats_lines())
def test_any_mix_of_formats_and_fields_gives_each_rails_current_power(case):
    line, expected = case
    assert parse_line(line) == pytest.approx(expected, abs=1e-12)


def test_the_input_rail_is_the_total_and_its_sub_rails_are_not_added():
    assert total_rails(["VDD_CPU_GPU_CV", "VDD_IN", "VDD_SOC"]) == ["VDD_IN"]
    assert total_rails(["POM_5V_GPU", "POM_5V_IN"]) == ["POM_5V_IN"]
    assert describe_total(["VDD_IN", "VDD_SOC"]) == "VDD_IN"
    assert board_total_w({"VDD_IN": 5.0, "VDD_CPU_GPU_CV": 2.0, "VDD_SOC": 1.0}) == 5.0


def test_without_an_input_rail_the_total_is_the_sum_of_all_rails():
    assert total_rails(["GPU", "CPU", "SOC"]) == ["GPU", "CPU", "SOC"]
    assert describe_total(["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]) == "sum(VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0)"
    assert board_total_w({"VDD_GPU_SOC": 5.0, "VDD_CPU_CV": 2.0, "VIN_SYS_5V0": 1.5}) == 8.5
    assert board_total_w({}) == 0.0
