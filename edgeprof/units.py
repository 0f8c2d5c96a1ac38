"""Quantities with units at the command line (`20Mbps`, `10ms`, `0.5W`, `1.5TFLOPS`), turned into SI numbers.

Units are case-sensitive, because case is what tells bits from bytes and milli from mega:

- `b` is a bit and `B` a byte: `20Mbps` = `20Mbit/s` = `20Mb/s` = 20e6 bit/s; `20MB/s` = 160e6 bit/s.
  `MBps` is refused as ambiguous (it is written for both).
- decimal prefixes are `k` (1e3), `M`, `G`, `T`, `P`; binary ones `Ki` (2^10), `Mi`, `Gi`, `Ti`:
  `1.5GB` = 1.5e9 bytes, `1MiB` = 2^20 bytes. `K` alone is refused (it means 1000 or 1024 depending on who
  wrote it).
- time: `s`, `ms`, `us` (or `µs`), `ns`; power: `W`, `mW` or `dBm`; energy: `J`, `mJ`, `uJ`;
  compute speed: `FLOPS` or `FLOP/s` (`FLOPs` is a count, not a speed, and is refused).

A space between number and unit is allowed (`20 Mbit/s`); a bare number is refused, since its unit would be a
guess. Every error is an `EdgeprofError` whose message names the option and lists the accepted units.
"""

from __future__ import annotations

import math
import re

from edgeprof.errors import EdgeprofError

_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")
_DECIMAL = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}
_PREFIXES = {**_DECIMAL, **_BINARY}


def _prefixed(units: dict[str, float], prefixes: dict[str, float]) -> dict[str, float]:
    return {prefix + unit: scale * factor for unit, factor in units.items() for prefix, scale in prefixes.items()}


_BITRATE_UNITS = {
    **_prefixed({"bps": 1.0, "bit/s": 1.0, "b/s": 1.0}, _PREFIXES),
    **_prefixed({"B/s": 8.0}, _PREFIXES),
}
_SIZE_UNITS = _prefixed({"B": 1.0, "bit": 1 / 8, "b": 1 / 8}, _PREFIXES)
_DURATION_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_POWER_UNITS = {"W": 1.0, "mW": 1e-3}
_ENERGY_UNITS = {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "µJ": 1e-6, "μJ": 1e-6}
_FLOP_RATE_UNITS = _prefixed({"FLOPS": 1.0, "FLOP/s": 1.0}, _DECIMAL)


def _split(text: str, name: str, kind: str, example: str) -> tuple[float, str]:
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise EdgeprofError(f"{name}: cannot read {text!r} as a {kind}; write a number and a unit, e.g. {example}")
    number, unit = float(match.group(1)), match.group(2)
    if not unit:
        raise EdgeprofError(f"{name}: {text!r} has no unit; write e.g. {example}")
    return number, unit


def _hint(unit: str) -> str:
    """A specific reason for the most common mistakes, or nothing."""
    if unit.endswith("Bps"):
        return f"; {unit!r} is written for both bits and bytes per second: use Mbps (bits) or MB/s (bytes)"
    if unit.startswith("K") and not unit.startswith("Ki"):
        return "; K is ambiguous: use k (1000) or Ki (1024)"
    if unit.endswith("FLOPs"):
        return "; FLOPs is a count, not a speed: use FLOPS or FLOP/s"
    return ""


def _parse(text: str, name: str, kind: str, units: dict[str, float], listed: str, example: str) -> float:
    number, unit = _split(text, name, kind, example)
    if unit not in units:
        raise EdgeprofError(f"{name}: unknown {kind} unit {unit!r} in {text!r}{_hint(unit)} (units: {listed})")
    return number * units[unit]


def _require(value: float, text: str, name: str, *, positive: bool) -> float:
    if positive and not value > 0:
        raise EdgeprofError(f"{name}: {text!r} must be greater than 0")
    if value < 0:
        raise EdgeprofError(f"{name}: {text!r} must not be negative")
    if not math.isfinite(value):
        raise EdgeprofError(f"{name}: {text!r} is too large")
    return value


