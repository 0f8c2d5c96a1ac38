"""Partition points: where the default cuts fall, what crosses them, and the invariants of every profile."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgeprof.profiler.graph import run_split
from edgeprof.profiler.models import LoadedModel
from edgeprof.profiler.schema import validate_profile
from edgeprof.profiler.static import analyze, profile_model, static_profile, verify_cuts


def test_resnet18_cuts_at_block_boundaries_with_the_research_notes_bytes():
    profile = profile_model("resnet18")
    points = profile["partition_points"]
    assert [p["after"] for p in points] == [
        None, "maxpool", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0", "layer3", "layer4.0", "flatten", "fc",
    ]
    # Transferred fp32 activations at each cut (research/profiling.md, section 2.2).
    assert [p["upload_bytes"] for p in points] == [
        602_112, 802_816, 802_816, 802_816, 401_408, 401_408, 200_704, 200_704, 100_352, 2_048, 0,
    ]
    assert all(p["single_tensor"] for p in points)
    assert [layer["type"] for layer in profile["layers"]][1:9] == ["BasicBlock"] * 8
    assert profile["layers"][0]["modules"] == ["conv1", "bn1", "relu", "maxpool"]


def test_all_cuts_add_the_two_tensor_cuts_inside_residual_blocks():
    clean = profile_model("resnet18", cuts="clean")["partition_points"]
    every = profile_model("resnet18", cuts="all")["partition_points"]
    assert {p["after"] for p in clean} <= {p["after"] for p in every}
    inside = next(p for p in every if p["after"] == "layer1.0.relu")  # after conv1+bn+relu of the first block
    assert not inside["single_tensor"]
    assert [t["shape"] for t in inside["tensors"]] == [[1, 64, 56, 56], [1, 64, 56, 56]]
    assert inside["upload_bytes"] == 1_605_632
    assert len(every) == 1 + 1 + 8 * 2 + 3 + 1  # input, stem, 2 convs a block, 3 downsample convs, fc


def test_vgg16_groups_activation_and_pooling_with_the_conv():
    profile = profile_model("vgg16")
    assert len(profile["layers"]) == 16  # 13 conv + 3 linear
    first = profile["layers"][0]
    assert (first["name"], first["type"], first["modules"]) == ("features.0", "Conv2d", ["features.0", "features.1"])
    assert profile["layers"][1]["modules"] == ["features.2", "features.3", "features.4"]  # conv, relu, pool
    assert profile["partition_points"][2]["upload_bytes"] == 64 * 112 * 112 * 4


def test_vit_cuts_between_encoder_blocks_and_attention_is_inside_them():
    profile = profile_model("vit_b_16")
    names = [layer["name"] for layer in profile["layers"]]
    assert names[0] == "conv_proj"
    assert names[1:3] == ["encoder.layers.encoder_layer_0.self_attention", "encoder.layers.encoder_layer_0.mlp"]
    assert all(p["upload_bytes"] == 197 * 768 * 4 for p in profile["partition_points"][1:-2])


def test_densenet_blocks_are_units_because_their_features_are_concatenated():
    names = [layer["name"] for layer in profile_model("densenet121")["layers"]]
    assert names == [
        "features.conv0", "features.denseblock1", "features.transition1", "features.denseblock2",
        "features.transition2", "features.denseblock3", "features.transition3", "features.denseblock4",
        "classifier",
    ]


def test_lenet7_matches_the_public_hc_mappo_l_profile():
    """research/hcmappo.md section 3.3: parameter KiB and million MACs per layer of LeNet7.json."""
    layers = profile_model("lenet7")["layers"]
    assert [layer["param_bytes"] / 1024 for layer in layers] == [3.5, 72.25, 288.5, 8193.0, 10.0390625]
    assert [layer["macs"] for layer in layers] == [884_736, 18_874_368, 18_874_368, 2_097_152, 2_560]


def test_cerl_net_reproduces_the_papers_feature_sizes():
    profile = profile_model("cerl-net")
    shapes = [layer["output_shape"][1:] for layer in profile["layers"]]
    assert shapes == [[4, 32, 32], [64, 16, 16], [64, 8, 8], [64, 8, 8], [64, 4, 4], [64, 2, 2], [64], [9]]
    assert profile["layers"][3]["name"] == "transformer"
    assert profile["layers"][3]["macs"] == 33_554_432


def test_prefix_and_suffix_modules_are_usable_on_their_own():
    analysis = analyze(LoadedModel(_residual_net(), "net", "import", "random init", None, (2, 3, 16, 16),
                                   torch.float32, torch.device("cpu")))
    x = torch.randn(2, 3, 16, 16)
    expected = analysis.model.module(x)
    for z in range(len(analysis.cuts)):
        prefix, suffix = analysis.split(z)
        torch.testing.assert_close(run_split(prefix, suffix, x), expected)
        prefix_params = sum(p.numel() * 4 for p in prefix.parameters())
        point = static_profile(analysis)["partition_points"][z]
        assert prefix_params == point["device_param_bytes"]


def _residual_net() -> nn.Module:
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x) + x)

    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Block(), nn.MaxPool2d(2), Block(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 3)).eval()


LAYER_KINDS = st.sampled_from(["conv", "bn", "relu", "pool", "residual", "dropout", "gelu"])


class RandomNet(nn.Module):
    """A random stack of conv-net pieces with residual blocks, ending in a linear head."""

    def __init__(self, kinds: list[str], channels: int, size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1)]
        for kind in kinds:
            if kind == "conv":
                layers.append(nn.Conv2d(channels, channels, 3, padding=1))
            elif kind == "bn":
                layers.append(nn.BatchNorm2d(channels))
            elif kind == "relu":
                layers.append(nn.ReLU())
            elif kind == "gelu":
                layers.append(nn.GELU())
            elif kind == "dropout":
                layers.append(nn.Dropout(0.5))
            elif kind == "pool" and size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            elif kind == "residual":
                layers.append(_Residual(channels))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(channels * size * size, 3)

    def forward(self, x):
        return self.head(self.body(x).flatten(1))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(LAYER_KINDS, max_size=10), channels=st.integers(1, 6), size=st.sampled_from([4, 8, 16]),
       batch=st.integers(1, 3), cuts=st.sampled_from(["clean", "all"]))
def test_invariants_and_cuts_hold_for_random_networks(kinds, channels, size, batch, cuts):
    torch.manual_seed(0)
    net = RandomNet(kinds, channels, size).eval()
    loaded = LoadedModel(net, "random", "import", "random init", None, (batch, 3, size, size), torch.float32,
                         torch.device("cpu"))
    analysis = analyze(loaded, cuts)
    profile = validate_profile(static_profile(analysis))
    points, total = profile["partition_points"], profile["totals"]["flops"]
    device = [p["device_flops"] for p in points]
    assert device == sorted(device) and device[0] == 0 and device[-1] == total
    assert all(p["device_flops"] + p["edge_flops"] == total for p in points)
    assert points[0]["upload_bytes"] == batch * 3 * size * size * 4
    assert points[-1]["upload_bytes"] == 0
    if cuts == "clean":
        assert all(p["single_tensor"] for p in points)
    assert all(check.ok for check in verify_cuts(analysis, loaded))


def test_a_layer_that_holds_several_modules_names_them_all():
    """A Fire module's expand1x1 and expand3x3 run between the same two cuts: the layer is named after both, not
    after the tenth of its FLOPs that expand1x1 holds."""
    layers = {layer["name"]: layer for layer in profile_model("squeezenet1_0")["layers"]}
    fire = layers["features.5.expand1x1+expand3x3"]
    assert fire["modules"] == ["features.5.expand1x1", "features.5.expand1x1_activation", "features.5.expand3x3",
                               "features.5.expand3x3_activation", "features.5", "features.6"]  # cat, then the pool
    assert fire["flops"] == 238_878_720 == 2 * 54 * 54 * 128 * (32 + 9 * 32)  # both convs
    assert "features.5.expand1x1" not in layers


def test_params_used_leaves_out_what_no_point_runs():
    """googlenet built without weights keeps its two auxiliary classifiers, which eval-mode forward never runs."""
    profile = profile_model("googlenet")
    model = profile["model"]
    assert (model["params"], model["params_used"]) == (13_004_888, 6_624_904)
    assert model["param_bytes_used"] == 4 * 6_624_904
    assert profile["partition_points"][-1]["device_param_bytes"] == model["param_bytes_used"]
    resnet = profile_model("resnet18")["model"]
    assert resnet["params_used"] == resnet["params"] == 11_689_512
