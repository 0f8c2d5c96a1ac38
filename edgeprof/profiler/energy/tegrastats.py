"""Power rails from `tegrastats` lines, and which rails make up a Jetson board's total power.

tegrastats prints one line per interval, its format varying across boards and JetPack releases::

    RAM 2007/7852MB ... GR3D_FREQ 0%@114 ... VDD_IN 1423/1423 VDD_SYS_CPU 153/153        (TX2, JetPack 4)
    11-14-2024 12:34:56 RAM ... GR3D_FREQ 0%@[305] cpu@47.968C ... VDD_GPU_SOC 3175mW/3175mW  (AGX Orin, JetPack 6)
    07-25-2026 09:08:28 RAM ... VDD_GPU_SOC 5139mW/5139mW/5139mW ...                         (AGX Orin, JetPack 7)

A rail is a name followed by one value with `mW`, or by two or three `/`-separated values with or without
`mW`; the first value is the current power. Every other field (memory, CPU and GPU loads, temperatures,
engines) is something else and ignored, so new fields do not break the parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# The rails that measure the module's input: the board total where they exist (never add sub-rails to them).
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")

_RAIL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_MILLIWATTS = r"(\d+)(?:mW)?"
_RAIL_VALUE = re.compile(rf"(\d+)mW|{_MILLIWATTS}(?:/{_MILLIWATTS}){{1,2}}")


def parse_line(line: str) -> dict[str, float]:
    """The current power of every rail in one tegrastats line, in watts, by rail name."""
    rails: dict[str, float] = {}
    tokens = line.split()
    for name, value in zip(tokens, tokens[1:], strict=False):
        match = _RAIL_VALUE.fullmatch(value)
        if match and _RAIL_NAME.fullmatch(name):
            current_mw = match.group(1) or match.group(2)
            rails[name] = int(current_mw) / 1e3
    return rails


def total_rails(names: Iterable[str]) -> list[str]:
    """The rails whose sum is the board's power: the module input rail (VDD_IN, POM_5V_IN on a Nano) when
    the board has one, since the other rails are parts of it; otherwise (AGX Xavier, AGX Orin) all of them."""
    names = list(names)
    for input_rail in INPUT_RAILS:
        if input_rail in names:
            return [input_rail]
    return names


def describe_total(names: Iterable[str]) -> str:
    """How the board total is made, for an energy source: "VDD_IN" or "sum(GPU,CPU,SOC)"."""
    summed = total_rails(names)
    return summed[0] if len(summed) == 1 and summed[0] in INPUT_RAILS else f"sum({','.join(summed)})"


def board_total_w(rails: Mapping[str, float]) -> float:
    """The board's power in watts from every rail's power (see `total_rails`)."""
    return sum(rails[name] for name in total_rails(rails))
