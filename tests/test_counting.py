"""FLOP counting: equal to FlopCounterMode's reference, attention counted, nothing silently zero."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from edgeprof.profiler.counting import OpCounter, canonical_counting
from edgeprof.profiler.models import load_model
from edgeprof.profiler.static import analyze, profile_model


def reference_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FlopCounterMode on the eager model with the MHA fast path off and the math attention kernel."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            module(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "name",
    ["vgg16", "resnet50", "mobilenet_v3_large", "googlenet", "densenet121", "inception_v3", "swin_t", "vit_b_16"],
)
def test_totals_equal_flop_counter_mode_on_cpu(name):
    runnable = load_model(name, device="cpu")
    expected = reference_flops(runnable.module, *runnable.example_inputs())
    profile = profile_model(name)
    assert profile["totals"]["flops"] == expected
    assert profile["totals"]["macs"] * 2 == expected
    assert profile["counting"]["uncounted_ops"] == {}
    assert profile["model"]["params"] == sum(p.numel() for p in runnable.module.parameters())


def test_vit_b_16_attention_is_counted():
    assert profile_model("vit_b_16")["totals"]["flops"] == 35_127_656_448


@pytest.mark.parametrize(
    ("name", "params"),
    [("vgg16", 138_357_544), ("resnet50", 25_557_032), ("mobilenet_v3_large", 5_483_032), ("resnet18", 11_689_512)],
)
def test_parameter_counts_are_exact(name, params):
    profile = profile_model(name)
    assert profile["model"]["params"] == params
    assert profile["model"]["param_bytes"] == 4 * params


def _count(fn, *inputs) -> OpCounter:
    counter = OpCounter()
    with canonical_counting(), counter:
        fn(*inputs)
    return counter


@pytest.mark.parametrize(
    ("module", "per_element"),
    [(nn.ReLU(), 1), (nn.Hardswish(), 1), (nn.BatchNorm2d(4).eval(), 2), (nn.GroupNorm(2, 4), 5)],
)
def test_elementwise_rules(module, per_element):
    x = torch.randn(2, 4, 6, 6)
    counter = _count(module, x)
    assert counter.flops == 0
    assert counter.elementwise_flops == per_element * x.numel()
    assert not counter.uncounted


def test_pooling_counts_its_window():
    x = torch.randn(1, 2, 8, 8)
    assert _count(nn.MaxPool2d(2), x).elementwise_flops == 4 * 2 * 4 * 4
    assert _count(nn.AvgPool2d(3, stride=1), x).elementwise_flops == 9 * 2 * 6 * 6


def test_ops_without_formula_are_reported_not_silently_zero():
    counter = _count(lambda t: torch.cumsum(t, 0) + torch.special.bessel_j0(t), torch.randn(5, 3))
    assert counter.uncounted == {"aten.cumsum": 1, "aten.special_bessel_j0": 1}
    assert counter.elementwise_flops == 15  # the add


def test_cpu_flash_attention_kernel_costs_the_same_as_math_attention():
    q, k, v = (torch.randn(2, 4, 16, 8) for _ in range(3))
    fused = _count(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, q, k, v)
    math_kernel = _count(F.scaled_dot_product_attention, q, k, v)
    assert fused.flops == math_kernel.flops == 2 * (2 * 2 * 4 * 16 * 16 * 8)


def test_multihead_attention_fast_path_is_counted():
    attention = nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(1, 10, 64)
    counter = _count(lambda t: attention(t, t, t, need_weights=False), x)
    projections = 10 * 64 * 3 * 64 + 10 * 64 * 64
    scores_and_values = 2 * 4 * 10 * 10 * 16
    assert counter.flops == 2 * (projections + scores_and_values)


def test_meta_and_cpu_counts_agree():
    meta = analyze(load_model("resnet18", input_size=64))
    cpu = analyze(load_model("resnet18", input_size=64, device="cpu"))
    assert [c.flops for c in meta.costs.values()] == [c.flops for c in cpu.costs.values()]
    assert [c.elementwise_flops for c in meta.costs.values()] == [c.elementwise_flops for c in cpu.costs.values()]


def test_flops_scale_with_batch_and_bytes_with_dtype():
    one = profile_model("resnet18", input_size=64)
    four = profile_model("resnet18", input_size=64, batch_size=4)
    half = profile_model("resnet18", input_size=64, dtype="float16")
    assert four["totals"]["flops"] == 4 * one["totals"]["flops"]
    uploads = [p["upload_bytes"] for p in one["partition_points"]]
    assert [p["upload_bytes"] for p in four["partition_points"]] == [4 * u for u in uploads]
    assert half["totals"] == one["totals"]
    assert half["model"]["param_bytes"] * 2 == one["model"]["param_bytes"]
    assert [2 * p["upload_bytes"] for p in half["partition_points"]] == uploads
