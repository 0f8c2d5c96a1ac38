"""Scenario files: presets, field-by-field validation, overrides and the documented TOML they print."""

from __future__ import annotations

import tomllib

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.sim.scenario import FIELD_DOCS, PAPER, load_scenario, to_toml


def test_paper_preset_is_table_one_plus_the_public_configuration():
    scenario = load_scenario("paper")
    assert (scenario["system.num_servers"], scenario["system.num_users"], scenario.num_services) == (10, 50, 45)
    assert scenario["services.zipf_exponent"] == 0.8 and scenario["services.batch_range"] == [1, 16]
    assert scenario["system.slots_per_deployment"] == 10 and scenario["system.delay_constraint_s"] == 3.0
    assert scenario.si_range("users.compute_gflops") == (10e9, 100e9)
    assert scenario.si_range("servers.bandwidth_mhz") == (50e6, 100e6)
    assert scenario.si_range("users.tx_power_dbm") == pytest.approx((0.1, 1.0))
    assert scenario.si_range("servers.tx_power_dbm") == pytest.approx((1.0, 19.952623))


def test_small_preset_is_small():
    scenario = load_scenario("small")
    assert (scenario["system.num_servers"], scenario["system.num_users"], scenario.num_services) == (3, 6, 4)


def test_every_field_is_documented_and_the_printed_toml_loads_back(tmp_path):
    assert set(FIELD_DOCS) == {f"{s}.{k}" for s, fields in PAPER.items() for k in fields}
    text = to_toml(load_scenario("small").fields)
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert tomllib.loads(text)["system"]["num_users"] == 6
    assert load_scenario(str(path)).fields == load_scenario("small").fields


def test_files_change_a_base_and_overrides_win(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('base = "small"\n[system]\nnum_users = 9\n[radio]\nshadowing = "per_episode"\n')
    scenario = load_scenario(str(path), ["system.num_users=12", "users.storage_gb=[1.5, 1.5]"])
    assert scenario["system.num_users"] == 12 and scenario["system.num_servers"] == 3
    assert scenario["radio.shadowing"] == "per_episode" and scenario["users.storage_gb"] == [1.5, 1.5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[system]\nnum_servers = 0\n", "system.num_servers: must be at least 1"),
        ("[servers]\ncompute_gflops = [-5, 10]\n", "servers.compute_gflops: must not be negative"),
        ("[servers]\nstorage_gb = [5, 3]\n", "range low 5.0 is above high 3.0"),
        ("[system]\nnum_users = 2.5\n", "system.num_users: expected an integer"),
        ("[system]\nnum_userz = 2\n", "system.num_userz: unknown field"),
        ("[network]\nx = 1\n", "unknown scenario section [network]"),
        ("[radio]\nshadowing = \"sometimes\"\n", "expected one of per_slot, per_episode"),
        ("[users]\nprivacy_preference = [0.2, 1.5]\n", "must lie in [0, 1]"),
        ("[users]\nprefix_cache = 1\n", "expected true or false"),
        ("[services]\nmodels = []\n", "expected a non-empty list of names"),
        ("base = \"huge\"\n", "base must be paper or small"),
        ("[system\n", "is not valid TOML"),
    ],
)
def test_bad_scenarios_are_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EdgeprofError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_scenario(str(path))


def test_bad_overrides():
    with pytest.raises(EdgeprofError, match="must look like section.field=value"):
        load_scenario("paper", ["num_users"])
    with pytest.raises(EdgeprofError, match="system.num_users: expected an integer"):
        load_scenario("paper", ["system.num_users=many"])
    with pytest.raises(EdgeprofError, match="cannot read scenario"):
        load_scenario("missing.toml")


def test_with_value_changes_one_field_and_validates_it():
    scenario = load_scenario("small")
    changed = scenario.with_value("system.slots_per_deployment", 1)
    assert changed["system.slots_per_deployment"] == 1 and scenario["system.slots_per_deployment"] == 10
    assert changed["system.num_users"] == scenario["system.num_users"]
    with pytest.raises(EdgeprofError):
        scenario.with_value("system.num_servers", 0)
