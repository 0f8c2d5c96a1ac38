"""Real tegrastats lines from every Jetson generation parse to the right rail powers and board totals.

Each line below is copied verbatim from the public source named beside it (GitHub issues and pull requests by
URL; files found by full-text search over public GitHub repositories by the index id of that search, where the
index does not name the repository). The expected total follows NVIDIA's rail rules (edgeprof/profiler/energy/
rails.py cites them): the module input rail where there is one (VDD_IN, POM_5V_IN, Thor's VIN), otherwise the
sum of the module's separate supplies (AGX Xavier: all six; AGX Orin: VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0,
without VDDQ_VDD2_1V8AO, which VIN_SYS_5V0 supplies).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeprof.profiler.energy.rails import (
    RULES,
    RailError,
    board_total,
    is_rail_label,
    parse_rails_option,
)
from edgeprof.profiler.energy.tegrastats import parse_line


class Line(NamedTuple):
    source: str
    text: str
    summed: tuple[str, ...]
    total_w: float
    every_rail_w: float


# board: Line(source, text, the rails summed, board total in W, the sum of every rail in W)
REAL_LINES = {
    "tx2_jetpack4": Line(
        "https://github.com/FindHao/tx-utils/issues/3",
        ("RAM 2020/7852MB (lfb 1164x4MB) CPU [9%@345,21%@345,25%@345,3%@345,1%@345,1%@345] EMC_FREQ 0% GR3D_FREQ 0% "
         "PLL@42.5C MCPU@42.5C PMIC@100C Tboard@40C GPU@41C BCPU@42.5C thermal@41.9C Tdiode@41.25C VDD_SYS_GPU "
         "153/158 VDD_SYS_SOC 536/547 VDD_4V0_WIFI 633/527 VDD_IN 3140/3208 VDD_SYS_CPU 536/590 VDD_SYS_DDR 557/601"),
        ("VDD_IN",), 3.14, 5.555,
    ),
    "tx2_jetpack4_mts": Line(
        "https://github.com/henrygd/beszel/pull/1631",
        ("RAM 3276/7859MB (lfb 5x4MB) SWAP 1626/12122MB (cached 181MB) CPU "
         "[44%@1421,49%@2031,67%@2034,17%@1420,25%@1419,8%@1420] EMC_FREQ 1%@1866 GR3D_FREQ 0%@114 APE 150 MTS fg 1% "
         "bg 1% PLL@42.5C MCPU@42.5C PMIC@50C Tboard@38C GPU@39.5C BCPU@42.5C thermal@41.3C Tdiode@39.25C VDD_SYS_GPU "
         "182/182 VDD_SYS_SOC 730/730 VDD_4V0_WIFI 0/0 VDD_IN 5297/5297 VDD_SYS_CPU 1917/1917 VDD_SYS_DDR 1241/1241"),
        ("VDD_IN",), 5.297, 9.367,
    ),
    "nano": Line(
        "DataDog/datadog-agent, pkg/collector/corechecks/nvidia/jetson/jetson_test.go (nanoSample)",
        ("RAM 534/3964MB (lfb 98x4MB) SWAP 5/1982MB (cached 1MB) IRAM 0/252kB(lfb 252kB) CPU "
         "[16%@204,9%@204,0%@204,0%@204] EMC_FREQ 0%@204 GR3D_FREQ 0%@76 APE 25 PLL@34C CPU@36.5C PMIC@100C GPU@36C "
         "AO@39.5C thermal@36.25C POM_5V_IN 1022/1022 POM_5V_GPU 0/0 POM_5V_CPU 204/204"),
        ("POM_5V_IN",), 1.022, 1.226,
    ),
    "nano_jetpack461": Line(
        "a Go exporter's TestParseTegraStatsXavierNanoJetPack461 (public GitHub file, index id 30937617475)",
        ("RAM 1923/3964MB (lfb 2x2MB) SWAP 191/1982MB (cached 6MB) IRAM 0/252kB(lfb 252kB) CPU "
         "[5%@1224,4%@1224,3%@1224,6%@1224] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 PLL@37C CPU@40C PMIC@50C GPU@40C "
         "AO@45C thermal@40C POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406"),
        ("POM_5V_IN",), 1.75, 2.116,
    ),
    "agx_xavier_jetpack42": Line(
        "https://github.com/martinkersner/gtop/pull/7",
        ("RAM 14700/15692MB (lfb 3x2MB) SWAP 898/8192MB (cached 23MB) CPU "
         "[0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190,0%@1190] EMC_FREQ 0% GR3D_FREQ 0% AO@30C GPU@30.5C "
         "Tboard@31C Tdiode@32C AUX@30.5C CPU@31.5C thermal@30.8C PMIC@100C GPU 463/463 CPU 618/618 SOC 2936/2936 CV "
         "0/0 VDDRQ 309/309 SYS5V 3306/3306"),
        ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"), 7.632, 7.632,
    ),
    "agx_xavier": Line(
        "DataDog/datadog-agent, pkg/collector/corechecks/nvidia/jetson/jetson_test.go (agXSample)",
        ("RAM 721/31927MB (lfb 7291x4MB) SWAP 0/15963MB (cached 0MB) CPU "
         "[2%@1190,0%@1190,0%@1190,0%@1190,off,off,off,off] EMC_FREQ 0%@665 GR3D_FREQ 0%@318 APE 150 MTS fg 0% bg 0% "
         "AO@37.5C GPU@37.5C Tdiode@40C PMIC@100C AUX@36C CPU@37.5C thermal@36.9C Tboard@37C GPU 0/0 CPU 311/311 SOC "
         "932/932 CV 0/0 VDDRQ 621/621 SYS5V 1482/1482"),
        ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"), 3.346, 3.346,
    ),
    "xavier_nx": Line(
        "DataDog/datadog-agent, pkg/collector/corechecks/nvidia/jetson/jetson_test.go (xavierNxSample)",
        ("RAM 4412/7772MB (lfb 237x4MB) SWAP 139/3886MB (cached 2MB) CPU "
         "[9%@1190,6%@1190,6%@1190,5%@1190,4%@1190,8%@1267] EMC_FREQ 10%@1600 GR3D_FREQ 62%@306 APE 150 MTS fg 0% bg "
         "0% AO@41.5C GPU@43C PMIC@100C AUX@41.5C CPU@43.5C thermal@42.55C VDD_IN 4067/4067 VDD_CPU_GPU_CV 738/738 "
         "VDD_SOC 1353/1353"),
        ("VDD_IN",), 4.067, 6.158,
    ),
    "orin_nano": Line(
        "a telemetry test that parses 'real named measurements' (public GitHub file, index id 57856482322)",
        ("08-10-2026 21:39:51 RAM 2513/7620MB (lfb 1x4MB) SWAP 25/3810MB (cached 0MB) CPU "
         "[11%@729,7%@729,8%@729,4%@729,3%@729,14%@729] GR3D_FREQ 0% cpu@51.218C soc2@51.093C soc0@50.125C "
         "gpu@51.593C tj@51.718C soc1@50.343C VDD_IN 4744mW/6179mW VDD_CPU_GPU_CV 1273mW/2369mW VDD_SOC 1234mW/1392mW"),
        ("VDD_IN",), 4.744, 7.251,
    ),
    "orin_nx_8gb_loaded": Line(
        "https://github.com/rbonghi/jetson_stats/issues/624",
        ("05-15-2025 18:30:28 RAM 6982/7620MB (lfb 5x1MB) SWAP 2640/16384MB (cached 202MB) CPU "
         "[97%@1984,95%@1984,95%@1984,91%@1984,88%@1984,93%@247] EMC_FREQ 18%@3199 GR3D_FREQ 84%@[713] NVENC 1%@115 "
         "NVDEC 40%@115 NVJPG off NVJPG1 off VIC 31%@115 OFA off NVDLA0 off PVA0_FREQ off APE 174 cv0@63.031C "
         "cpu@65.562C soc2@64.156C soc0@63.031C cv1@62.937C gpu@63.5C tj@65.562C soc1@64.718C cv2@60.875C VDD_IN "
         "17946mW/15710mW VDD_CPU_GPU_CV 8896mW/7585mW VDD_SOC 3923mW/3515mW"),
        ("VDD_IN",), 17.946, 30.765,
    ),
    "agx_orin_jetpack5": Line(
        "a guide to running models on an AGX Orin 64GB (public GitHub README, index id 41050277540)",
        ("04-24-2023 00:01:24 RAM 1282/62795MB (lfb 15152x4MB) SWAP 0/31398MB (cached 0MB) CPU "
         "[0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 "
         "GR3D_FREQ 0%@0 GR3D2_FREQ 0%@0 VIC_FREQ 729 APE 174 CV0@-256C CPU@42.593C Tboard@32C SOC2@39.343C "
         "Tdiode@33.25C SOC0@39.375C CV1@-256C GPU@-256C tj@42.593C SOC1@40.468C CV2@-256C VDD_GPU_SOC 2399mW/2399mW "
         "VDD_CPU_CV 400mW/400mW VIN_SYS_5V0 4032mW/4032mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"),
        ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), 6.831, 7.132,
    ),
    "agx_orin_jetpack5_test": Line(
        "a Go tegrastats parser's test (public GitHub file, index id 13663309883)",
        ("04-11-2025 10:36:27 RAM 4321/62801MB (lfb 1759x4MB) SWAP 19/31400MB (cached 0MB) CPU "
         "[0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 "
         "GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@44.562C Tboard@32C SOC2@40.093C Tdiode@33C "
         "SOC0@41.093C CV1@-256C GPU@-256C tj@44.343C SOC1@41.25C CV2@-256C VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV "
         "390mW/390mW VIN_SYS_5V0 4025mW/4025mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW"),
        ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), 6.755, 7.056,
    ),
    "agx_orin_jetpack6_dla": Line(
        "notes on DLA inference on an AGX Orin (public GitHub Markdown, index id 8329726155)",
        ("11-21-2025 08:49:48 RAM 13983/62780MB (lfb 424x4MB) SWAP 126/31390MB (cached 0MB) CPU "
         "[90%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201,100%@2201] "  # noqa: E501 (a real line)
         "EMC_FREQ 1%@2133 GR3D_FREQ 14%@[407,407] VIC_FREQ 115 NVDLA0_FREQ @1600 APE 174 CV0@73.625C CPU@77.281C "
         "Tboard@62C SOC2@70C Tdiode@62.25C SOC0@69.531C CV1@72.5C GPU@69.125C tj@77.281C SOC1@68.968C CV2@67.25C "
         "VDD_GPU_SOC 3150mW/2971mW VDD_CPU_CV 14312mW/12415mW VIN_SYS_5V0 4968mW/5048mW VDDQ_VDD2_1V8AO "
         "1091mW/1091mW"),
        ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), 22.43, 23.521,
    ),
    "agx_orin_jetpack6_negative": Line(
        "a tegrastats plotting script's comment (public GitHub file, index id 13993827917)",
        ("03-17-2024 18:54:10 RAM 10239/62841MB (lfb 442x4MB) SWAP 1/31421MB (cached 0MB) CPU "
         "[0%@1728,0%@1728,0%@1728,0%@1728,0%@1420,0%@1420,0%@1420,0%@1420,off,off,off,off] GR3D_FREQ 0% cpu@37.5C "
         "tboard@27C soc2@34.562C tdiode@27.5C soc0@34.531C tj@37.5C soc1@33.656C VDD_GPU_SOC 1592mW/1592mW "
         "VDD_CPU_CV -398mW/-398mW VIN_SYS_5V0 2624mW/2624mW VDDQ_VDD2_1V8AO 403mW/403mW"),
        ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), 3.818, 4.221,
    ),
    "thor_r38": Line(
        ("'Reading tegrastats output', a capture on a Jetson AGX Thor Developer Kit, Jetson Linux R38.4 (public "
         "GitHub Markdown, index id 54612712197)"),
        ("04-21-2026 15:50:52 RAM 105265/125772MB (lfb 34x4MB) CPU "
         "[0%@972,0%@972,0%@972,0%@972,0%@972,0%@972,1%@972,0%@972,0%@972,0%@972,0%@972,8%@972,0%@972,0%@972] "
         "EMC_FREQ 0%@2750 GR3D_FREQ @[314,314,314] NVENC0_FREQ @314 NVENC1_FREQ @314 NVDEC0_FREQ @314 NVDEC1_FREQ "
         "@314 NVJPG0_FREQ @314 VIC off OFA_FREQ @315 PVA0_FREQ off APE 300 cpu@37.343C tj@38.875C soc012@37.468C "
         "gpu@38.875C soc345@37.406C VDD_GPU 1962mW/1962mW VDD_CPU_SOC_MSS 5887mW/5887mW VIN_SYS_5V0 5635mW/5635mW "
         "VIN 19780mW/19780mW"),
        ("VIN",), 19.78, 33.264,
    ),
    "thor_negative_gpu": Line(
        ("a Thor JetPack 7 tegrastats parser's comment, which elides the CPU field itself (public GitHub file, index "
         "id 57101387929)"),
        ("05-14-2026 21:36:35 RAM 26063/125772MB (lfb 35x4MB) CPU [2%@972,...] VDD_GPU -392mW/-392mW VDD_CPU_SOC_MSS "
         "3924mW/3835mW VIN_SYS_5V0 5064mW/5055mW VIN 15004mW/15096mW"),
        ("VIN",), 15.004, 23.6,
    ),
    "agx_orin_jetpack7": Line(
        "a jetson-stats test fixture of a JetPack 7.2 AGX Orin line (research/profiling.md, section 3.2)",
        ("07-25-2026 09:08:28 RAM 20642/62817MB (lfb 1x2MB) CPU [23%@2201,...] EMC_FREQ 3%@3199 GR3D_FREQ "
         "12%@[1300,1300] NVENC0 off ... APE 174 cpu@52.968C/52.968C soc2@48.406C/48.406C soc0@49.531C/49.531C "
         "gpu@47.625C/47.625C VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW VIN_SYS_5V0 "
         "5500mW/5500mW/5500mW"),
        ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), 13.907, 13.907,
    ),
}


@pytest.mark.parametrize("board", REAL_LINES)
def test_real_lines_give_the_board_total_by_nvidias_rail_rule(board):
    _, line, summed, total, every_rail = REAL_LINES[board]
    rails = parse_line(line)
    assert sum(rails.values()) == pytest.approx(every_rail, abs=1e-9)  # every rail parsed, negative ones too
    chosen = board_total(rails)
    assert chosen.rails == summed
    assert chosen.power_w(rails) == pytest.approx(total, abs=1e-9)


def test_the_rule_matters_on_orin_and_thor():
    """Adding every rail overstates AGX Orin by 4-5% and Thor by 1.7x on these real lines."""
    for board, excess in [("agx_orin_jetpack5", 0.044), ("agx_orin_jetpack6_dla", 0.049), ("thor_r38", 0.682)]:
        _, _, _, total, every_rail = REAL_LINES[board]
        assert every_rail / total - 1 == pytest.approx(excess, abs=0.001)


def test_rail_values_of_a_line_are_the_current_ones_negatives_included_and_nc_channels_dropped():
    rails = parse_line(REAL_LINES["agx_orin_jetpack5"][1])
    assert rails == pytest.approx({"VDD_GPU_SOC": 2.399, "VDD_CPU_CV": 0.4, "VIN_SYS_5V0": 4.032,
                                   "VDDQ_VDD2_1V8AO": 0.301}, abs=1e-12)
    assert parse_line(REAL_LINES["thor_negative_gpu"][1])["VDD_GPU"] == -0.392


def test_fields_that_are_not_rails_give_nothing():
    line = (
        "RAM 2007/7852MB (lfb 180x4MB) SWAP 0/3926MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [1%@345,off,off] "
        "EMC_FREQ 16%@102 GR3D_FREQ @[1000,1000,1000] VIC_FREQ 0%@115 MTS fg 0% bg 0% APE 150 NVENC0 off "
        "CV0@-256C Tdiode@-256C cpu@52.968C/52.968C NC 0mW/0mW"
    )
    assert parse_line(line) == {}
    assert parse_line("") == {}


NOT_RAILS = [
    "RAM 2007/7852MB", "(lfb 180x4MB)", "SWAP 0/3926MB", "(cached 0MB)", "CPU [1%@345,off,off,0%@345]",
    "EMC_FREQ 16%@102", "GR3D_FREQ 0%", "GR3D_FREQ 12%@[1300,1300]", "GR3D_FREQ @[1000,1000,1000]", "NVENC0 off",
    "APE 174", "cpu@52.968C/52.968C", "Tdiode@-256C", "VIC_FREQ 0%@115", "MTS fg 0% bg 0%", "...", "NC 0mW/0mW",
]


@st.composite
def tegrastats_lines(draw):
    """A line with random rails in every power format, between other fields, and the rails' current power."""
    names = draw(st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True).filter(is_rail_label),
                          min_size=1, max_size=6, unique=True))
    fields = draw(st.lists(st.sampled_from(NOT_RAILS), max_size=8))
    expected = {}
    for name in names:
        values = draw(st.lists(st.integers(-999, 99_999), min_size=1, max_size=3))
        unit = "mW" if len(values) == 1 else draw(st.sampled_from(["mW", ""]))
        fields.append(f"{name} {'/'.join(f'{value}{unit}' for value in values)}")
        expected[name] = values[0] / 1e3
    timestamp = draw(st.sampled_from(["", "07-25-2026 09:08:28 "]))
    return timestamp + " ".join(draw(st.permutations(fields))), expected


