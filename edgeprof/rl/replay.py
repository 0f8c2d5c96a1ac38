"""Experience replay for off-policy learners (FOCI's and CERL's DQNs, seed 004's MADQN): uniform or prioritised.

A `ReplayBuffer` stores rows of named fields (declared as `buffers.Field`: shape per row and dtype) in a ring of
fixed `capacity`: when full, the oldest rows are overwritten. A row is one transition as the learner samples it:

- parameter-shared independent learners (FOCI's devices, MADQN's agents) add every agent's transition as its
  own row: `add(obs=(E, N, obs_dim), ...)` flattens the leading axes row-major, so one step of E environments
  and N agents is E * N rows, and a minibatch mixes agents and steps;
- a learner that scores a whole step at once (CERL's graph of all tasks) declares its fields with the agent
  axis inside, `Field((N, obs_dim))`, and adds (E, N, obs_dim) per step: E rows.

Any leading shape works (none for a single row); every field of one `add` must share it. The learner chooses
what a row holds: DQN needs obs, action, reward, next_obs, terminated (and next_mask for masked targets); a
recurrent Q-network can store its hidden state and the next one as fields.

Sampling is uniform with replacement, from the buffer's own `torch.Generator` seeded at construction, so the
same seed and the same adds give the same batches; `state_dict` holds the rows, the ring position and the
generator state (tensors and plain values: `rl.checkpoint` saves it with `weights_only` loading), and a loaded
buffer continues exactly as the saved one would have.

`PrioritizedReplayBuffer` is proportional prioritised replay (Schaul et al. 2016, sec. 3.3): row i is drawn
with probability P(i) = p_i^alpha / sum_k p_k^alpha, where p_i = |TD error| + eps after its last update and new
rows get the largest p seen so far (so each is replayed at least once soon); the batch is stratified (one draw
from each of B equal segments of the total priority). Importance weights w_i = (n P(i))^-beta / max_k w_k
correct the bias; the maximum is over every stored row (the paper's normalisation, so weights only scale
updates down), which equals (p_min^alpha / p_i^alpha)^beta. Anneal beta towards 1 with `dqn.LinearSchedule`.
Priorities are one float64 array: a draw is a cumulative sum and a binary search, O(n); an update is a
write. `benchmarks/replay.py` measured it against a sum tree (O(B log n) per draw and update), batches of 256, one
thread: draw plus update took 0.15 / 0.20 / 0.33 ms at 1e3 / 1e4 / 1e5 rows (0.8x the tree's time, and 1-3% of
a FOCI-sized double-DQN update), but 6.6 ms at 1e6 (9x the tree's, half a DQN update): past a few 1e5 rows a
sum tree would pay off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from edgeprof.rl.buffers import Field, checked_tensor
from edgeprof.rl.seeding import generator_state, set_generator_state


class ReplaySample(NamedTuple):
    """A sampled minibatch: `data` (B, ...) per field, the rows' `index` in the buffer (B,), and importance
    `weight` (B,) float32 (all 1 for uniform sampling)."""

    data: dict[str, torch.Tensor]
    index: torch.Tensor
    weight: torch.Tensor


class ReplayBuffer:
    """A ring of `capacity` rows of named fields, sampled uniformly with replacement."""

    def __init__(self, capacity: int, fields: Mapping[str, Field], seed: int,
                 device: str | torch.device = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be at least 1 row, got {capacity}")
        if not fields:
            raise ValueError("a replay buffer needs at least one field")
        self.capacity = capacity
        self.fields = dict(fields)
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self._data = {name: torch.zeros((capacity, *field.shape), dtype=field.dtype, device=self.device)
                      for name, field in self.fields.items()}
        self.size = 0  # rows stored
        self.position = 0  # the ring slot the next row goes to

    def __len__(self) -> int:
        return self.size

    def add(self, **rows: Any) -> torch.Tensor:
        """Store rows: every declared field, shaped (*leading, *field.shape) with the same leading shape.

        Returns the ring slots written, in row-major order of the leading axes."""
        missing, unknown = set(self.fields) - set(rows), set(rows) - set(self.fields)
        if missing or unknown:
            raise ValueError(f"replay buffer: fields missing {sorted(missing)}, unknown {sorted(unknown)}; "
                             f"declared: {sorted(self.fields)}")
        first, first_field = next(iter(self.fields.items()))
        first_shape = torch.as_tensor(rows[first]).shape
        lead = tuple(first_shape[:max(len(first_shape) - len(first_field.shape), 0)])
        count = math.prod(lead)
        if count > self.capacity:
            raise ValueError(f"replay buffer: adding {count} rows at once to a buffer of capacity {self.capacity}; "
                             "raise the capacity")
        checked = {}
        for name, field in self.fields.items():
            what = "(" + ", ".join(["*leading", *(str(size) for size in field.shape)]) + ")"
            checked[name] = checked_tensor("replay buffer", name, rows[name], (*lead, *field.shape), what,
                                           field.dtype, self.device).reshape(count, *field.shape)
        slots = (self.position + torch.arange(count)) % self.capacity
        for name, tensor in checked.items():
            self._data[name][slots.to(self.device)] = tensor
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        self._written(slots)
        return slots

    def sample(self, batch_size: int) -> ReplaySample:
        """`batch_size` rows drawn uniformly with replacement."""
        self._check_sample(batch_size)
        index = torch.randint(self.size, (batch_size,), generator=self.generator)
        return self._gather(index, torch.ones(batch_size))

    def state_dict(self) -> dict[str, Any]:
        """The stored rows, the ring position and the generator: loading it continues the same batches."""
        return {"capacity": self.capacity, "fields": _field_spec(self.fields), "size": self.size,
                "position": self.position, "generator": generator_state(self.generator),
                "data": {name: tensor[:self.size].clone() for name, tensor in self._data.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["capacity"] != self.capacity or state["fields"] != _field_spec(self.fields):
            raise ValueError(f"a replay buffer of capacity {state['capacity']} with fields {state['fields']} cannot "
                             f"be loaded into one of capacity {self.capacity} with fields {_field_spec(self.fields)}")
        self.size, self.position = int(state["size"]), int(state["position"])
        for name, tensor in self._data.items():
            tensor.zero_()
            tensor[:self.size] = state["data"][name].to(self.device)
        set_generator_state(self.generator, state["generator"])

    def _check_sample(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if self.size == 0:
            raise ValueError("replay buffer: nothing to sample yet; add transitions first")

    def _gather(self, index: torch.Tensor, weight: torch.Tensor) -> ReplaySample:
        on_device = index.to(self.device)
        return ReplaySample({name: tensor[on_device] for name, tensor in self._data.items()}, index,
                            weight.to(self.device, torch.float32))

    def _written(self, slots: torch.Tensor) -> None:
        """Hook for subclasses: `slots` were just (over)written."""


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritised replay: draws in proportion to p^alpha, importance weights with exponent beta."""

    def __init__(self, capacity: int, fields: Mapping[str, Field], seed: int, alpha: float = 0.6,
                 eps: float = 1e-6, device: str | torch.device = "cpu") -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1] (0 is uniform), got {alpha}")
        if not eps > 0.0:
            raise ValueError(f"eps must be positive, so that every row keeps a chance to be drawn; got {eps}")
        super().__init__(capacity, fields, seed, device)
        self.alpha, self.eps = alpha, eps
        self.max_priority = 1.0  # the largest p = |TD error| + eps so far: what new rows get
        self._scaled = torch.zeros(capacity, dtype=torch.float64)  # p ** alpha per row

    def sample(self, batch_size: int, beta: float = 0.4) -> ReplaySample:
        """`batch_size` rows, one from each of `batch_size` equal segments of the total priority, and their
        importance weights (n P(i))^-beta normalised by the largest over the buffer."""
        self._check_sample(batch_size)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must lie in [0, 1] (1 corrects the sampling bias fully), got {beta}")
        scaled = self._scaled[:self.size]
        cumulative = torch.cumsum(scaled, dim=0)
        segment = float(cumulative[-1]) / batch_size
        targets = (torch.arange(batch_size, dtype=torch.float64)
                   + torch.rand(batch_size, dtype=torch.float64, generator=self.generator)) * segment
        index = torch.searchsorted(cumulative, targets, right=True).clamp(max=self.size - 1)
        weight = (scaled.min() / scaled[index]) ** beta
        return self._gather(index, weight)

    def update_priorities(self, index: torch.Tensor, td_error: torch.Tensor) -> None:
        """Set the rows' priorities from their new TD errors (B,); for a row drawn twice the last error counts.
        Update before adding more rows: a row overwritten since the draw would take its predecessor's error."""
        index = torch.as_tensor(index).to("cpu", torch.long)
        td_error = torch.as_tensor(td_error).detach().to("cpu", torch.float64)
        if index.shape != td_error.shape or index.dim() != 1:
            raise ValueError(f"index and td_error must both have shape (B,), got {tuple(index.shape)} and "
                             f"{tuple(td_error.shape)}")
        if not bool(torch.isfinite(td_error).all()):
            raise ValueError("td_error contains NaN or infinite values")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= self.size):
            raise ValueError(f"index must lie in [0, {self.size}) (the rows stored)")
        priority = td_error.abs() + self.eps
        if len(index):
            self.max_priority = max(self.max_priority, float(priority.max()))
        slots, last = _last_occurrence(index)
        self._scaled[slots] = priority[last] ** self.alpha

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha, "eps": self.eps, "max_priority": self.max_priority,
                "scaled_priorities": self._scaled[:self.size].clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if (state["alpha"], state["eps"]) != (self.alpha, self.eps):
            raise ValueError(f"a prioritised buffer with alpha {state['alpha']}, eps {state['eps']} cannot be loaded "
                             f"into one with alpha {self.alpha}, eps {self.eps}")
        super().load_state_dict(state)
        self.max_priority = float(state["max_priority"])
        self._scaled.zero_()
        self._scaled[:self.size] = state["scaled_priorities"].to(torch.float64)

    def _written(self, slots: torch.Tensor) -> None:
        self._scaled[slots] = self.max_priority ** self.alpha


def _last_occurrence(slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct slots and, for each, the position of its last occurrence in `slots`."""
    distinct, inverse = torch.unique(slots, return_inverse=True)
    positions = torch.arange(len(slots))
    last = torch.full((len(distinct),), -1, dtype=torch.long).scatter_reduce(0, inverse, positions, "amax")
    return distinct, last


def _field_spec(fields: Mapping[str, Field]) -> dict[str, tuple[tuple[int, ...], str]]:
    return {name: (tuple(field.shape), str(field.dtype)) for name, field in fields.items()}
