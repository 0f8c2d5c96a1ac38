"""Scenario files: presets, field-by-field validation, overrides and the documented TOML they print."""

from __future__ import annotations

import re
import tomllib

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.sim.fields import section_fields
from edgeprof.sim.scenario import load_scenario, preset_names, presets_dir, to_toml
from edgeprof.sim.workload import num_services


def test_paper_preset_is_table_one_plus_the_public_configuration():
    scenario = load_scenario("paper")
    assert (scenario["system.num_servers"], scenario["system.num_users"], num_services(scenario)) == (10, 50, 45)
    assert scenario["services.zipf_exponent"] == 0.8 and scenario["services.batch_range"] == (1, 16)
    assert scenario["system.slots_per_deployment"] == 10 and scenario["system.delay_constraint_s"] == 3.0
    assert scenario.si_range("users.compute_gflops") == (10e9, 100e9)
    assert scenario.si_range("servers.bandwidth_mhz") == (50e6, 100e6)
    assert scenario.si_range("users.tx_power_dbm") == pytest.approx((0.1, 1.0))
    assert scenario.si_range("servers.tx_power_dbm") == pytest.approx((1.0, 19.952623))


def test_small_preset_is_small():
    scenario = load_scenario("small")
    assert (scenario["system.num_servers"], scenario["system.num_users"], num_services(scenario)) == (3, 6, 4)
    assert scenario.si_range("servers.storage_gb") == (0.11e9, 0.16e9)
    assert scenario["radio.path_loss_exponent"] == load_scenario("paper")["radio.path_loss_exponent"]


def test_every_field_is_documented_and_the_printed_toml_loads_back(tmp_path):
    scenario = load_scenario("small")
    for name, section in scenario.sections.items():
        assert all(spec.doc for spec in section_fields(name, type(section)))
    text = to_toml(scenario)
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert tomllib.loads(text)["system"]["num_users"] == 6 and tomllib.loads(text)["edge_system"] == "dpa"
    assert "# J, edge servers [>= 1, <= 10000]" in text
    assert load_scenario(str(path)).fields == scenario.fields


def test_the_paper_preset_file_is_the_documented_toml_of_its_fields():
    """The shipped preset carries every field with the documentation of its declaration (a header aside)."""
    text = (presets_dir() / "paper.toml").read_text(encoding="utf-8")
    body = text[text.index("\n\n") + 2:]
    assert body == to_toml(load_scenario("paper"))
    assert {"paper", "small"} <= set(preset_names())


def test_files_change_a_base_and_overrides_win(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('base = "small"\n[system]\nnum_users = 9\n[radio]\nshadowing = "per_episode"\n')
    scenario = load_scenario(str(path), ["system.num_users=12", "users.storage_gb=[1.5, 1.5]"])
    assert scenario["system.num_users"] == 12 and scenario["system.num_servers"] == 3
    assert scenario["radio.shadowing"] == "per_episode" and scenario["users.storage_gb"] == (1.5, 1.5)


def test_a_file_may_name_its_system_and_must_match_its_base(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('edge_system = "dpa"\nbase = "small"\n[system]\nnum_users = 2\n')
    assert load_scenario(str(path))["system.num_users"] == 2
    path.write_text('edge_system = "foo"\nbase = "small"\n')
    with pytest.raises(EdgeprofError, match="system 'foo' does not match its base 'small', a 'dpa' scenario"):
        load_scenario(str(path))
    path.write_text('edge_system = "dpa"\n[system]\nnum_users = 2\n')  # no base: every field is needed
    with pytest.raises(EdgeprofError, match=r"scenario lacks section \[services\] of system dpa"):
        load_scenario(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[system]\nnum_servers = 0\n", "system.num_servers: must be >= 1, <= 10000, got 0"),
        ("[system]\nnum_users = 100000000\n", "system.num_users: must be >= 1, <= 1000000, got 100000000"),
        ("[servers]\ncompute_gflops = [-5, 10]\n", "servers.compute_gflops: must be > 0, <= 1000000000, got -5.0"),
        ("[servers]\nstorage_gb = [5, 3]\n", "range low 5.0 is above high 3.0"),
        ("[system]\nnum_users = 2.5\n", "system.num_users: expected an integer"),
        ("[system]\nnum_userz = 2\n", "system.num_userz: unknown field"),
        ("[network]\nx = 1\n", "unknown scenario section [network] for system dpa"),
        ("edge_system = \"nope\"\n", "unknown system 'nope': known systems are dpa"),
        ("[services]\nbatch_range = [-5, -1]\n", "services.batch_range: must be >= 1, <= 1000000, got -5"),
        ("[services]\nbatch_range = [0, 0]\n", "services.batch_range: must be >= 1, <= 1000000, got 0"),
        ("[privacy]\ndata_unit_bytes = 0\n", "privacy.data_unit_bytes: must be > 0, <= 1e+15, got 0.0"),
        ("[servers]\ncloud_rate_mbps = [0, 0]\n", "servers.cloud_rate_mbps: must be > 0, <= 1000000000, got 0.0"),
        ("[radio]\nmin_distance_m = 0\n", "radio.min_distance_m: must be > 0, <= 1000000, got 0.0"),
        ("[system]\nfailure_delay_s = 0\n", "system.failure_delay_s: must be > 0, <= 1000000000, got 0.0"),
        ("[services]\nmodels = [\"lenet7\", \"lenet7\"]\n", "services.models: names must not repeat, got lenet7"),
        ("[users]\ntx_power_dbm = [20, 1e309]\n", "users.tx_power_dbm: must be finite"),
        ("[cost]\nfailure_reward = 5\n", "cost.failure_reward: must be >= -1000000000, <= 0, got 5.0"),
        ("system = 3\n", "system = 3 is not a section"),
        ("[radio]\nshadowing = \"sometimes\"\n", "expected one of per_slot, per_episode"),
        ("[users]\nprivacy_preference = [0.2, 1.5]\n", "must be >= 0, <= 1, got 1.5"),
        ("[users]\nprefix_cache = 1\n", "expected true or false"),
        ("[services]\nmodels = []\n", "expected a non-empty list of names"),
        ("base = \"huge\"\n", "paper, small, got 'huge'"),
        ("[system\n", "is not valid TOML"),
    ],
)
def test_bad_scenarios_are_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EdgeprofError, match=re.escape(message)):
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
