"""Sequence-chunk minibatches and `unroll`: chunk layout by hand, episode starts, padding, and the first PPO ratio of
a recurrent policy on fresh data."""

import pytest
import torch
from torch import nn

from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.losses import ppo_policy_loss
from edgeprof.rl.recurrent import unroll

E, N, H = 2, 2, 8


def _coded_buffer(steps: int = 5, ends: dict[int, torch.Tensor] | None = None) -> RolloutBuffer:
    """Every stored quantity of (step, env, agent) holds the code 100 step + 10 env + agent."""
    buffer = RolloutBuffer(Phase("actor", 1), steps, E, N, fields={
        "obs": Field((3,)), "action": Field((), torch.long), "hidden": Field((H,))})
    codes = 10 * torch.arange(E).unsqueeze(-1) + torch.arange(N)
    for t in range(steps):
        code = (100 * t + codes).float()
        buffer.add_decision(t, log_prob=-code, value=code, obs=code.unsqueeze(-1).expand(-1, -1, 3),
                            action=code.long(), hidden=code.unsqueeze(-1).expand(-1, -1, H))
        buffer.add_outcome(torch.zeros(E, N), terminated=(ends or {}).get(t))
    buffer.finish(last_value=torch.zeros(E, N))
    buffer.compute_returns(0.9, 0.9)
    return buffer


def test_chunks_by_hand():
    buffer = _coded_buffer(steps=5, ends={2: torch.tensor([True, False])})  # env 0's episode ends after step 2
    batches = list(buffer.sequence_minibatches(2, 1, torch.Generator().manual_seed(0), hidden=("hidden",)))
    assert len(batches) == 1
    batch = batches[0]
    assert set(batch) == {"obs", "action", "hidden", "log_prob", "value", "reward", "advantage", "return",
                          "episode_start", "valid"}
    chunks = 3 * E * N  # steps 0-1, 2-3, 4 (+ padding) for every (env, agent)
    assert batch["obs"].shape == (2, chunks, 3) and batch["hidden"].shape == (chunks, H)
    assert batch["valid"].shape == batch["episode_start"].shape == (2, chunks)
    seen = []
    for b in range(chunks):
        first = int(batch["hidden"][b, 0])  # the code of the chunk's first step
        step, env, agent = first // 100, first // 10 % 10, first % 10
        assert step in (0, 2, 4)
        for t in range(2):
            code = batch["action"][t, b].item()
            if step + t < 5:
                assert batch["valid"][t, b] and code == first + 100 * t
                assert batch["log_prob"][t, b].item() == -code and batch["obs"][t, b].tolist() == [code] * 3
                seen.append(code)
            else:  # padding
                assert not batch["valid"][t, b] and code == 0 and batch["obs"][t, b].abs().sum() == 0
            assert bool(batch["episode_start"][t, b]) == (env == 0 and step + t == 3)
        assert env < E and agent < N
    assert sorted(seen) == sorted(100 * t + 10 * e + a for t in range(5) for e in range(E) for a in range(N))


def test_chunks_are_shuffled_reproducibly_into_minibatches():
    buffer = _coded_buffer(steps=4)
    draw = list(buffer.sequence_minibatches(3, 3, torch.Generator().manual_seed(1), hidden=("hidden",)))
    again = list(buffer.sequence_minibatches(3, 3, torch.Generator().manual_seed(1), hidden="hidden"))
    assert [len(b["hidden"]) for b in draw] == [3, 3, 2]  # 2 chunks x E x N = 8 chunks
    assert all(torch.equal(a["obs"], b["obs"]) and torch.equal(a["hidden"], b["hidden"])
               for a, b in zip(draw, again, strict=True))
    valid_codes = torch.cat([b["action"][b["valid"]] for b in draw])
    assert sorted(valid_codes.tolist()) == sorted(100 * t + 10 * e + a for t in range(4) for e in range(E)
                                                  for a in range(N))
    whole = next(buffer.sequence_minibatches(4, 1))  # one chunk per (env, agent): the whole rollout
    assert whole["valid"].all() and not whole["episode_start"].any() and whole["obs"].shape == (4, E * N, 3)


def test_sequence_minibatches_refuse_bad_requests():
    buffer = _coded_buffer(steps=4)
    with pytest.raises(ValueError, match="chunk_length"):
        next(buffer.sequence_minibatches(0, 1))
    with pytest.raises(ValueError, match=r"\[1, 8\] \(the chunks stored\)"):
        next(buffer.sequence_minibatches(3, 9))
    with pytest.raises(ValueError, match=r"hidden states \['h'\] are not declared fields"):
        next(buffer.sequence_minibatches(3, 1, hidden=("h",)))
    clash = RolloutBuffer(Phase("actor", 1), 1, E, N, fields={"valid": Field(())})
    clash.add_decision(0, log_prob=torch.zeros(E, N), value=torch.zeros(E, N), valid=torch.zeros(E, N))
    clash.add_outcome(torch.zeros(E, N))
    clash.finish(last_value=torch.zeros(E, N))
    clash.compute_returns(0.9, 0.9)
    with pytest.raises(ValueError, match="clash"):
        next(clash.sequence_minibatches(1, 1))
    fresh = RolloutBuffer(Phase("actor", 1), 1, E, N, fields={})
    with pytest.raises(ValueError, match="compute returns"):
        next(fresh.sequence_minibatches(1, 1))


