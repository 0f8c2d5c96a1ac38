"""`--hparam NAME=VALUE`: settings of any trainer's configuration dataclass, typed by their defaults.

NAME is a field of the configuration (`learning_rate=1e-3`) or `GROUP.NAME` for a field of a nested dataclass
field (`policy.user_hidden=128`, which keeps the group's other defaults). Fields a command sets through its own
options, or that the algorithm fixes, are `reserved`. The configuration's own validation (`__post_init__`)
checks the values' ranges, with `require_finite` and `require` so every trainer words its refusals alike;
all of this happens before a run folder is touched.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from typing import Any

from edgeprof.errors import EdgeprofError

_BOOLEANS = {"true": True, "false": False}


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"configuration field {field.name} has no default")


def tunable(config_type: type, reserved: Collection[str] = ()) -> dict[str, Any]:
    """Every tunable NAME (nested ones as GROUP.NAME) and its default."""
    names: dict[str, Any] = {}
    for field in dataclasses.fields(config_type):
        if field.name in reserved:
            continue
        default = _default(field)
        if dataclasses.is_dataclass(default):
            for inner in dataclasses.fields(default):
                if f"{field.name}.{inner.name}" not in reserved:
                    names[f"{field.name}.{inner.name}"] = getattr(default, inner.name)
        else:
            names[field.name] = default
    return names


def _convert(pair: str, name: str, text: str, default: Any) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            return _BOOLEANS[text.lower()]
        return kind(text)
    except (ValueError, KeyError):
        raise EdgeprofError(f"bad hyperparameter {pair!r}: {name} must be of type {kind.__name__}") from None


def parse(config_type: type, pairs: list[str], reserved: Collection[str] = ()) -> dict[str, Any]:
    """Keyword settings for the configuration from NAME=VALUE strings (nested groups as dataclasses)."""
    names = tunable(config_type, reserved)
    settings: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise EdgeprofError(f"bad hyperparameter {pair!r}: use NAME=VALUE with NAME one of {', '.join(names)}")
        value = _convert(pair, name, text.strip(), names[name])
        group, dot, inner = name.partition(".")
        if dot:
            groups.setdefault(group, {})[inner] = value
        else:
            settings[name] = value
    defaults = {field.name: field for field in dataclasses.fields(config_type)}
    for group, values in groups.items():
        settings[group] = dataclasses.replace(_default(defaults[group]), **values)
    return settings


def require_finite(config: Any) -> None:
    """Refuse NaN or infinite numbers anywhere in a configuration dataclass (nested groups included)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            require_finite(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise EdgeprofError(f"{field.name} must be a finite number, got {value}")


def require(config: Any, name: str, *, low: float | None = None, high: float | None = None,
            above: float | None = None) -> None:
    """Refuse `config.NAME` (dotted for a nested group) outside [low, high] or not above `above`."""
    value = config
    for part in name.split("."):
        value = getattr(value, part)
    if ((low is not None and value < low) or (high is not None and value > high)
            or (above is not None and not value > above)):
        limits = [f"> {above:g}" if above is not None else None, f">= {low:g}" if low is not None else None,
                  f"<= {high:g}" if high is not None else None]
        raise EdgeprofError(f"{name} must be {', '.join(part for part in limits if part)}, got {value}")
