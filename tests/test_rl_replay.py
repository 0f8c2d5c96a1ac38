"""Replay buffers: the ring, multi-agent rows, seeded sampling, checkpoint round trips, prioritised draws and
weights."""

import math

import pytest
import torch

from edgeprof.rl.buffers import Field
from edgeprof.rl.checkpoint import load_checkpoint, save_checkpoint
from edgeprof.rl.replay import PrioritizedReplayBuffer, ReplayBuffer

FIELDS = {"obs": Field((3,)), "action": Field((), torch.long), "reward": Field(()),
          "terminated": Field((), torch.bool)}


def _rows(values: list[float]) -> dict[str, torch.Tensor]:
    """Rows whose every field encodes the same number, so a sample's fields can be checked to stay aligned."""
    value = torch.tensor(values)
    return {"obs": value.unsqueeze(-1).expand(-1, 3), "action": value.long(), "reward": value,
            "terminated": value.long() % 2 == 1}


def _aligned(data: dict[str, torch.Tensor]) -> bool:
    return (torch.equal(data["obs"][:, 0], data["reward"]) and torch.equal(data["action"], data["reward"].long())
            and torch.equal(data["terminated"], data["action"] % 2 == 1))


def test_the_ring_overwrites_the_oldest_rows():
    buffer = ReplayBuffer(5, FIELDS, seed=0)
    assert buffer.add(**_rows([0.0, 1.0, 2.0])).tolist() == [0, 1, 2]
    assert buffer.add(**_rows([3.0, 4.0, 5.0, 6.0])).tolist() == [3, 4, 0, 1]
    assert len(buffer) == 5 and buffer.position == 2
    stored = buffer.sample(200).data
    assert set(stored["reward"].tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}  # 0 and 1 were overwritten
    assert _aligned(stored)


def test_leading_axes_are_flattened_row_major_and_joint_rows_keep_their_agent_axis():
    E, N = 2, 3
    per_agent = ReplayBuffer(12, {"obs": Field((4,)), "action": Field((), torch.long)}, seed=0)
    obs = torch.arange(E * N * 4, dtype=torch.float32).reshape(E, N, 4)
    slots = per_agent.add(obs=obs, action=torch.arange(E * N).reshape(E, N))
    assert slots.tolist() == list(range(E * N))
    sample = per_agent.sample(50)
    assert torch.equal(sample.data["obs"], obs.reshape(E * N, 4)[sample.data["action"]])  # row k = (k // N, k % N)

    joint = ReplayBuffer(4, {"obs": Field((N, 4)), "reward": Field(())}, seed=0)
    assert joint.add(obs=obs, reward=torch.zeros(E)).tolist() == [0, 1]  # E rows, each with all N agents
    single = joint.add(obs=torch.ones(N, 4), reward=torch.tensor(1.0))  # no leading axis: one row
    assert single.tolist() == [2] and len(joint) == 3


def test_bad_rows_are_refused_with_the_field_named():
    buffer = ReplayBuffer(4, FIELDS, seed=0)
    rows = _rows([0.0, 1.0])
    with pytest.raises(ValueError, match=r"obs must have shape \(\*leading, 3\) = \(2, 3\), got \(2, 2\)"):
        buffer.add(**{**rows, "obs": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"action must have shape .* = \(2,\), got \(3,\)"):
        buffer.add(**{**rows, "action": torch.zeros(3, dtype=torch.long)})
    with pytest.raises(ValueError, match="action must be integer"):
        buffer.add(**{**rows, "action": torch.zeros(2)})
    with pytest.raises(ValueError, match="NaN"):
        buffer.add(**{**rows, "reward": torch.tensor([0.0, math.nan])})
    with pytest.raises(ValueError, match=r"missing \['terminated'\], unknown \['done'\]"):
        buffer.add(obs=rows["obs"], action=rows["action"], reward=rows["reward"], done=rows["terminated"])
    with pytest.raises(ValueError, match="adding 5 rows at once to a buffer of capacity 4"):
        buffer.add(**_rows([0.0] * 5))
    with pytest.raises(ValueError, match="nothing to sample"):
        buffer.sample(1)
    assert len(buffer) == 0  # nothing was half-written
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, FIELDS, seed=0)