def test_unroll_resets_by_hand():
    inputs, start = torch.ones(4, 1, 1), torch.tensor([[False], [False], [True], [False]])
    outputs, final = unroll(lambda x, h: h + x, inputs, torch.tensor([[5.0]]), start)
    assert outputs.flatten().tolist() == [6.0, 7.0, 1.0, 2.0] and final.item() == 2.0
    outputs, (h, c) = unroll(lambda x, s: (s[0] + x, s[1] + 1), inputs, (torch.tensor([[5.0]]), torch.tensor([[9.0]])),
                             torch.tensor([[True], [False], [False], [True]]))  # the LSTM's (h, c) both reset
    assert outputs.flatten().tolist() == [1.0, 2.0, 3.0, 1.0] and (h.item(), c.item()) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"episode_start must have shape \(4, 1\)"):
        unroll(lambda x, h: h + x, inputs, torch.zeros(1, 1), torch.zeros(4, 2, dtype=torch.bool))


@pytest.mark.parametrize("cell", [nn.GRUCell(3, H), nn.LSTMCell(3, H)], ids=["gru", "lstm"])
def test_unroll_matches_stepping_the_cell(cell):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(5, 4, 3, generator=generator)
    start = torch.zeros(5, 4, dtype=torch.bool)
    start[2, 1] = True
    state = torch.randn(4, H, generator=generator)
    state = (state, torch.randn(4, H, generator=generator)) if isinstance(cell, nn.LSTMCell) else state
    outputs, _ = unroll(cell, inputs, state, start)
    expected = []
    for t in range(5):
        keep = (~start[t]).float().unsqueeze(-1)
        state = tuple(part * keep for part in state) if isinstance(state, tuple) else state * keep
        state = cell(inputs[t], state)
        expected.append(state[0] if isinstance(state, tuple) else state)
    assert torch.equal(outputs, torch.stack(expected))


def _recurrent_rollout(steps: int = 7):
    """A float64 GRU policy acting in E environments x N agents; env 0 terminates after step 2, env 1 is truncated
    after step 4. The state fed into each step is stored as the field "hidden"."""
    torch.manual_seed(0)
    cell, head = nn.GRUCell(3, H).double(), nn.Linear(H, 4).double()
    generator = torch.Generator().manual_seed(0)
    buffer = RolloutBuffer(Phase("actor", 1), steps, E, N, dtype=torch.float64, fields={
        "obs": Field((3,), torch.float64), "action": Field((), torch.long), "hidden": Field((H,), torch.float64)})
    state, start = torch.randn(E * N, H, dtype=torch.float64, generator=generator), torch.zeros(E, dtype=torch.bool)
    with torch.no_grad():
        for t in range(steps):
            obs = torch.randn(E, N, 3, dtype=torch.float64, generator=generator)
            starts = start.unsqueeze(-1).expand(E, N).reshape(1, E * N)
            fed = torch.where(starts.reshape(-1, 1), 0.0, state)  # the state the cell is fed at this step
            out, state = unroll(cell, obs.reshape(1, E * N, 3), state, starts)
            log_probs = torch.log_softmax(head(out[0]), dim=-1)
            action = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
            buffer.add_decision(t, log_prob=log_probs.gather(-1, action.unsqueeze(-1)).reshape(E, N),
                                value=torch.zeros(E, N, dtype=torch.float64), obs=obs, action=action.reshape(E, N),
                                hidden=fed.reshape(E, N, H))
            terminated, truncated = torch.tensor([t == 2, False]), torch.tensor([False, t == 4])
            buffer.add_outcome(torch.ones(E, N, dtype=torch.float64), terminated=terminated, truncated=truncated,
                               final_value=torch.zeros(E, N, dtype=torch.float64))
            start = terminated | truncated
    buffer.finish(last_value=torch.zeros(E, N, dtype=torch.float64))
    buffer.compute_returns(0.9, 0.95)
    return buffer, cell, head


def _ratio_errors(buffer, cell, head, resets: bool = True, stored_state: bool = True) -> float:
    worst = 0.0
    with torch.no_grad():
        for batch in buffer.sequence_minibatches(3, 2, torch.Generator().manual_seed(0), hidden=("hidden",)):
            start = batch["episode_start"] if resets else torch.zeros_like(batch["episode_start"])
            state = batch["hidden"] if stored_state else torch.zeros_like(batch["hidden"])
            out, _ = unroll(cell, batch["obs"], state, start)
            log_prob = torch.log_softmax(head(out), dim=-1).gather(-1, batch["action"].unsqueeze(-1)).squeeze(-1)
            valid = batch["valid"]
            result = ppo_policy_loss(log_prob[valid], batch["log_prob"][valid], batch["advantage"][valid], 0.1)
            worst = max(worst, (log_prob - batch["log_prob"])[valid].exp().sub(1).abs().max().item())
            if resets and stored_state:
                assert result.clip_fraction.item() == 0.0
    return worst


def test_the_first_ppo_ratio_through_the_chunks_is_one():
    buffer, cell, head = _recurrent_rollout()
    assert not next(buffer.sequence_minibatches(3, 1))["valid"].all()  # 7 steps in chunks of 3: padding is exercised
    # 1 up to float64 rounding: acting ran E x N rows per call, training runs the chunks' rows, and BLAS may sum a
    # different batch in a different order
    assert _ratio_errors(buffer, cell, head) < 1e-12
    assert _ratio_errors(buffer, cell, head, resets=False) > 1e-3  # the episode starts matter
    assert _ratio_errors(buffer, cell, head, stored_state=False) > 1e-3  # and so does the stored state
