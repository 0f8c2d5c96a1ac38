"""Run a recurrent cell over a sequence whose episodes may end inside it (seed 004's GRU actor and critics, MADQN's
LSTMCell).

Acting and training must feed the cell the same states, or the first PPO ratio on fresh data is not 1: while
acting, the state fed into step t is zero where step t begins an episode and the previous step's output
otherwise, and that input state is what the rollout stores (a declared field of `RolloutBuffer`). Training
re-runs the cell over the chunks of `RolloutBuffer.sequence_minibatches`, starting each chunk from the state
stored at its first step and resetting wherever `episode_start` says so; `unroll` does both, and acting is the
same call with one step (T = 1). `RecurrentNet` is seed 004's shape of network (linear layers, a cell, a head)
built on `unroll`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias

import torch
from torch import nn

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


class RecurrentNet(nn.Module):
    """Linear + ReLU layers of `widths`, a recurrent cell of `cell_size` (GRUCell or LSTMCell), a linear head: seed
    004's networks (M2APPO's actor and critics: widths (64, 64), GRU 64; MADQN's and MAA3C's: (32, 96), LSTM 64).

    `forward(inputs (T, B, F), state, episode_start (T, B))` runs the sequence through `unroll`; the state travels
    as one tensor (B, parts, H) (parts: 1 for a GRU, 2 for an LSTM's h and c), so a rollout stores it as a field."""

    def __init__(self, inputs: int, widths: tuple[int, ...], cell_size: int, outputs: int,
                 cell: Literal["gru", "lstm"] = "gru") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = inputs
        for size in widths:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"the cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell = nn.GRUCell(width, cell_size) if cell == "gru" else nn.LSTMCell(width, cell_size)
        self.head = nn.Linear(cell_size, outputs)
        self.parts, self.cell_size = (1 if cell == "gru" else 2), cell_size

    def initial_state(self, *batch: int) -> torch.Tensor:
        """Zeros (*batch, parts, H): the state fed into an episode's first step."""
        return torch.zeros(*batch, self.parts, self.cell_size)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor, episode_start: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (T, B, outputs) and the state after the last step (B, parts, H)."""
        check_shape("state", state, (inputs.shape[1], self.parts, self.cell_size))
        packed = state[:, 0] if self.parts == 1 else (state[:, 0], state[:, 1])
        hidden, last = unroll(self.cell, self.body(inputs), packed, episode_start)
        last = last.unsqueeze(1) if self.parts == 1 else torch.stack(last, dim=1)
        return self.head(hidden), last
