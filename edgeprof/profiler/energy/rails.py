"""Which Jetson power rails add up to the board's power: one table of per-board rules, used by the sysfs monitors
and the tegrastats parser alike.

A Jetson's power monitors measure several rails, and on most boards some rails are parts of others: adding them
all counts some power twice. Each rule names the rails that identify a board (all must be present) and the rails
whose sum is the total; the first rule that matches wins. A board that matches no rule gets the sum of all its
rails, and says so (`BoardTotal.rule`); `--rails` names the rails to sum instead.

Sources of the rules (NVIDIA's documentation and NVIDIA staff answers on its forum):

- Jetson AGX Thor: `VIN` is the carrier board's INA238 monitor of the whole board input; `VDD_GPU`,
  `VDD_CPU_SOC_MSS` and `VIN_SYS_5V0` (INA3221) are parts of it. "the INA238 would measure the total input power"
  (https://forums.developer.nvidia.com/t/question-about-power-monitor-with-additional-load-on-jetson-thor/366461);
  Jetson Linux Developer Guide r38, Platform Power and Performance, Jetson Thor Product Family
  (https://docs.nvidia.com/jetson/archives/r38.2.1/DeveloperGuide/SD/PlatformPowerAndPerformance/JetsonThor.html).
- Modules with a module input rail, `VDD_IN` (TX1, TX2, Xavier NX, Orin NX, Orin Nano) or `POM_5V_IN` (Nano):
  "VDD_IN is the total power of module"
  (https://forums.developer.nvidia.com/t/interpretation-of-jetson-nx-power-rail/200883); "POM_5V_IN ... represents
  the total power consumption. You don't need to add POM_5V_GPU and POM_5V_CPU to it"
  (https://forums.developer.nvidia.com/t/power-consumption-monitoring/73608/8).
- Jetson AGX Orin: no input rail; `VDDQ_VDD2_1V8AO` is supplied from `VIN_SYS_5V0`, so the module's power is
  `VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0` (Jetson Linux Developer Guide r35/r36, Platform Power and Performance,
  Jetson AGX Orin series, power monitors:
  https://docs.nvidia.com/jetson/archives/r36.3/DeveloperGuide/SD/PlatformPowerAndPerformance/JetsonOrinNanoSeriesJetsonOrinNxSeriesAndJetsonAgxOrinSeries.html;
  https://forums.developer.nvidia.com/t/tegrastats-monitoring/217088).
- Jetson AGX Xavier: no input rail; the six monitored supplies (GPU, CPU, SOC, CV, VDDRQ, SYS5V) are separate and
  their sum is the module's power (https://forums.developer.nvidia.com/t/xavier-jetson-total-power-consumption/81016).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class RailError(ValueError):
    """A `--rails` choice that names rails the board does not have."""


@dataclass(frozen=True)
class RailRule:
    """The rails that identify a board (all present) and the rails whose sum is its power."""

    board: str
    present: frozenset[str]
    summed: tuple[str, ...]
    reason: str


RULES = (
    RailRule("Jetson AGX Thor", frozenset({"VIN"}), ("VIN",),
             "VIN (INA238) is the whole board input; VDD_GPU, VDD_CPU_SOC_MSS and VIN_SYS_5V0 are parts of it"),
    RailRule("Jetson module with VDD_IN", frozenset({"VDD_IN"}), ("VDD_IN",),
             "VDD_IN is the module input; the other rails are parts of it"),
    RailRule("Jetson Nano", frozenset({"POM_5V_IN"}), ("POM_5V_IN",),
             "POM_5V_IN is the module input; POM_5V_GPU and POM_5V_CPU are parts of it"),
    RailRule("Jetson AGX Orin", frozenset({"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"}),
             ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),
             "VDDQ_VDD2_1V8AO is supplied from VIN_SYS_5V0, so it is not added"),
    RailRule("Jetson AGX Xavier", frozenset({"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}),
             ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"), "no input rail; the six supplies are separate"),
)


def is_rail_label(label: str) -> bool:
    """Not an unconnected channel ("NC") nor the hwmon driver's "sum of shunt voltages" channel."""
    return "NC" not in re.split(r"[^A-Za-z0-9]+", label) and "sum of shunt" not in label.lower()


@dataclass(frozen=True)
class BoardTotal:
    """The rails summed into the board's power, and why."""

    rails: tuple[str, ...]
    rule: str  # the board rule, "--rails" or "no board rule matched: sum of all rails"

    def describe(self) -> str:
        """"VDD_IN" for a single rail, "sum(A,B,C)" otherwise: the energy source's name."""
        return self.rails[0] if len(self.rails) == 1 else f"sum({','.join(self.rails)})"

    def power_w(self, readings: Mapping[str, float]) -> float:
        return sum(readings[name] for name in self.rails)


def board_total(names: Iterable[str], override: Iterable[str] | None = None) -> BoardTotal:
    """The rails of `names` whose sum is the board's power: `override` (the user's --rails) if given, else the first
    matching rule of `RULES`, else all of them."""
    names = list(dict.fromkeys(names))
    if override is not None:
        chosen = tuple(dict.fromkeys(override))
        missing = [name for name in chosen if name not in names]
        if missing or not chosen:
            raise RailError(f"--rails {','.join(chosen) or '(empty)'}: this board has no rail "
                            f"{', '.join(missing) or 'named'}; its rails are {', '.join(names) or 'none'}")
        return BoardTotal(chosen, "--rails")
    for rule in RULES:
        if rule.present <= set(names):
            return BoardTotal(rule.summed, f"{rule.board}: {rule.reason}")
    return BoardTotal(tuple(names), "no board rule matched: sum of all rails")


def parse_rails_option(text: str | None) -> tuple[str, ...] | None:
    """`--rails VDD_GPU_SOC,VDD_CPU_CV` as a tuple of rail names (None when not given)."""
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())
