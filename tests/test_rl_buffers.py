"""Rollout buffers: shapes checked on insert, inserts in the order of the phases, bootstrapping, minibatches."""

import pytest
import torch

from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.gae import gae

E, N, OBS, J = 2, 3, 4, 5


def _user_buffer(capacity: int = 4, with_costs: bool = True) -> RolloutBuffer:
    return RolloutBuffer(Phase("user", 1), capacity, E, N, with_costs=with_costs, fields={
        "obs": Field((OBS,)), "action": Field((2,), torch.long), "server_mask": Field((J,), torch.bool)})


def _decision(buffer: RolloutBuffer, slot: int, value: torch.Tensor, **overrides):
    args = {"obs": torch.full((E, N, OBS), float(slot)), "action": torch.zeros(E, N, 2, dtype=torch.long),
            "server_mask": torch.ones(E, N, J, dtype=torch.bool), "log_prob": torch.full((E, N), -float(slot)),
            "value": value}
    if buffer.with_costs:
        args["cost_value"] = value * 10
    args.update(overrides)
    buffer.add_decision(slot, **args)


def _outcome(buffer: RolloutBuffer, reward: torch.Tensor, **extra):
    buffer.add_outcome(reward, cost=reward * 10 if buffer.with_costs else None, **extra)


def test_per_slot_returns_match_gae_with_the_bootstrap():
    generator = torch.Generator().manual_seed(0)
    values, rewards = torch.randn(4, E, N, generator=generator), torch.randn(4, E, N, generator=generator)
    last = torch.randn(E, N, generator=generator)
    buffer = _user_buffer()
    for t in range(4):
        _decision(buffer, t, values[t])
        _outcome(buffer, rewards[t])
    buffer.finish(last_value=last, last_cost_value=last * 10)
    buffer.compute_returns(gamma=0.9, lam=0.8)
    no = torch.zeros(4, E, N, dtype=torch.bool)
    expected, expected_returns = gae(rewards, values, torch.cat([values[1:], last[None]]), no, no, 0.9, 0.8)
    torch.testing.assert_close(buffer.stored("advantage"), expected)
    torch.testing.assert_close(buffer.stored("return"), expected_returns)
    cost_expected, _ = gae(rewards * 10, values * 10, torch.cat([values[1:], last[None]]) * 10, no, no, 0.9, 0.8)
    torch.testing.assert_close(buffer.stored("cost_advantage"), cost_expected)


def test_truncation_in_one_environment_bootstraps_from_its_final_value():
    buffer = _user_buffer(capacity=3, with_costs=False)
    ones = torch.ones(E, N)
    _decision(buffer, 0, ones * 1)
    _outcome(buffer, ones, truncated=torch.tensor([True, False]), final_value=ones * 7)
    _decision(buffer, 1, ones * 2)
    _outcome(buffer, ones)
    with pytest.raises(ValueError, match="last_value"):
        buffer.finish()
    buffer.finish(last_value=ones * 3)
    next_values = buffer.stored("next_value")
    assert next_values[0, 0].tolist() == [7.0] * N and next_values[0, 1].tolist() == [2.0] * N
    assert next_values[1].unique().tolist() == [3.0]
    buffer.compute_returns(gamma=0.5, lam=1.0)
    advantages = buffer.stored("advantage")
    # env 0, step 0: truncated: 1 + 0.5*7 - 1, no carry; env 1: delta_0 = 1 + 0.5*2 - 1 = 1, delta_1 = 1 + 1.5 - 2
    assert advantages[0, 0].tolist() == [3.5] * N
    assert advantages[0, 1].tolist() == [1.0 + 0.5 * 0.5] * N


