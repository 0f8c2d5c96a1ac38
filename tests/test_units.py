"""Units at the command line: bits vs bytes, decimal vs binary prefixes, and one clear error for anything else."""

from __future__ import annotations

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.units import (
    format_bitrate,
    format_duration,
    format_energy,
    parse_bitrate,
    parse_bitrate_range,
    parse_bytes,
    parse_duration,
    parse_energy,
    parse_flop_rate,
    parse_power,
)


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_bitrate, "20Mbps", 20e6),
        (parse_bitrate, "20 Mbit/s", 20e6),
        (parse_bitrate, "20Mb/s", 20e6),
        (parse_bitrate, "2.5MB/s", 20e6),  # bytes per second: x 8
        (parse_bitrate, "1MiB/s", 8 * 2**20),
        (parse_bitrate, "1Gbps", 1e9),
        (parse_bitrate, "1e3kbps", 1e6),
        (parse_bitrate, ".5kbps", 500.0),
        (parse_bitrate, "100bps", 100.0),
        (parse_bytes, "1.5GB", 1.5e9),
        (parse_bytes, "1MiB", 2.0**20),
        (parse_bytes, "800kB", 8e5),
        (parse_bytes, "8Mbit", 1e6),
        (parse_bytes, "8Mb", 1e6),
        (parse_duration, "10ms", 0.01),
        (parse_duration, "1.5 s", 1.5),
        (parse_duration, "250us", 250e-6),
        (parse_duration, "250µs", 250e-6),
        (parse_duration, "0ms", 0.0),
        (parse_power, "0.5W", 0.5),
        (parse_power, "200mW", 0.2),
        (parse_power, "30dBm", 1.0),
        (parse_power, "23dBm", 0.1995262315),
        (parse_power, "-10dBm", 1e-4),
        (parse_energy, "50mJ", 0.05),
        (parse_energy, "300uJ", 3e-4),
        (parse_flop_rate, "1.5TFLOPS", 1.5e12),
        (parse_flop_rate, "200 GFLOP/s", 2e11),
    ],
)
def test_parses_to_si(parse, text, expected):
    assert parse(text) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_bitrate, "20", "'20' has no unit; write e.g. 20Mbps"),
        (parse_bitrate, "20MBps", "written for both bits and bytes per second: use Mbps (bits) or MB/s (bytes)"),
        (parse_bitrate, "20Kbps", "K is ambiguous: use k (1000) or Ki (1024)"),
        (parse_bitrate, "20mbps", "unknown bit-rate unit 'mbps' in '20mbps'"),
        (parse_bitrate, "fast", "cannot read 'fast' as a bit-rate"),
        (parse_bitrate, "0Mbps", "'0Mbps' must be greater than 0"),
        (parse_bitrate, "-5Mbps", "'-5Mbps' must be greater than 0"),
        (parse_bitrate, "1e999Mbps", "'1e999Mbps' is too large"),
        (parse_bytes, "1KB", "K is ambiguous"),
        (parse_duration, "-1ms", "'-1ms' must not be negative"),
        (parse_duration, "10 min", "unknown time unit 'min'"),
        (parse_power, "1MW", "unknown power unit 'MW'"),
        (parse_power, "1e5dBm", "is too large"),
        (parse_power, "1e309dBm", "is too large"),
        (parse_flop_rate, "1.5TFLOPs", "FLOPs is a count, not a speed: use FLOPS or FLOP/s"),
        (parse_bitrate_range, "1Gbps:1Mbps", "the low end of '1Gbps:1Mbps' must be below the high end"),
        (parse_bitrate_range, "1Mbps", "'1Mbps' is not a range; write LOW:HIGH"),
    ],
)
def test_refuses_with_a_clear_message(parse, text, message):
    with pytest.raises(EdgeprofError) as error:
        parse(text, "--option")
    assert str(error.value).startswith("--option: ")
    assert message in str(error.value)


def test_a_range_is_two_rates():
    assert parse_bitrate_range("1Mbps:1Gbps") == (1e6, 1e9)


@pytest.mark.parametrize(
    ("formatted", "expected"),
    [
        (format_bitrate(20e6), "20 Mbit/s"),
        (format_bitrate(3.16e8), "316 Mbit/s"),
        (format_bitrate(float("inf")), "unlimited"),
        (format_duration(0.0123), "12.3 ms"),
        (format_duration(1.5), "1.5 s"),
        (format_duration(2.5e-4), "250 µs"),
        (format_duration(0.0), "0 s"),
        (format_energy(0.12), "120 mJ"),
    ],
)
def test_formats_for_people(formatted, expected):
    assert formatted == expected
