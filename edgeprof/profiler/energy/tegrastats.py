"""Power rails from `tegrastats` lines.

tegrastats prints one line per interval, its format varying across boards and JetPack releases::

    RAM 2007/7852MB ... GR3D_FREQ 0%@114 ... VDD_IN 1423/1423 VDD_SYS_CPU 153/153        (TX2, JetPack 4)
    11-14-2024 12:34:56 RAM ... GR3D_FREQ 0%@[305] cpu@47.968C ... VDD_GPU_SOC 3175mW/3175mW  (AGX Orin, JetPack 6)
    07-25-2026 09:08:28 RAM ... VDD_GPU_SOC 5139mW/5139mW/5139mW ...                         (AGX Orin, JetPack 7)
    ... VDD_GPU -392mW/-392mW VDD_CPU_SOC_MSS 3924mW/3835mW ... VIN 15004mW/15096mW            (AGX Thor, JetPack 7)

A rail is a name followed by one value with `mW`, or by two or three `/`-separated values with or without
`mW`; the first value is the current power. Values may be negative (an idle offset of the monitor, kept as it
is: dropping it would bias the sum). Unconnected channels ("NC") are not rails. Every other field (memory, CPU
and GPU loads, temperatures, engines) is something else and ignored, so new fields do not break the parser.
Which rails make up the board's power is `rails.board_total`'s business.
"""

from __future__ import annotations

import itertools
import re

from edgeprof.profiler.energy.rails import is_rail_label

_RAIL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_MILLIWATTS = r"(-?\d+)(?:mW)?"
_RAIL_VALUE = re.compile(rf"(-?\d+)mW|{_MILLIWATTS}(?:/{_MILLIWATTS}){{1,2}}")


def parse_line(line: str) -> dict[str, float]:
    """The current power of every rail in one tegrastats line, in watts, by rail name."""
    rails: dict[str, float] = {}
    tokens = line.split()
    for name, value in itertools.pairwise(tokens):
        match = _RAIL_VALUE.fullmatch(value)
        if match and _RAIL_NAME.fullmatch(name) and is_rail_label(name):
            current_mw = match.group(1) or match.group(2)
            rails[name] = int(current_mw) / 1e3
    return rails