def test_truncation_without_final_values_raises():
    buffer = _user_buffer(with_costs=False)
    _decision(buffer, 0, torch.zeros(E, N))
    with pytest.raises(ValueError, match="final_value"):
        _outcome(buffer, torch.zeros(E, N), truncated=torch.tensor([False, True]))
    with pytest.raises(ValueError, match="both terminated and truncated"):
        _outcome(buffer, torch.zeros(E, N), truncated=torch.tensor([False, True]),
                 terminated=torch.tensor([False, True]), final_value=torch.zeros(E, N))


def test_termination_bootstraps_from_zero():
    buffer = _user_buffer(capacity=2, with_costs=False)
    _decision(buffer, 0, torch.ones(E, N))
    _outcome(buffer, torch.ones(E, N), terminated=torch.tensor([True, True]))
    _decision(buffer, 0, torch.full((E, N), 5.0))  # every environment restarted: the slot count may restart
    _outcome(buffer, torch.ones(E, N))
    buffer.finish(last_value=torch.zeros(E, N))
    buffer.compute_returns(gamma=0.9, lam=0.9)
    assert buffer.stored("next_value")[0].unique().tolist() == [0.0]
    assert buffer.stored("advantage")[0].unique().tolist() == [0.0]  # 1 + 0 - 1


def test_sparse_deployment_buffer():
    """Decisions every 10 slots; each reward arrives at the next decision; the last one is left out."""
    buffer = RolloutBuffer(Phase("deploy", 10), 3, E, J, fields={"choices": Field((6,), torch.long)})
    choices = torch.full((E, J, 6), -1, dtype=torch.long)
    with pytest.raises(ValueError, match="multiples of 10"):
        buffer.add_decision(5, log_prob=torch.zeros(E, J), value=torch.zeros(E, J), choices=choices)
    for n, slot in enumerate((0, 10, 20)):
        if n:
            buffer.add_outcome(torch.full((E, J), float(n)))  # eq. 24 for the interval that just ended
        buffer.add_decision(slot, log_prob=torch.zeros(E, J), value=torch.full((E, J), 10.0 * (n + 1)),
                            choices=choices)
    with pytest.raises(ValueError, match="do not pass last values"):
        buffer.finish(last_value=torch.zeros(E, J))
    buffer.finish()
    assert buffer.num_steps == 2
    assert buffer.stored("next_value")[:, 0, 0].tolist() == [20.0, 30.0]
    buffer.compute_returns(gamma=0.5, lam=0.0)  # gamma per decision
    assert buffer.stored("advantage")[:, 0, 0].tolist() == [1 + 0.5 * 20 - 10, 2 + 0.5 * 30 - 20]


def test_order_is_enforced():
    buffer = _user_buffer(capacity=2)
    with pytest.raises(ValueError, match="needs a decision first"):
        _outcome(buffer, torch.zeros(E, N))
    with pytest.raises(ValueError, match="no decision with an outcome"):
        buffer.finish(last_value=torch.zeros(E, N))
    _decision(buffer, 0, torch.zeros(E, N))
    with pytest.raises(ValueError, match="has no outcome yet"):
        _decision(buffer, 1, torch.zeros(E, N))
    _outcome(buffer, torch.zeros(E, N))
    with pytest.raises(ValueError, match="the next is 1, got 2"):
        _decision(buffer, 2, torch.zeros(E, N))
    _decision(buffer, 1, torch.zeros(E, N))
    _outcome(buffer, torch.zeros(E, N))
    with pytest.raises(ValueError, match="full"):
        _decision(buffer, 2, torch.zeros(E, N))
    with pytest.raises(ValueError, match="compute returns"):
        next(buffer.minibatches(1))
    buffer.finish(last_value=torch.zeros(E, N), last_cost_value=torch.zeros(E, N))
    with pytest.raises(ValueError, match="finished"):
        _decision(buffer, 2, torch.zeros(E, N))
    buffer.reset()
    _decision(buffer, 7, torch.zeros(E, N))


