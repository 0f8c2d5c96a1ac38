"""Scenarios of seed 001's edge system: a TOML file, validated field by field, with two presets.

`paper` is seed 001's Table I plus the public configuration's values (research/hcmappo.md section 2.2);
`small` is a system small enough for exact solvers. Keys carry their unit in their name (`_gflops`, `_gb`,
`_mhz`, `_dbm`, `_mbps`, `_s`); `Scenario` converts them to SI once, so the simulator works in SI only.
Where the paper is silent, the choice is a named field documented in FIELD_DOCS.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError

SEED_001_MODELS = ["lenet7", "lenet9", "lenet12", "resnet18", "resnet34", "resnet50", "vgg13", "vgg16", "vgg19"]

PAPER: dict[str, dict[str, Any]] = {
    "system": {
        "num_servers": 10,
        "num_users": 50,
        "area_m": 1000.0,
        "server_placement": "grid",
        "user_placement": "random",
        "slots_per_deployment": 10,
        "delay_constraint_s": 3.0,
        "failure_delay_s": 30.0,
        "request_deadline_s": 30.0,
    },
    "services": {
        "models": SEED_001_MODELS,
        "services_per_model": 5,
        "zipf_exponent": 0.8,
        "batch_range": [1, 16],
        "profiles": {},
    },
    "users": {
        "compute_gflops": [10.0, 100.0],
        "storage_gb": [1.0, 2.0],
        "energy_per_flop_j": [1e-11, 1e-9],
        "tx_power_dbm": [20.0, 30.0],
        "privacy_preference": [0.2, 0.8],
        "prefix_cache": True,
    },
    "servers": {
        "compute_gflops": [500.0, 2000.0],
        "storage_gb": [3.0, 5.0],
        "bandwidth_mhz": [50.0, 100.0],
        "tx_power_dbm": [30.0, 43.0],
        "cloud_rate_mbps": [200.0, 500.0],
    },
    "radio": {
        "reference_path_loss_db": 30.0,
        "path_loss_exponent": 3.5,
        "shadowing_db": 8.0,
        "shadowing": "per_slot",
        "noise_dbm_per_hz": -174.0,
        "noise_figure_db": 6.0,
        "carrier_ghz": 3.5,
        "min_distance_m": 1.0,
    },
    "privacy": {"alpha1": 0.31, "alpha2": 1.88, "data_unit_bytes": 1e6},
    "cost": {"mu_privacy": 5.0, "mu_energy": 5.0, "mu_delay_violation": 0.1, "failure_reward": -500.0,
             "mu_hit": 1.0, "mu_migration": 0.1},
}

# Storage binds but never makes a service impossible: every server holds the largest model (resnet50, 0.102 GB),
# none holds all four (0.167 GB), so servers must choose. (With vgg13, 0.53 GB, most small systems could not
# host it anywhere, and its requests failing at tau_fail put tau-bar out of reach of every solver.)
SMALL_OVERRIDES: dict[str, dict[str, Any]] = {
    "system": {"num_servers": 3, "num_users": 6, "area_m": 300.0},
    "services": {"models": ["lenet7", "lenet12", "resnet18", "resnet50"], "services_per_model": 1},
    "servers": {"storage_gb": [0.11, 0.16]},
}

FIELD_DOCS: dict[str, str] = {
    "system.num_servers": "J, edge servers (>= 1)",
    "system.num_users": "K, users (>= 1)",
    "system.area_m": "side of the square area, metres",
    "system.server_placement": "grid (the most even grid of J points, cell centres) or random",
    "system.user_placement": "random (uniform over the area)",
    "system.slots_per_deployment": "delta-T: slots between deployment decisions",
    "system.delay_constraint_s": "tau-bar: the long-term average delay limit (C8), seconds",
    "system.failure_delay_s": ("tau_fail: the delay charged to a request whose service is not deployed at its "
                               "server (eq. 5). The paper says 'much larger than tau-bar'; the public "
                               "configuration used tau-bar itself, which hides failures from the constraint; "
                               "default 10 x tau-bar"),
    "system.request_deadline_s": ("a request whose delay (eq. 4) would exceed this fails, and counts as an unhosted "
                                  "one: tau_fail of delay, R_fail as the user's reward, no energy or privacy cost "
                                  "(ours: seed 001's eq. 5 fails only requests whose service is not at their "
                                  "server, so one request over a starved link could take hours and outweigh "
                                  "thousands of others in the mean delay; > 0; 1e12 turns it off)"),
    "services.models": "base models; each must have a profile (shipped, or in services.profiles)",
    "services.services_per_model": "each base model is offered as this many distinct services (I = models x this)",
    "services.zipf_exponent": "service popularity: P(rank r) proportional to r^-s",
    "services.batch_range": "D_in: samples per request, an integer drawn uniformly from this range",
    "services.profiles": "model name -> path of an edgeprof.profile/1 file with leakage, replacing the shipped one",
    "users.compute_gflops": "f_k, uniform range, GFLOP/s",
    "users.storage_gb": "user storage for the prefix cache, uniform range, GB (1e9 bytes)",
    "users.energy_per_flop_j": "epsilon_k, uniform range, J/FLOP",
    "users.tx_power_dbm": "P_k, uniform range, dBm",
    "users.privacy_preference": "Pre_k, uniform range in [0, 1]",
    "users.prefix_cache": ("keep downloaded prefix parameters in user storage (LRU by model): a later request "
                           "of the same model downloads only the layers not yet held"),
    "servers.compute_gflops": "f_j, uniform range, GFLOP/s",
    "servers.storage_gb": "S_j for deployed models (C7), uniform range, GB",
    "servers.bandwidth_mhz": "B_j shared by its users (C6), uniform range, MHz",
    "servers.tx_power_dbm": "P_j, uniform range, dBm",
    "servers.cloud_rate_mbps": "R_C2E: cloud-to-edge model download rate (eq. 23), uniform range, Mbit/s",
    "radio.reference_path_loss_db": "path loss at 1 m, dB",
    "radio.path_loss_exponent": "PL(d) = PL(1 m) + 10 n log10(d / 1 m)",
    "radio.shadowing_db": "log-normal shadowing standard deviation, dB",
    "radio.shadowing": "per_slot (redrawn every slot: quasi-static within a slot) or per_episode",
    "radio.noise_dbm_per_hz": "thermal noise density N0, dBm/Hz",
    "radio.noise_figure_db": "receiver noise figure, dB (noise power = N0 x B x NF)",
    "radio.carrier_ghz": "carrier frequency (recorded; the path-loss model does not use it)",
    "radio.min_distance_m": "distances below this are clamped (the path-loss model diverges at 0)",
    "privacy.alpha1": "alpha_1 of eq. 10",
    "privacy.alpha2": "alpha_2 of eq. 10",
    "privacy.data_unit_bytes": ("D_raw in eq. 10 is counted in units of this many bytes (1e6: megabytes), which "
                                "puts privacy cost on the scale of energy in joules"),
    "cost.mu_privacy": "mu_1 of eq. 12",
    "cost.mu_energy": "mu_2 of eq. 12",
    "cost.mu_delay_violation": "mu_3 of eq. 25: user reward per second of delay above tau-bar",
    "cost.failure_reward": "R_fail of eq. 25: a user's reward when its service is not at its server (<= 0)",
    "cost.mu_hit": "mu_hit of eq. 24 (an interval's deployment reward: its hits minus the migration at its start)",
    "cost.mu_migration": "mu_mig of eq. 24 (every tuned public run used 0.02)",
}

_CHOICES = {
    "system.server_placement": ("grid", "random"),
    "system.user_placement": ("random",),
    "radio.shadowing": ("per_slot", "per_episode"),
}
_POSITIVE_INTS = {"system.num_servers", "system.num_users", "system.slots_per_deployment",
                  "services.services_per_model"}
_UNIT_INTERVAL_RANGES = {"users.privacy_preference"}
_NON_POSITIVE = {"cost.failure_reward"}
_POSITIVE_FLOATS = {"system.request_deadline_s"}


def preset(name: str) -> dict[str, dict[str, Any]]:
    """A copy of a preset's raw fields."""
    if name == "paper":
        return copy.deepcopy(PAPER)
    if name == "small":
        raw = copy.deepcopy(PAPER)
        for section, values in SMALL_OVERRIDES.items():
            raw[section].update(copy.deepcopy(values))
        return raw
    raise EdgeprofError(f"unknown scenario preset {name!r}: use paper, small or a TOML file")


