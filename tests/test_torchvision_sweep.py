"""Every torchvision classification model: FLOPs equal FlopCounterMode's, parameters exact, cuts verified."""

from __future__ import annotations

import pytest
import torch
from test_counting import reference_flops

from edgeprof.profiler.models import default_input_size, load_model, torchvision_names
from edgeprof.profiler.static import analyze, static_profile, verify_cuts

pytestmark = pytest.mark.slow  # minutes of CPU: CI runs it, `pytest` alone does not

# The smallest input each model allows (torchvision's min_size, a multiple of the ViT patch, or MaxViT's 224).
SMALL_SIZES = {"alexnet": 64, "inception_v3": 75, "maxvit_t": 224, "vit_h_14": 28}


@pytest.mark.parametrize("name", torchvision_names())
def test_totals_and_params_at_default_size(name):
    model = load_model(name)  # meta device: no arithmetic
    assert model.input_shape[-1] == default_input_size(name)
    profile = static_profile(analyze(model))
    assert profile["totals"]["flops"] == reference_flops(model.module, *model.example_inputs())
    assert profile["model"]["params"] == sum(p.numel() for p in model.module.parameters())
    assert profile["counting"]["uncounted_ops"] == {}


@pytest.mark.parametrize("name", torchvision_names())
def test_prefix_then_suffix_reproduces_the_model(name):
    size = SMALL_SIZES.get(name, 32)
    analysis = analyze(load_model(name, input_size=size))
    checks = verify_cuts(analysis, load_model(name, input_size=size, device="cpu", seed=1), seed=1)
    assert len(checks) == len(analysis.layers) + 1 >= 3
    assert [c.z for c in checks if not c.ok] == []
    assert all(torch.isfinite(torch.tensor(c.max_abs_diff)) for c in checks)