def parse_bitrate(text: str, name: str = "bit rate") -> float:
    """Bits per second from `20Mbps`, `20 Mbit/s`, `20Mb/s` or (bytes) `2.5MB/s`; must be positive."""
    listed = "bps, kbps, Mbps, Gbps, Tbps, Mbit/s, Mb/s, MiB/s... in bits; B/s, kB/s, MB/s, GB/s, MiB/s... in bytes"
    value = _parse(text, name, "bit-rate", _BITRATE_UNITS, listed, "20Mbps")
    return _require(value, text, name, positive=True)


def parse_bytes(text: str, name: str = "size") -> float:
    """Bytes from `1.5GB` (1.5e9), `1MiB` (2^20), `800kB` or `8Mbit` (1e6 bytes)."""
    listed = "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB; bit, kbit, Mbit, Gbit (or b, kb, Mb, Gb)"
    return _require(_parse(text, name, "size", _SIZE_UNITS, listed, "1.5GB"), text, name, positive=False)


def parse_duration(text: str, name: str = "duration") -> float:
    """Seconds from `10ms`, `1.5s`, `250us` or `800ns`; zero is allowed."""
    value = _parse(text, name, "time", _DURATION_UNITS, "s, ms, us (µs), ns", "10ms")
    return _require(value, text, name, positive=False)


def parse_power(text: str, name: str = "power") -> float:
    """Watts from `0.5W`, `200mW` or `23dBm` (10^(23/10) mW = 0.1995 W)."""
    number, unit = _split(text, name, "power", "0.5W")
    if unit == "dBm":
        try:
            watts = 10 ** (number / 10) / 1e3
        except OverflowError:
            raise EdgeprofError(f"{name}: {text!r} is too large") from None
        return _require(watts, text, name, positive=False)
    value = _parse(text, name, "power", _POWER_UNITS, "W, mW, dBm", "0.5W")
    return _require(value, text, name, positive=False)


def parse_energy(text: str, name: str = "energy") -> float:
    """Joules from `0.2J`, `50mJ` or `300uJ`."""
    value = _parse(text, name, "energy", _ENERGY_UNITS, "J, mJ, uJ (µJ)", "50mJ")
    return _require(value, text, name, positive=False)


def parse_flop_rate(text: str, name: str = "compute speed") -> float:
    """FLOP per second from `1.5TFLOPS` or `200 GFLOP/s`; must be positive."""
    listed = "FLOPS, kFLOPS, MFLOPS, GFLOPS, TFLOPS, PFLOPS (or FLOP/s, GFLOP/s...)"
    value = _parse(text, name, "compute-speed", _FLOP_RATE_UNITS, listed, "1.5TFLOPS")
    return _require(value, text, name, positive=True)


def parse_bitrate_range(text: str, name: str = "bit-rate range") -> tuple[float, float]:
    """(low, high) bits per second from `1Mbps:1Gbps`; low must be below high."""
    parts = text.split(":")
    if len(parts) != 2:
        raise EdgeprofError(f"{name}: {text!r} is not a range; write LOW:HIGH, e.g. 1Mbps:1Gbps")
    low, high = (parse_bitrate(part, name) for part in parts)
    if not low < high:
        raise EdgeprofError(f"{name}: the low end of {text!r} must be below the high end")
    return low, high


def _scaled(value: float, unit: str, steps: tuple[tuple[float, str], ...]) -> str:
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in steps:
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    factor, prefix = steps[-1]
    return f"{value / factor:.3g} {prefix}{unit}"


def format_bitrate(bits_per_s: float) -> str:
    """`20 Mbit/s` (3 significant digits)."""
    if math.isinf(bits_per_s):
        return "unlimited"
    return _scaled(bits_per_s, "bit/s", ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")))


def format_duration(seconds: float) -> str:
    """`12.3 ms`, `1.5 s` or `250 µs` (3 significant digits)."""
    if math.isinf(seconds):
        return "inf s"
    return _scaled(seconds, "s", ((1.0, ""), (1e-3, "m"), (1e-6, "µ")))


def format_energy(joules: float) -> str:
    """`120 mJ`, `1.5 J` (3 significant digits)."""
    return _scaled(joules, "J", ((1.0, ""), (1e-3, "m"), (1e-6, "µ")))
