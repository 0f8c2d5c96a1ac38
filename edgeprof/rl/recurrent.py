"""Run a recurrent cell over a sequence whose episodes may end inside it (seed 004's GRU actor and critics, MADQN's
LSTMCell).

Acting and training must feed the cell the same states, or the first PPO ratio on fresh data is not 1: while
acting, the state fed into step t is zero where step t begins an episode and the previous step's output
otherwise, and that input state is what the rollout stores (a declared field of `RolloutBuffer`). Training
re-runs the cell over the chunks of `RolloutBuffer.sequence_minibatches`, starting each chunk from the state
stored at its first step and resetting wherever `episode_start` says so; `unroll` does both, and acting is the
same call with one step (T = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import torch

from edgeprof.rl.shapes import check_shape

State: TypeAlias = torch.Tensor | tuple[torch.Tensor, ...]  # GRUCell: h (B, H); LSTMCell: (h, c)


def unroll(cell: Callable[[torch.Tensor, State], State], inputs: torch.Tensor, state: State,
           episode_start: torch.Tensor) -> tuple[torch.Tensor, State]:
    """Outputs (T, B, H) of `cell` over `inputs` (T, B, F) from `state` (the state fed into step 0), zeroing the
    state fed into every step where `episode_start` (T, B) bool is True; and the state after the last step.

    `cell` is a `torch.nn.GRUCell`, an `LSTMCell` (its output is h) or anything with their call signature."""
    if inputs.dim() < 2:
        raise ValueError(f"inputs must be (T, B, ...), got shape {tuple(inputs.shape)}")
    check_shape("episode_start", episode_start, tuple(inputs.shape[:2]))
    if episode_start.dtype != torch.bool:
        raise ValueError(f"episode_start must be a bool tensor, got {episode_start.dtype}")
    outputs = []
    for x, start in zip(inputs, episode_start, strict=True):
        state = _reset(state, start)
        state = cell(x, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs), state


def _reset(state: State, start: torch.Tensor) -> State:
    if isinstance(state, tuple):
        return tuple(_reset(part, start) for part in state)
    keep = ~start.reshape(-1, *(1,) * (state.dim() - 1))
    return torch.where(keep, state, torch.zeros((), dtype=state.dtype, device=state.device))
