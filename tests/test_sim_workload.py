"""The service table: per-sample workload from profiles, services per base model, padding, and refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sim_testing import profiles_override, synthetic_profile, toy_profile, write_profiles

from edgeprof.errors import EdgeprofError
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.workload import load_service_table, num_services, service_table_from_profiles


def test_toy_table_by_hand():
    # two base models x 2 services: toy (L = 2) and a copy with 9000 parameter bytes; services 0, 1 are toy
    table = service_table_from_profiles(["toy", "big"], [toy_profile(), toy_profile("big", 9000.0)], 2)
    assert table.num_services == 4 and table.num_models == 2 and table.max_points == 2
    assert table.model_names == ("toy", "toy", "big", "big")
    assert table.base_model.tolist() == [0, 0, 1, 1]
    assert table.num_points.tolist() == [2, 2, 2, 2]
    assert table.device_flops[0].tolist() == [0.0, 1e9, 3e9]
    assert table.edge_flops[1].tolist() == [3e9, 2e9, 0.0]
    assert table.upload_bytes[0].tolist() == [1000.0, 500.0, 0.0]
    assert table.prefix_param_bytes[2].tolist() == [0.0, 2000.0, 9000.0]
    assert table.leakage[3].tolist() == [1.0, 0.5, 0.0]
    assert table.input_bytes.tolist() == [1000.0] * 4
    assert table.model_bytes.tolist() == [6000.0, 6000.0, 9000.0, 9000.0]
    assert table.model_prefix_param_bytes.tolist() == [[0.0, 2000.0, 6000.0], [0.0, 2000.0, 9000.0]]
    assert not table.device_flops.flags.writeable


def test_table_from_real_profiles_pads_with_the_local_only_point(tmp_path):
    lenet, vgg = synthetic_profile("lenet7"), synthetic_profile("vgg13")
    table = service_table_from_profiles(["lenet7", "vgg13"], [lenet, vgg], 3)
    lenet_last, vgg_last = len(lenet["partition_points"]) - 1, len(vgg["partition_points"]) - 1
    assert table.num_services == 6
    assert table.num_points.tolist() == [lenet_last] * 3 + [vgg_last] * 3
    assert table.max_points == vgg_last
    assert table.valid[0].tolist() == [True] * (lenet_last + 1) + [False] * (vgg_last - lenet_last)
    assert table.valid[5].all()
    points = lenet["partition_points"]
    assert table.device_flops[1, : lenet_last + 1].tolist() == [p["device_flops"] for p in points]
    assert table.edge_flops[2, : lenet_last + 1].tolist() == [p["edge_flops"] for p in points]
    assert table.prefix_param_bytes[0, : lenet_last + 1].tolist() == [p["device_param_bytes"] for p in points]
    assert table.upload_bytes[0, 0] == lenet["model"]["input_bytes"] == table.input_bytes[0]
    assert table.upload_bytes[0, lenet_last] == 0.0
    assert table.leakage[0, 0] == 1.0 and table.leakage[0, lenet_last] == 0.0
    assert table.leakage[0, 2] == pytest.approx(1 - 2 / lenet_last)
    assert table.model_bytes[4] == vgg["model"]["param_bytes"]
    # beyond L the row repeats z = L: everything on the device, nothing uploaded, nothing leaked
    padding = slice(lenet_last + 1, None)
    assert np.all(table.device_flops[0, padding] == lenet["totals"]["flops"])
    assert np.all(table.edge_flops[0, padding] == 0.0)
    assert np.all(table.upload_bytes[0, padding] == 0.0)
    assert np.all(table.leakage[0, padding] == 0.0)


def test_load_service_table_reads_the_scenarios_profiles(tmp_path):
    paths = write_profiles(tmp_path, ("lenet7", "resnet18"))
    scenario = load_scenario("small", ["services.models=['lenet7', 'resnet18']", "services.services_per_model=5",
                                       profiles_override(paths)])
    table = load_service_table(scenario)
    assert table.num_services == 10 == num_services(scenario)
    assert table.model_names[4:6] == ("lenet7", "resnet18")
    resnet = json.loads((tmp_path / "resnet18.json").read_text())
    assert table.model_bytes[5] == resnet["model"]["param_bytes"]


def test_load_service_table_falls_back_to_shipped_profiles(tmp_path, monkeypatch):
    import edgeprof.data

    (tmp_path / "lenet7.json").write_text(json.dumps(synthetic_profile("lenet7")))
    monkeypatch.setattr(edgeprof.data, "shipped_dir", lambda: tmp_path)
    table = load_service_table(load_scenario("small", ["services.models=['lenet7']"]))
    assert table.model_names == ("lenet7",)
    assert table.leakage[0, 1] == pytest.approx(1 - 1 / table.num_points[0])
    with pytest.raises(EdgeprofError, match="no shipped profile for 'lenet9'"):
        load_service_table(load_scenario("small", ["services.models=['lenet9']"]))


def test_missing_profile_file_is_refused(tmp_path):
    scenario = load_scenario("small", ["services.models=['lenet7']",
                                       profiles_override({"lenet7": str(tmp_path / "nope.json")})])
    with pytest.raises(EdgeprofError, match=r"the profile of lenet7 \(.*nope.json\) does not exist"):
        load_service_table(scenario)


def test_profile_at_another_batch_is_refused():
    profile = toy_profile()
    profile["model"]["batch_size"] = 4
    with pytest.raises(EdgeprofError, match="profile toy was made at batch 4: .* --batch 1"):
        service_table_from_profiles(["toy"], [profile], 1)


def test_profile_without_leakage_is_refused():
    profile = synthetic_profile("lenet7")
    profile["partition_points"][2]["leakage"] = None
    del profile["partition_points"][3]["leakage"]
    with pytest.raises(EdgeprofError) as error:
        service_table_from_profiles(["lenet7"], [profile], 1)
    assert str(error.value) == ("profile lenet7 has no leakage at z=2, 3: attach a table with "
                                "`edgeprof profile lenet7 --leakage ...`")
    table = service_table_from_profiles(["lenet7"], [profile], 2, require_leakage=False)  # systems without privacy
    assert np.isnan(table.leakage[:, 2:4]).all() and table.leakage[0, 0] == 1 and table.leakage[0, -1] == 0
    assert table.leakage[1, 1] == profile["partition_points"][1]["leakage"]["ssim"]
    assert table.device_flops[1, 3] == profile["partition_points"][3]["device_flops"]


def test_a_profile_of_another_model_is_refused(tmp_path):
    paths = write_profiles(tmp_path, ("lenet7", "resnet18"))
    scenario = load_scenario("small", ["services.models=['lenet7']",
                                       profiles_override({"lenet7": paths["resnet18"]})])
    with pytest.raises(EdgeprofError, match=r"the profile given for lenet7 \(.*resnet18.json\) profiles 'resnet18'"):
        load_service_table(scenario)


def test_the_simulator_does_not_import_torch():
    code = ("import sys, edgeprof.sim.core, edgeprof.sim.workload, edgeprof.sim.model, edgeprof.sim.radio; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
