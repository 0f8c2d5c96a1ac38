"""Independent counters as test oracles: fvcore and ptflops report MACs of conv nets within 1% of ours."""

from __future__ import annotations

import contextlib
import io
import logging

import pytest
import torch
import torchvision

from edgeprof.profiler.static import profile_model

fvcore = pytest.importorskip("fvcore.nn")
ptflops = pytest.importorskip("ptflops")

CONV_NETS = ["vgg16", "resnet18", "resnet50", "alexnet", "googlenet", "inception_v3", "wide_resnet50_2"]


def _model_and_input(name: str):
    size = 299 if name == "inception_v3" else 224
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, init_weights=False) if name in ("googlenet", "inception_v3") \
        else torchvision.models.get_model(name)
    return model.eval(), torch.randn(1, 3, size, size), size


def _fvcore_macs(model, x, count_norms_and_pools: bool = True) -> int:
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = fvcore.FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    if not count_norms_and_pools:
        uncounted = lambda inputs, outputs: 0  # noqa: E731 (a None handle does not replace a built-in one)
        analysis.set_op_handle("aten::batch_norm", uncounted, "aten::adaptive_avg_pool2d", uncounted)
    return analysis.total()


@pytest.mark.parametrize("name", CONV_NETS)
def test_macs_agree_with_fvcore_and_ptflops_within_one_percent(name):
    ours = profile_model(name)["totals"]["macs"]
    model, x, size = _model_and_input(name)
    with contextlib.redirect_stdout(io.StringIO()):
        hooks, _ = ptflops.get_model_complexity_info(
            model, (3, size, size), as_strings=False, print_per_layer_stat=False, backend="pytorch",
            backend_specific_config={"count_functional": False},
        )
        dispatch, _ = ptflops.get_model_complexity_info(
            model, (3, size, size), as_strings=False, print_per_layer_stat=False, backend="aten"
        )
    for oracle in (_fvcore_macs(model, x), hooks, dispatch):
        assert abs(oracle / ours - 1) < 0.01


@pytest.mark.parametrize("name", ["mobilenet_v2", "densenet121", "regnet_x_400mf", "resnet50"])
def test_fvcore_without_norms_and_pools_matches_exactly(name):
    """fvcore's extra counts are exactly its batch-norm and pooling handles; the MACs are the same."""
    model, x, _ = _model_and_input(name)
    assert _fvcore_macs(model, x, count_norms_and_pools=False) == profile_model(name)["totals"]["macs"]
