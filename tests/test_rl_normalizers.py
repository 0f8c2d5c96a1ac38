"""Running statistics against numpy on the concatenated data, including a large offset (cancellation)."""

import numpy as np
import pytest
import torch

from edgeprof.rl.normalizers import ObservationNormalizer, RunningMeanStd, ValueNormalizer


def test_matches_numpy_over_uneven_batches_with_a_large_offset():
    rng = np.random.default_rng(0)
    batches = [1e6 + rng.normal(size=(size, 3)).astype(np.float32) * [1.0, 0.01, 100.0] for size in (1, 7, 250, 2, 40)]
    stats = RunningMeanStd((3,))
    for batch in batches:
        stats.update(torch.from_numpy(batch))
    everything = np.concatenate(batches).astype(np.float64)
    assert stats.count == len(everything)
    np.testing.assert_allclose(stats.mean.numpy(), everything.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.var.numpy(), everything.var(axis=0), rtol=1e-9)


def test_leading_axes_are_samples():
    stats = RunningMeanStd((2,))
    data = torch.arange(24, dtype=torch.float32).reshape(3, 4, 2)
    stats.update(data)
    flat = data.reshape(-1, 2).double()
    assert stats.count == 12
    torch.testing.assert_close(stats.mean, flat.mean(0))
    torch.testing.assert_close(stats.var, flat.var(0, unbiased=False))


def test_bad_batches_raise():
    stats = RunningMeanStd((3,))
    with pytest.raises(ValueError, match="must end in"):
        stats.update(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        stats.update(torch.tensor([[0.0, float("nan"), 1.0]]))


def test_value_normalizer_round_trip_and_dtype():
    norm = ValueNormalizer()
    targets = torch.randn(1000, generator=torch.Generator().manual_seed(1)) * 30 - 200
    norm.update(targets)
    normalized = norm.normalize(targets)
    assert normalized.dtype == torch.float32
    assert abs(float(normalized.mean())) < 1e-4 and abs(float(normalized.std(unbiased=False)) - 1) < 1e-4
    torch.testing.assert_close(norm.denormalize(normalized), targets, rtol=1e-5, atol=1e-4)


def test_identity_before_any_data_and_a_variance_floor():
    norm = ValueNormalizer(min_var=1e-4)
    x = torch.tensor([1.5, -2.0])
    assert torch.equal(norm.normalize(x), x)
    norm.update(torch.full((10,), 3.0))  # zero variance: the floor keeps normalised values finite
    assert float(norm.std) == pytest.approx(1e-2)
    assert norm.normalize(torch.tensor([3.01])).item() == pytest.approx(1.0, rel=1e-4)


def test_observation_normalizer_clips():
    norm = ObservationNormalizer((2,), clip=3.0)
    norm.update(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, std 1
    assert norm.normalize(torch.tensor([[2.0, 100.0]])).tolist() == [[1.0, 3.0]]


def test_state_dict_round_trip():
    norm = ObservationNormalizer((2,), clip=5.0)
    norm.update(torch.randn(30, 2))
    other = ObservationNormalizer((2,))
    other.load_state_dict(norm.state_dict())
    assert other.count == norm.count and other.clip == 5.0
    assert torch.equal(other.mean, norm.mean) and torch.equal(other.var, norm.var)
    batch = torch.randn(4, 2)
    norm.update(batch)
    other.update(batch)
    assert torch.equal(other.mean, norm.mean)
    with pytest.raises(ValueError, match="shape"):
        ObservationNormalizer((3,)).load_state_dict(norm.state_dict())
