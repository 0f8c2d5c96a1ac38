"""Scenarios: a TOML document that names its system and sets that system's declared fields.

A scenario is a preset name (`edgeprof scenario list`) or a TOML file. A file names its system (`edge_system =
"dpa"`) and/or a preset it changes (`base = "small"`); a file that names neither changes `paper`, seed 001's
preset. Every field of the system's sections is checked against its declaration (`sim.fields`): type, limits,
choices; unknown sections and fields are refused with the known ones. Presets ship as commented TOML files in
`edgeprof/sim/presets/`; `to_toml` prints any scenario in the same documented form. Keys carry their unit in
their name; `Scenario.si_range` converts a range to SI, so the simulators work in SI only.
"""

from __future__ import annotations

import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.files import read_text
from edgeprof.sim.fields import build_section, raw_value, section_fields, section_values
from edgeprof.sim.systems import System, get_system

SYSTEM_KEY = "edge_system"  # the top-level key naming a file's system (`system` is a section of seed 001's)
DEFAULT_BASE = "paper"  # what a file that names neither a system nor a base changes (files before systems)


def presets_dir() -> Path:
    """Where the shipped preset files live inside the installed package."""
    return Path(str(resources.files("edgeprof.sim"))) / "presets"


def preset_names() -> list[str]:
    """The shipped presets, by name."""
    return sorted(path.stem for path in presets_dir().glob("*.toml"))


def _parse(text: str, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EdgeprofError(f"scenario {label} is not valid TOML: {error}") from None


def preset_document(name: str) -> dict[str, Any]:
    """A preset's TOML document (before its base is applied)."""
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        raise EdgeprofError(f"unknown scenario preset {name!r}: use one of {', '.join(preset_names())} or a "
                            "TOML file")
    return _parse(path.read_text(encoding="utf-8"), f"preset {name}")


def _resolve(document: dict[str, Any], label: str, seen: tuple[str, ...] = ()) -> tuple[str, dict[str, dict]]:
    """The system and the raw sections of a document: its base's fields with its own laid over them."""
    document = dict(document)
    base, system = document.pop("base", None), document.pop(SYSTEM_KEY, None)
    for key, value in (("base", base), (SYSTEM_KEY, system)):
        if value is not None and not isinstance(value, str):
            raise EdgeprofError(f"scenario {label}: {key} must be a name, got {value!r}")
    if base is None and system is None:
        base = DEFAULT_BASE
    sections: dict[str, dict[str, Any]] = {}
    if base is not None:
        if base in seen:
            raise EdgeprofError(f"scenario {label}: presets based on each other ({' -> '.join([*seen, base])})")
        if base not in preset_names():
            raise EdgeprofError(f"scenario {label}: base must be one of {', '.join(preset_names())}, got {base!r}")
        base_system, sections = _resolve(preset_document(base), f"preset {base}", (*seen, base))
        if system is not None and system != base_system:
            raise EdgeprofError(f"scenario {label}: system {system!r} does not match its base {base!r}, a "
                                f"{base_system!r} scenario")
        system = base_system
    for section, values in document.items():
        if not isinstance(values, dict):
            raise EdgeprofError(f"scenario {label}: {section} = {values!r} is not a section; the top-level keys "
                                f"are {SYSTEM_KEY} and base")
        sections.setdefault(section, {}).update(values)
    return system, sections


def _validate(system: System, sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    for section in sections:
        if section not in system.sections:
            raise EdgeprofError(f"unknown scenario section [{section}] for system {system.name}: known sections "
                                f"are {', '.join(system.sections)}")
    for section in system.sections:
        if section not in sections:
            raise EdgeprofError(f"scenario lacks section [{section}] of system {system.name}")
    return {name: build_section(name, cls, sections[name]) for name, cls in system.sections.items()}


def _override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return text.strip()  # a bare word is a string


def load_scenario(spec: str, overrides: list[str] | None = None) -> Scenario:
    """A scenario from a preset name or a TOML file, then `section.field=value` overrides (TOML values)."""
    if spec in preset_names():
        system_name, sections = _resolve({"base": spec}, spec)
    else:
        path = Path(spec)
        text = read_text(path, "scenario")
        system_name, sections = _resolve(_parse(text, str(path)), str(path))
    system = get_system(system_name)
    for override in overrides or []:
        key, sep, text = override.partition("=")
        section, _, name = key.strip().partition(".")
        if not sep or not name:
            raise EdgeprofError(f"override {override!r} must look like section.field=value")
        sections.setdefault(section, {})[name] = _override_value(text)
    return Scenario(system.name, _validate(system, sections))


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: its system's name and one typed instance per section (config units)."""

    system_name: str
    sections: Mapping[str, Any]

    @property
    def system(self) -> System:
        return get_system(self.system_name)

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        """The fields as plain TOML/JSON values, section by section."""
        return {name: section_values(instance) for name, instance in self.sections.items()}

    def __getitem__(self, key: str) -> Any:
        section, _, name = key.partition(".")
        try:
            return getattr(self.sections[section], name)
        except (KeyError, AttributeError):
            raise KeyError(f"{key} is not a field of system {self.system_name}") from None

    def with_value(self, key: str, value: Any) -> Scenario:
        """A copy with one field changed and validated again (`section.field`, config units)."""
        section, _, name = key.partition(".")
        changed = self.fields
        changed.setdefault(section, {})[name] = raw_value(value)
        return Scenario(self.system_name, _validate(self.system, changed))

    def si_range(self, key: str) -> tuple[float, float]:
        """A range field converted to SI (FLOP/s, bytes, Hz, W, bit/s)."""
        low, high = self[key]
        unit = key.rsplit("_", 1)[-1]
        if unit == "dbm":
            return 10 ** ((low - 30) / 10), 10 ** ((high - 30) / 10)
        scale = {"gflops": 1e9, "gb": 1e9, "mhz": 1e6, "mbps": 1e6}.get(unit, 1.0)
        return low * scale, high * scale


def scenario_from_fields(system_name: str, fields: Mapping[str, Mapping[str, Any]]) -> Scenario:
    """A scenario from complete raw fields (a run's `config.json`), validated."""
    system = get_system(system_name)
    return Scenario(system.name, _validate(system, fields))


def toml_value(value: Any) -> str:
    """A value in TOML syntax (the form `--set` overrides take)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _comment(text: str) -> list[str]:
    """`text` as TOML comment lines of at most 112 characters."""
    return ["# " + line for line in textwrap.wrap(" ".join(text.split()), 110)]


def to_toml(scenario: Scenario, with_docs: bool = True) -> str:
    """The scenario as TOML that loads back to the same fields: the system's name, then every section, each
    field preceded by its documentation and limits."""
    system = scenario.system
    lines = [*(_comment(system.description) if with_docs else []), f'{SYSTEM_KEY} = "{system.name}"', ""]
    for name, instance in scenario.sections.items():
        lines.append(f"[{name}]")
        if with_docs and type(instance).__doc__:
            lines.extend(_comment(type(instance).__doc__))
        for spec in section_fields(name, type(instance)):
            if with_docs:
                limits = spec.limits()
                lines.extend(_comment(spec.doc + (f" [{limits}]" if limits else "")))
            lines.append(f"{spec.name} = {toml_value(raw_value(getattr(instance, spec.name)))}")
        lines.append("")
    return "\n".join(lines)
