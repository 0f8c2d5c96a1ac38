"""Typed scenario fields: a system declares each scenario section once, as a frozen dataclass.

Every field of a section carries its type (the annotation), its documentation and its limits (`declare`); the
unit is part of the key name (`_gflops`, `_gb`, `_mhz`, `_dbm`, `_mbps`, `_s`, `_m`, `_j`). Validation,
`--set` overrides and the documented TOML that `edgeprof scenario show` prints are generic over these
declarations, so a new system writes none of them.

Supported annotations: `bool`, `int`, `float`, `str` (with `choices`), `Range` (a float range `[low, high]`),
`IntRange`, `Names` (a non-empty list of names) and `Paths` (a table of name = "path").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Mapping
from typing import Any

from edgeprof.errors import EdgeprofError

Range = tuple[float, float]
IntRange = tuple[int, int]
Names = tuple[str, ...]
Paths = dict[str, str]

SIGNED_UNITS = ("_db", "_dbm", "_dbm_per_hz")  # decibel values may be negative; every other number may not


def declare(doc: str, *, low: float | None = None, high: float | None = None, above: float | None = None,
            below: float | None = None, choices: tuple[str, ...] | None = None, unique: bool = False,
            signed: bool = False) -> Any:
    """A field of a section: its documentation and limits (`low`/`high` inclusive, `above`/`below` strict;
    for a range, each end). Numbers are non-negative unless `signed`, `low` says otherwise or the key ends in
    a decibel unit."""
    signed = signed or low is not None
    return dataclasses.field(metadata={"doc": doc, "low": low, "high": high, "above": above, "below": below,
                                       "choices": choices, "unique": unique, "signed": signed})


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One declared field, resolved: `section.name`, its Python type and its metadata."""

    section: str
    name: str
    kind: Any
    doc: str
    low: float | None
    high: float | None
    above: float | None
    below: float | None
    choices: tuple[str, ...] | None
    unique: bool
    signed: bool

    @property
    def lowest(self) -> float | None:
        """The inclusive lower limit: `low`, else 0 for unsigned numbers."""
        if self.low is not None or self.signed or self.name.endswith(SIGNED_UNITS):
            return self.low
        return 0

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    def fail(self, message: str) -> EdgeprofError:
        return EdgeprofError(f"scenario field {self.key}: {message}")

    def limits(self) -> str:
        """The limits in words, for the documentation and error messages ('' when there are none)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        parts = []
        low = self.lowest
        if self.above is not None:
            parts.append(f"> {_number_text(self.above)}")
        elif low is not None and self.kind not in (bool, str, Names, Paths):
            parts.append(f">= {_number_text(low)}")
        if self.below is not None:
            parts.append(f"< {_number_text(self.below)}")
        elif self.high is not None:
            parts.append(f"<= {_number_text(self.high)}")
        return ", ".join(parts)

    def check(self, value: Any) -> Any:
        """`value` (TOML types) checked and converted to the field's type; raises one clear line."""
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise self.fail(f"expected true or false, got {value!r}")
            return value
        if kind in (int, float):
            return self._number(value, kind)
        if kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise self.fail(f"expected {self.limits() or 'a string'}, got {value!r}")
            return value
        if kind in (Range, IntRange):
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise self.fail(f"expected a range [low, high], got {value!r}")
            low, high = (self._number(v, int if kind == IntRange else float) for v in value)
            if low > high:
                raise self.fail(f"range low {low} is above high {high}")
            return (low, high)
        if kind == Names:
            if (not isinstance(value, (list, tuple)) or not value
                    or not all(isinstance(v, str) and v for v in value)):
                raise self.fail(f"expected a non-empty list of names, got {value!r}")
            if self.unique and len(set(value)) != len(value):
                repeated = sorted({v for v in value if list(value).count(v) > 1})
                raise self.fail(f"names must not repeat, got {', '.join(repeated)} more than once")
            return tuple(value)
        if kind == Paths:
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                raise self.fail(f"expected a table of name = \"path\", got {value!r}")
            return dict(value)
        raise self.fail(f"unsupported field type {kind!r}")

    def _number(self, value: Any, kind: type) -> int | float:
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(f"expected an integer, got {value!r}")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise self.fail(f"must be finite, got {value}")
        low = self.lowest
        out_of_range = ((low is not None and value < low) or (self.high is not None and value > self.high)
                        or (self.above is not None and value <= self.above)
                        or (self.below is not None and value >= self.below))
        if out_of_range:
            raise self.fail(f"must be {self.limits()}, got {value}")
        return value


@functools.cache
def section_fields(section: str, cls: type) -> tuple[FieldSpec, ...]:
    """The declared fields of a section dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    specs = []
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "doc" not in meta:
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with `declare`")
        specs.append(FieldSpec(section, field.name, hints[field.name], meta["doc"], meta["low"], meta["high"],
                               meta["above"], meta["below"], meta["choices"], meta["unique"], meta["signed"]))
    return tuple(specs)


def build_section(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    """A section instance from raw values (every declared field required, unknown fields refused)."""
    if not isinstance(values, Mapping):
        raise EdgeprofError(f"scenario section [{section}] must be a table")
    specs = section_fields(section, cls)
    known = [spec.name for spec in specs]
    for name in values:
        if name not in known:
            raise EdgeprofError(f"scenario field {section}.{name}: unknown field (known: {', '.join(known)})")
    missing = [spec.key for spec in specs if spec.name not in values]
    if missing:
        raise EdgeprofError(f"scenario section [{section}] lacks {', '.join(missing)}")
    return cls(**{spec.name: spec.check(values[spec.name]) for spec in specs})


def raw_value(value: Any) -> Any:
    """A field's value in TOML/JSON form (tuples become lists)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def section_values(instance: Any) -> dict[str, Any]:
    """A section instance's fields as a plain dict in TOML/JSON form."""
    return {field.name: raw_value(getattr(instance, field.name)) for field in dataclasses.fields(instance)}