def test_the_same_seed_gives_the_same_batches_and_draws_are_uniform():
    def batches(seed: int) -> list[torch.Tensor]:
        buffer = ReplayBuffer(10, FIELDS, seed=seed)
        buffer.add(**_rows([float(k) for k in range(10)]))
        return [buffer.sample(7).index for _ in range(3)]

    assert all(torch.equal(a, b) for a, b in zip(batches(3), batches(3), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(batches(3), batches(4), strict=True))
    buffer = ReplayBuffer(10, FIELDS, seed=0)
    buffer.add(**_rows([float(k) for k in range(10)]))
    sample = buffer.sample(20_000)
    counts = torch.bincount(sample.index, minlength=10)
    assert (counts - 2000).abs().max() < 4 * math.sqrt(20_000 * 0.1 * 0.9)  # binomial: within 4 standard deviations
    assert sample.weight.unique().tolist() == [1.0] and _aligned(sample.data)


@pytest.mark.parametrize("prioritized", [False, True])
def test_a_checkpointed_buffer_continues_exactly(tmp_path, prioritized):
    def make(seed: int) -> ReplayBuffer:
        if prioritized:
            return PrioritizedReplayBuffer(8, FIELDS, seed=seed, alpha=0.7)
        return ReplayBuffer(8, FIELDS, seed=seed)

    def continue_run(buffer: ReplayBuffer) -> list[torch.Tensor]:
        drawn = []
        for step in range(4):
            buffer.add(**_rows([10.0 + step, 20.0 + step, 30.0 + step]))
            sample = buffer.sample(5, beta=0.5) if prioritized else buffer.sample(5)
            if prioritized:
                buffer.update_priorities(sample.index, sample.data["reward"] / 7)
            drawn += [sample.index, sample.data["obs"], sample.weight]
        return drawn

    original = make(0)
    original.add(**_rows([1.0, 2.0, 3.0, 4.0, 5.0]))
    if prioritized:
        original.update_priorities(torch.tensor([0, 1, 1]), torch.tensor([4.0, 2.0, 0.5]))
    save_checkpoint(tmp_path / "replay.pt", 1, {"replay": original})
    expected = continue_run(original)
    resumed = make(99)
    load_checkpoint(tmp_path / "replay.pt", {"replay": resumed})
    assert all(torch.equal(a, b) for a, b in zip(continue_run(resumed), expected, strict=True))


def test_loading_into_another_layout_is_refused():
    state = ReplayBuffer(8, FIELDS, seed=0).state_dict()
    with pytest.raises(ValueError, match="capacity 8 .* cannot be loaded into one of capacity 9"):
        ReplayBuffer(9, FIELDS, seed=0).load_state_dict(state)
    with pytest.raises(ValueError, match="cannot be loaded"):
        ReplayBuffer(8, {**FIELDS, "obs": Field((4,))}, seed=0).load_state_dict(state)
    prioritized = PrioritizedReplayBuffer(8, FIELDS, seed=0, alpha=0.5).state_dict()
    with pytest.raises(ValueError, match="alpha 0.5"):
        PrioritizedReplayBuffer(8, FIELDS, seed=0, alpha=0.6).load_state_dict(prioritized)


def _prioritized(priorities: list[float], capacity: int = 8, alpha: float = 1.0) -> PrioritizedReplayBuffer:
    """A buffer whose rows have exactly these p = |TD error| + eps (eps 0.5)."""
    buffer = PrioritizedReplayBuffer(capacity, FIELDS, seed=0, alpha=alpha, eps=0.5)
    buffer.add(**_rows([float(k) for k in range(len(priorities))]))
    buffer.update_priorities(torch.arange(len(priorities)), torch.tensor(priorities) - 0.5)
    return buffer


def test_stratified_draws_and_importance_weights_by_hand():
    buffer = _prioritized([1.0, 3.0])  # P = 1/4, 3/4; segments of width 1 over [0, 4): row 0 once, row 1 three times
    sample = buffer.sample(4, beta=1.0)
    assert sample.index.tolist() == [0, 1, 1, 1]
    # w = (n P)^-beta / max w: n P = 0.5, 1.5 -> 2, 2/3 -> 1, 1/3
    torch.testing.assert_close(sample.weight, torch.tensor([1.0, 1 / 3, 1 / 3, 1 / 3]))
    torch.testing.assert_close(buffer.sample(4, beta=0.5).weight, torch.tensor([1.0, *[3 ** -0.5] * 3]))
    assert buffer.sample(4, beta=0.0).weight.tolist() == [1.0] * 4
    skewed = _prioritized([1.0, 99.0])  # the normalisation is over the buffer, not the batch: row 1 alone weighs 1/99
    draws = [skewed.sample(1, beta=1.0) for _ in range(20)]
    assert {(d.index.item(), round(d.weight.item() * 99, 4)) for d in draws} == {(1, 1.0)}


def test_alpha_shapes_the_draw_probabilities():
    priorities = [1.0, 2.0, 4.0, 8.0]
    for alpha in (0.0, 0.5, 1.0):
        buffer = _prioritized(priorities, alpha=alpha)
        counts = torch.bincount(buffer.sample(40_000).index, minlength=4).double() / 40_000
        expected = torch.tensor(priorities, dtype=torch.float64) ** alpha
        torch.testing.assert_close(counts, expected / expected.sum(), atol=0.01, rtol=0.0)
    assert _prioritized(priorities, alpha=0.0).sample(5, beta=1.0).weight.unique().tolist() == [1.0]


def test_new_rows_get_the_largest_priority_and_overwritten_rows_leave_the_minimum():
    buffer = _prioritized([1.0, 3.0], capacity=3)
    buffer.add(**_rows([2.0]))  # gets p = 3, the largest so far
    assert buffer.sample(7, beta=1.0).index.tolist() == [0, 1, 1, 1, 2, 2, 2]
    buffer.add(**_rows([3.0]))  # overwrites row 0 (p = 1): the minimum is now 3, every weight 1
    sample = buffer.sample(6, beta=1.0)
    assert sample.weight.tolist() == [1.0] * 6 and sorted(set(sample.index.tolist())) == [0, 1, 2]
    assert _aligned(sample.data)


def test_a_row_drawn_twice_takes_its_last_error_and_bad_updates_are_refused():
    buffer = _prioritized([1.0, 1.0])
    buffer.update_priorities(torch.tensor([1, 0, 1]), torch.tensor([5.0, 0.5, 2.5]))  # row 1: last error 2.5
    assert buffer.sample(4, beta=1.0).index.tolist() == [0, 1, 1, 1]
    assert buffer.max_priority == 5.5  # the largest ever set, even if since replaced
    with pytest.raises(ValueError, match=r"index must lie in \[0, 2\)"):
        buffer.update_priorities(torch.tensor([2]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        buffer.update_priorities(torch.tensor([0]), torch.tensor([math.nan]))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        buffer.update_priorities(torch.tensor([0, 1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="beta"):
        buffer.sample(2, beta=1.5)
    with pytest.raises(ValueError, match="alpha"):
        PrioritizedReplayBuffer(4, FIELDS, seed=0, alpha=2.0)


def test_a_partly_filled_buffer_draws_stored_rows_in_proportion_to_their_priorities():
    generator = torch.Generator().manual_seed(0)
    buffer = PrioritizedReplayBuffer(1000, {"x": Field(())}, seed=0, alpha=1.0, eps=1e-3)
    buffer.add(x=torch.zeros(300))
    errors = torch.rand(300, generator=generator, dtype=torch.float64) ** 4  # many tiny priorities
    buffer.update_priorities(torch.arange(300), errors)
    index = torch.cat([buffer.sample(64).index for _ in range(500)])
    assert int(index.max()) < 300  # never an empty slot
    share = (errors + 1e-3) / (errors + 1e-3).sum()
    top = share.argsort(descending=True)[:30]  # the 30 largest priorities
    drawn = torch.isin(index, top).double().mean().item()
    assert drawn == pytest.approx(share[top].sum().item(), abs=0.01)
    sample = buffer.sample(64, beta=1.0)  # w_i = p_min / p_i: every weight times its priority is p_min
    torch.testing.assert_close(sample.weight.double() * (errors[sample.index] + 1e-3),
                               torch.full((64,), float(errors.min()) + 1e-3, dtype=torch.float64), rtol=1e-6, atol=0)