def test_shapes_dtypes_and_values_are_checked_on_insert():
    buffer = _user_buffer()
    zeros = torch.zeros(E, N)
    with pytest.raises(ValueError, match=r"obs must have shape \(E, N, 4\) = \(2, 3, 4\), got \(2, 3, 5\)"):
        _decision(buffer, 0, zeros, obs=torch.zeros(E, N, OBS + 1))
    with pytest.raises(ValueError, match=r"value must have shape \(E, N\)"):
        _decision(buffer, 0, zeros.unsqueeze(-1))
    with pytest.raises(ValueError, match="action must be integer"):
        _decision(buffer, 0, zeros, action=torch.zeros(E, N, 2))
    with pytest.raises(ValueError, match="server_mask must be bool"):
        _decision(buffer, 0, zeros, server_mask=torch.ones(E, N, J, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        _decision(buffer, 0, torch.full((E, N), float("nan")))
    with pytest.raises(ValueError, match="PPO ratio"):
        _decision(buffer, 0, zeros, log_prob=torch.zeros(E, N, dtype=torch.float64))
    with pytest.raises(ValueError, match="missing"):
        buffer.add_decision(0, log_prob=zeros, value=zeros, cost_value=zeros)
    with pytest.raises(ValueError, match="needs cost_value"):
        _decision(buffer, 0, zeros, cost_value=None)
    _decision(buffer, 0, zeros)
    with pytest.raises(ValueError, match=r"terminated must have shape \(E,\)"):
        _outcome(buffer, zeros, terminated=torch.zeros(E, N, dtype=torch.bool))
    with pytest.raises(ValueError, match="reserved"):
        RolloutBuffer(Phase("user", 1), 2, E, N, fields={"value": Field(())})
    with pytest.raises(ValueError, match="with_costs=False"):
        plain = _user_buffer(with_costs=False)
        _decision(plain, 0, zeros, cost_value=zeros)
    with pytest.raises(ValueError, match="interval"):
        Phase("deploy", 0)


def test_inputs_from_numpy_and_from_a_graph_are_stored_detached():
    import numpy as np

    buffer = _user_buffer(capacity=1, with_costs=False)
    value = torch.ones(E, N, requires_grad=True) * 2
    _decision(buffer, 0, value, obs=np.ones((E, N, OBS)), server_mask=np.ones((E, N, J), dtype=bool))
    assert not buffer.stored("value").requires_grad
    assert buffer.stored("obs").dtype == torch.float32


def test_minibatches_cover_every_sample_once_and_are_reproducible():
    buffer = _user_buffer(capacity=4, with_costs=False)
    for t in range(4):
        _decision(buffer, t, torch.zeros(E, N))
        _outcome(buffer, torch.zeros(E, N))
    buffer.finish(last_value=torch.zeros(E, N))
    buffer.compute_returns(0.99, 0.95)
    batches = list(buffer.minibatches(5, torch.Generator().manual_seed(0)))
    again = list(buffer.minibatches(5, torch.Generator().manual_seed(0)))
    assert len(batches) == 5 and sum(len(b["log_prob"]) for b in batches) == 4 * E * N
    assert all(torch.equal(a["obs"], b["obs"]) for a, b in zip(batches, again, strict=True))
    assert set(batches[0]) == {"obs", "action", "server_mask", "log_prob", "value", "reward", "advantage", "return"}
    log_probs = torch.cat([b["log_prob"] for b in batches])
    assert sorted(log_probs.tolist()) == sorted(-float(t) for t in range(4) for _ in range(E * N))
    for batch in batches:  # rows stay aligned: this test stored obs = slot and log_prob = -slot
        assert torch.equal(batch["obs"][:, 0], -batch["log_prob"])
        assert batch["obs"].shape[1:] == (OBS,) and batch["server_mask"].shape[1:] == (J,)
    with pytest.raises(ValueError, match="num_minibatches"):
        next(buffer.minibatches(0))


def test_whole_row_minibatches_keep_every_agent_of_a_slot_together():
    buffer = _user_buffer(capacity=4, with_costs=False)
    for t in range(4):
        obs = torch.zeros(E, N, OBS)
        obs[..., 0] = (t * E + torch.arange(E)).unsqueeze(-1)  # the (slot, environment) row of each sample
        _decision(buffer, t, torch.zeros(E, N), obs=obs)
        _outcome(buffer, torch.zeros(E, N))
    buffer.finish(last_value=torch.zeros(E, N))
    buffer.compute_returns(0.99, 0.95)
    batches = list(buffer.minibatches(3, torch.Generator().manual_seed(0), whole_rows=True))
    rows = [batch["obs"][:, 0].long() for batch in batches]
    assert sorted(torch.cat(rows).tolist()) == sorted(list(range(4 * E)) * N)  # every sample exactly once
    for batch_rows in rows:
        counts = torch.bincount(batch_rows, minlength=4 * E)
        assert set(counts.tolist()) <= {0, N}  # a row is in a minibatch with all its agents, or not at all
    with pytest.raises(ValueError, match=f"\\[1, {4 * E}\\] \\(the rows stored\\)"):
        next(buffer.minibatches(4 * E + 1, whole_rows=True))
    drawn = torch.randperm(4 * E, generator=torch.Generator().manual_seed(0))  # the order given beforehand ...
    given = list(buffer.minibatches(3, whole_rows=True, order=drawn))
    assert all(torch.equal(a["obs"], b["obs"]) for a, b in zip(batches, given, strict=True))  # ... is the one drawn
    with pytest.raises(ValueError, match=f"permutation of the {4 * E} units stored, got shape \\(5,\\)"):
        next(buffer.minibatches(3, whole_rows=True, order=torch.arange(5)))


def test_scores_given_after_the_rollout_equal_scores_given_at_each_decision():
    """`set_scores` for the whole rollout: the same next values, advantages and returns as values given one
    decision at a time, including a pending last decision (deployment) whose value bootstraps the one before."""
    generator = torch.Generator().manual_seed(3)
    values, rewards = torch.randn(4, E, N, generator=generator), torch.randn(3, E, N, generator=generator)
    log_probs = -torch.rand(4, E, N, generator=generator)
    buffers = [RolloutBuffer(Phase("deploy", 10), 4, E, N, fields={"choices": Field((2,), torch.long)},
                             with_costs=True) for _ in range(2)]
    choices = torch.zeros(E, N, 2, dtype=torch.long)
    for n in range(4):
        for at_decision, buffer in zip((True, False), buffers, strict=True):
            if n:
                buffer.add_outcome(rewards[n - 1], cost=-rewards[n - 1])
            scores = {"log_prob": log_probs[n], "value": values[n], "cost_value": 2 * values[n]} if at_decision else {}
            buffer.add_decision(10 * n, choices=choices, **scores)
    later = buffers[1]
    with pytest.raises(ValueError, match="set_scores before finish"):
        later.finish()
    with pytest.raises(ValueError, match=r"exactly the scores left out.*cost_value"):
        later.set_scores(log_probs, values)
    with pytest.raises(ValueError, match=r"\(decisions, E, N\) = \(4, 2, 3\)"):
        later.set_scores(log_probs[:3], values[:3], 2 * values[:3])
    later.set_scores(log_probs, values, 2 * values)
    for buffer in buffers:
        buffer.finish()
        buffer.compute_returns(0.9, 0.8)
    assert buffers[0].num_steps == later.num_steps == 3
    for name in ("log_prob", "value", "next_value", "next_cost_value", "advantage", "return", "cost_advantage"):
        assert torch.equal(buffers[0].stored(name), later.stored(name)), name
    assert torch.equal(later.stored("next_value")[-1], values[3])  # the pending decision's value bootstraps
    assert torch.equal(later.decisions("choices"), later.stored("choices"))  # finished: the pending one is out