@given(tegrastats_lines())
def test_any_mix_of_formats_and_fields_gives_each_rails_current_power(case):
    line, expected = case
    assert parse_line(line) == pytest.approx(expected, abs=1e-12)


def test_every_rule_applies_to_its_own_rails_and_says_why():
    for rule in RULES:
        chosen = board_total([*sorted(rule.present), "SOME_OTHER_RAIL"])
        assert chosen.rails == rule.summed
        assert chosen.rule.startswith(rule.board)


def test_a_board_no_rule_knows_sums_every_rail_and_says_so():
    chosen = board_total(["VDD_A", "VDD_B"])
    assert chosen.rails == ("VDD_A", "VDD_B") and chosen.describe() == "sum(VDD_A,VDD_B)"
    assert chosen.rule == "no board rule matched: sum of all rails"
    assert chosen.power_w({"VDD_A": 1.0, "VDD_B": -0.25}) == 0.75


def test_rails_override_sums_exactly_the_named_rails_or_names_what_is_missing():
    rails = parse_line(REAL_LINES["thor_r38"][1])
    chosen = board_total(rails, parse_rails_option("VDD_GPU, VDD_CPU_SOC_MSS"))
    assert (chosen.rails, chosen.rule, chosen.describe()) == (
        ("VDD_GPU", "VDD_CPU_SOC_MSS"), "--rails", "sum(VDD_GPU,VDD_CPU_SOC_MSS)")
    assert chosen.power_w(rails) == pytest.approx(7.849)
    with pytest.raises(RailError, match="this board has no rail VDD_IN; its rails are VDD_GPU, VDD_CPU_SOC_MSS, "
                                        "VIN_SYS_5V0, VIN"):
        board_total(rails, ["VDD_IN"])
    with pytest.raises(RailError, match="empty"):
        board_total(rails, parse_rails_option(" , "))
    assert parse_rails_option(None) is None