def _fail(key: str, message: str) -> EdgeprofError:
    return EdgeprofError(f"scenario field {key}: {message}")


def _check_value(key: str, value: Any, default: Any) -> Any:
    """`value` checked against the type and limits of the default at `key`."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _fail(key, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, f"expected an integer, got {value!r}")
        if key in _POSITIVE_INTS and value < 1:
            raise _fail(key, f"must be at least 1, got {value}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, f"expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise _fail(key, f"must be finite, got {value}")
        if key in _NON_POSITIVE and value > 0:
            raise _fail(key, f"must not be positive, got {value}")
        if key in _POSITIVE_FLOATS and value <= 0:
            raise _fail(key, f"must be positive, got {value}")
        signed = key.endswith(("_db", "_dbm", "_dbm_per_hz")) or key in _NON_POSITIVE
        if not signed and value < 0:
            raise _fail(key, f"must not be negative, got {value}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str) or value not in _CHOICES.get(key, (value,)):
            raise _fail(key, f"expected one of {', '.join(_CHOICES.get(key, ('a string',)))}, got {value!r}")
        return value
    if isinstance(default, list) and (not default or isinstance(default[0], str)):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise _fail(key, f"expected a non-empty list of names, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(key, f"expected a range [low, high], got {value!r}")
        low, high = (_check_value(key, v, default[0]) for v in value)
        if low > high:
            raise _fail(key, f"range low {low} is above high {high}")
        if key in _UNIT_INTERVAL_RANGES and high > 1:
            raise _fail(key, f"must lie in [0, 1], got {value}")
        return [low, high]
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _fail(key, f"expected a table of model = \"path\", got {value!r}")
        return dict(value)
    raise _fail(key, "unsupported field")


def validate(raw: dict[str, Any], base: str = "paper") -> dict[str, dict[str, Any]]:
    """`raw` (sections of fields) merged over the preset `base`, every field checked; unknown keys refused."""
    merged = preset(base)
    if not isinstance(raw, dict):
        raise EdgeprofError("a scenario must be a table of sections")
    for section, values in raw.items():
        if section == "base":
            continue
        if section not in merged:
            raise EdgeprofError(f"unknown scenario section [{section}]: known sections are {', '.join(PAPER)}")
        if not isinstance(values, dict):
            raise EdgeprofError(f"scenario section [{section}] must be a table")
        for key, value in values.items():
            if key not in merged[section]:
                raise _fail(f"{section}.{key}", f"unknown field (known: {', '.join(merged[section])})")
            merged[section][key] = _check_value(f"{section}.{key}", value, PAPER[section][key])
    return merged


def load_scenario(spec: str, overrides: list[str] | None = None) -> Scenario:
    """A scenario from a preset name or a TOML file (whose optional top-level `base` names the preset it
    changes), then `section.key=value` overrides (values in TOML syntax)."""
    if spec in ("paper", "small"):
        raw: dict[str, Any] = {}
        base = spec
    else:
        path = Path(spec)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise EdgeprofError(f"cannot read scenario {path}: {error.strerror or error}") from None
        except tomllib.TOMLDecodeError as error:
            raise EdgeprofError(f"scenario {path} is not valid TOML: {error}") from None
        base = raw.get("base", "paper")
        if base not in ("paper", "small"):
            raise EdgeprofError(f"scenario {path}: base must be paper or small, got {base!r}")
    fields = validate(raw, base)
    for override in overrides or []:
        key, sep, text = override.partition("=")
        section, _, field = key.strip().partition(".")
        if not sep or not field:
            raise EdgeprofError(f"override {override!r} must look like section.field=value")
        try:
            value = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare word is a string
        changed = {name: dict(values) for name, values in fields.items()}
        changed.setdefault(section, {})[field] = value
        fields = validate(changed, base)
    return Scenario(fields)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'{k} = {_toml_value(v)}' for k, v in value.items()) + "}"
    return repr(value)


def to_toml(fields: dict[str, dict[str, Any]], with_docs: bool = True) -> str:
    """The scenario as TOML, each field preceded by its documentation."""
    lines = []
    for section, values in fields.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if with_docs:
                lines.append(f"# {FIELD_DOCS[f'{section}.{key}']}")
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class Scenario:
    """Validated fields (`fields[section][key]`, config units) and their SI values as properties."""

    fields: dict[str, dict[str, Any]]

    def __getitem__(self, key: str) -> Any:
        section, _, field = key.partition(".")
        return self.fields[section][field]

    def with_value(self, key: str, value: Any) -> Scenario:
        """A copy with one field changed and validated again (`section.field`, config units)."""
        section, _, field = key.partition(".")
        changed = {name: dict(values) for name, values in self.fields.items()}
        changed[section][field] = value
        return Scenario(validate(changed, "paper"))

    @property
    def num_services(self) -> int:
        return len(self["services.models"]) * self["services.services_per_model"]

    def si_range(self, key: str) -> tuple[float, float]:
        """A range field converted to SI (FLOP/s, bytes, Hz, W, bit/s)."""
        low, high = self[key]
        unit = key.rsplit("_", 1)[-1]
        if unit == "dbm":
            return 10 ** ((low - 30) / 10), 10 ** ((high - 30) / 10)
        scale = {"gflops": 1e9, "gb": 1e9, "mhz": 1e6, "mbps": 1e6}.get(unit, 1.0)
        return low * scale, high * scale
