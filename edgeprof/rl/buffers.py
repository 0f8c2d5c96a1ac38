"""Rollout storage for (E environments x N agents) that decide on their own timescale.

Seed 001's layers decide at different rates (`sim/env.py`): deployment agents every delta-T slots, user and
allocation agents every slot. A `RolloutBuffer` belongs to one `Phase`, a layer's name and its interval in
slots, and takes its data in the order it happens:

1. `add_decision(slot, ...)` when the agents act: observations, actions and masks (the `fields` declared at
   construction), log-probabilities, values (and cost values, for a constrained layer);
2. `add_outcome(reward, ...)` when the consequence is known: for a per-slot layer after `EdgeSystem.step`; for
   deployment at the next decision, when `EdgeSystem.deploy` returns the reward of the interval that ended
   (so there the outcome of decision n is added just before decision n+1).

Anything else is refused with a message that says what was expected: a decision before the previous one's
outcome, an outcome without a decision, a slot that is not `interval` after the previous one (after an episode
end in every environment, the slot count may restart), and, unless the buffer is made with `validate=False`
(a trainer whose inputs are right by construction: the checks cost more than the copies), a wrong shape, dtype
or a NaN.

Log-probabilities and values may be left out of `add_decision` (None) and given for the whole rollout at once
with `set_scores`, before `finish`: a policy that does not change while it collects can score every decision in
one batched pass instead of one small pass per slot.

`finish` closes the rollout. A decision still waiting for its outcome (the last deployment of a rollout: its
reward only comes at the next deploy) is left out, and its value bootstraps the decision before it, which is
right because it is the value of the state that decision led to. Otherwise `finish` needs the values of the
state after the last step. Then `compute_returns` runs GAE (`rl.gae`) and `minibatches` yields shuffled,
flattened samples (every environment, agent and step is one sample, for parameter-shared actors and critics).

Recurrent actors and critics train on sequences instead: store the state fed into each step as a field, and
`sequence_minibatches` cuts each (environment, agent)'s steps into chunks with that state at each chunk's start
and the episode starts inside it (`rl.recurrent.unroll` replays them).

Values are stored in return units: denormalise the critic's output before adding it. Log-probabilities are
stored without rounding (a float64 policy needs a float64 buffer), so the first PPO ratio is exactly 1.

Example, the user layer of E environments and K users:

    buffer = RolloutBuffer(Phase("user", 1), capacity=200, num_envs=E, num_agents=K, with_costs=True, fields={
        "obs": Field((obs_dim,)), "state": Field((state_dim,)), "action": Field((2,), torch.long),
        "server_mask": Field((J,), torch.bool), "point_mask": Field((L + 1,), torch.bool)})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from edgeprof.rl.gae import gae

_SCALARS = ("log_prob", "value", "reward", "next_value", "advantage", "return")
_COST_SCALARS = ("cost", "cost_value", "next_cost_value", "cost_advantage", "cost_return")
_SAMPLED = ("log_prob", "value", "reward", "advantage", "return", "cost", "cost_value", "cost_advantage",
            "cost_return")


@dataclass(frozen=True)
class Phase:
    """A layer and its timescale: it decides every `interval` slots (1 per slot, delta-T for deployment)."""

    name: str
    interval: int

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"phase {self.name!r}: the interval must be at least 1 slot, got {self.interval}")


@dataclass(frozen=True)
class Field:
    """One per-agent quantity stored at each decision: its shape per agent and its dtype."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32


class RolloutBuffer:
    """Decisions of one layer over one rollout, (capacity, E, N, ...) per quantity."""

    def __init__(self, phase: Phase, capacity: int, num_envs: int, num_agents: int, fields: Mapping[str, Field],
                 with_costs: bool = False, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, validate: bool = True) -> None:
        if capacity < 1 or num_envs < 1 or num_agents < 1:
            raise ValueError(f"capacity, num_envs and num_agents must be positive, got {capacity}, {num_envs}, "
                             f"{num_agents}")
        reserved = set(fields) & {*_SCALARS, *_COST_SCALARS, "terminated", "truncated"}
        if reserved:
            raise ValueError(f"field names {sorted(reserved)} are reserved for the buffer's own quantities")
        self.phase, self.capacity, self.with_costs, self.validate = phase, capacity, with_costs, validate
        self.num_envs, self.num_agents = num_envs, num_agents
        self.fields = dict(fields)
        self.device, self.dtype = torch.device(device), dtype
        agents = (capacity, num_envs, num_agents)
        self._data: dict[str, torch.Tensor] = {
            name: torch.zeros((*agents, *field.shape), dtype=field.dtype, device=self.device)
            for name, field in self.fields.items()}
        for name in (*_SCALARS, *(_COST_SCALARS if with_costs else ())):
            self._data[name] = torch.zeros(agents, dtype=dtype, device=self.device)
        for name in ("terminated", "truncated"):
            self._data[name] = torch.zeros((capacity, num_envs), dtype=torch.bool, device=self.device)
        self.reset()

    def reset(self) -> None:
        """Empty the buffer for the next rollout (the storage is reused)."""
        self.num_decisions = 0  # decisions added, including one waiting for its outcome
        self.pending = False
        self.finished = False
        self.returns_ready = False
        self.last_slot: int | None = None
        self._all_ended = False
        self._unscored: set[str] = set()  # log_prob / value names left to `set_scores`

    @property
    def num_steps(self) -> int:
        """Decisions with an outcome: what GAE and the minibatches use."""
        return self.num_decisions - self.pending

    def add_decision(self, slot: int, log_prob: Any = None, value: Any = None, cost_value: Any = None,
                     **fields: Any) -> None:
        """The agents' decision at `slot`: every declared field, and log-probabilities and values (E, N), or None
        for those that `set_scores` gives after the rollout."""
        self._expect_open()
        if self.pending:
            raise ValueError(f"{self._name}: the decision at slot {self.last_slot} has no outcome yet; add its "
                             "outcome before the next decision")
        self._check_slot(slot)
        if self.num_decisions == self.capacity:
            raise ValueError(f"{self._name}: full ({self.capacity} decisions); finish and reset it for a new rollout")
        missing, unknown = set(self.fields) - set(fields), set(fields) - set(self.fields)
        if missing or unknown:
            raise ValueError(f"{self._name}: fields missing {sorted(missing)}, unknown {sorted(unknown)}; declared: "
                             f"{sorted(self.fields)}")
        index = self.num_decisions
        scores = {"log_prob": log_prob, "value": value, **({"cost_value": cost_value} if self.with_costs else {})}
        if self.with_costs and (value is None) != (cost_value is None):
            raise ValueError(f"{self._name}: a constrained layer needs cost_value (E, N) with value, or neither of "
                             "them (then both come with set_scores)")
        self._check_cost_args("cost_value", cost_value)
        self._unscored |= {name for name, item in scores.items() if item is None}
        checked = {name: self._tensor(name, item, (), self.dtype) for name, item in scores.items() if item is not None}
        if log_prob is not None:
            self._check_log_prob_dtype(torch.as_tensor(log_prob).dtype)
        checked.update({name: self._tensor(name, item, self.fields[name].shape, self.fields[name].dtype)
                        for name, item in fields.items()})
        for name, tensor in checked.items():
            self._data[name][index] = tensor
        if index > 0:  # this decision's values are the next values of the previous one, unless its episode ended
            carried = ~(self._data["terminated"][index - 1] | self._data["truncated"][index - 1]).unsqueeze(-1)
            for value_name in self._value_names:
                if value_name in checked:
                    previous = self._data[f"next_{value_name}"][index - 1]
                    previous.copy_(torch.where(carried, checked[value_name], previous))
        self.num_decisions += 1
        self.pending = True
        self.last_slot = slot

    def set_scores(self, log_prob: Any = None, value: Any = None, cost_value: Any = None) -> None:
        """Log-probabilities and values (D, E, N) of every decision added so far (D of them, including one still
        waiting for its outcome), for those left out of `add_decision`; call it before `finish`."""
        self._expect_open()
        given = {name: item for name, item in (("log_prob", log_prob), ("value", value), ("cost_value", cost_value))
                 if item is not None}
        if set(given) != self._unscored:
            raise ValueError(f"{self._name}: set_scores needs exactly the scores left out of add_decision "
                             f"({sorted(self._unscored)}), got {sorted(given)}")
        decisions = self.num_decisions
        for name, item in given.items():
            tensor = torch.as_tensor(item, device=self.device).detach()
            expected = (decisions, self.num_envs, self.num_agents)
            if tuple(tensor.shape) != expected:
                raise ValueError(f"{self._name}: {name} must have shape (decisions, E, N) = {expected}, got "
                                 f"{tuple(tensor.shape)}")
            if name == "log_prob":
                self._check_log_prob_dtype(tensor.dtype)
            self._data[name][:decisions] = tensor.to(self.dtype)
            if name in self._value_names and decisions > 1:  # each value is the next value of the decision before
                ended = (self._data["terminated"][:decisions - 1] | self._data["truncated"][:decisions - 1])
                following = self._data[f"next_{name}"][:decisions - 1]
                following.copy_(torch.where(ended.unsqueeze(-1), following, self._data[name][1:decisions]))
        self._unscored = set()

    def add_outcome(self, reward: Any, cost: Any = None, terminated: Any = None, truncated: Any = None,
                    final_value: Any = None, final_cost_value: Any = None) -> None:
        """The outcome of the last decision: rewards (and costs) (E, N); episode ends (E,) bool.

        Where an episode was truncated, `final_value` (E, N) is the value of the state it reached (the
        bootstrap); a terminated episode bootstraps from 0.
        """
        self._expect_open()
        if not self.pending:
            raise ValueError(f"{self._name}: an outcome needs a decision first (no decision is waiting for one)")
        self._check_cost_args("cost", cost)
        self._check_cost_args("final_cost_value", final_cost_value)
        ends = {name: torch.zeros(self.num_envs, dtype=torch.bool, device=self.device) if flags is None
                else self._tensor(name, flags, (), torch.bool, per_agent=False)
                for name, flags in (("terminated", terminated), ("truncated", truncated))}
        if bool((ends["terminated"] & ends["truncated"]).any()):
            raise ValueError(f"{self._name}: an episode cannot be both terminated and truncated")
        outcome = {"reward": reward, **({"cost": cost} if self.with_costs else {})}
        checked = {name: self._tensor(name, item, (), self.dtype) for name, item in outcome.items()}
        next_values = {}  # bootstraps: 0 unless truncated (then the final value); later decisions fill the rest
        for value_name, final in zip(self._value_names, (final_value, final_cost_value), strict=False):
            next_values[value_name] = torch.zeros(self.num_envs, self.num_agents, dtype=self.dtype,
                                                  device=self.device)
            if bool(ends["truncated"].any()):
                if final is None:
                    raise ValueError(f"{self._name}: truncated episodes need final_{value_name} (E, N), the value "
                                     "of the state they reached, to bootstrap from")
                final = self._tensor(f"final_{value_name}", final, (), self.dtype)
                next_values[value_name] = torch.where(ends["truncated"].unsqueeze(-1), final, 0.0)
        index = self.num_decisions - 1
        for name, tensor in {**checked, **ends}.items():
            self._data[name][index] = tensor
        for value_name, tensor in next_values.items():
            self._data[f"next_{value_name}"][index] = tensor
        self._all_ended = bool((ends["terminated"] | ends["truncated"]).all())
        self.pending = False

    def finish(self, last_value: Any = None, last_cost_value: Any = None) -> None:
        """Close the rollout. `last_value` (E, N) bootstraps the last step; a pending decision is left out."""
        self._expect_open()
        if self.num_steps == 0:
            raise ValueError(f"{self._name}: no decision with an outcome in this rollout")
        if self._unscored:
            raise ValueError(f"{self._name}: {', '.join(sorted(self._unscored))} left out of add_decision; give them "
                             "with set_scores before finish")
        if self.pending:
            if last_value is not None or last_cost_value is not None:
                raise ValueError(f"{self._name}: the last decision has no outcome, so it is left out and its values "
                                 "bootstrap the step before; do not pass last values as well")
            self.pending = False
            self.num_decisions -= 1
        else:
            self._check_cost_args("last_cost_value", last_cost_value)
            index = self.num_decisions - 1
            ended = (self._data["terminated"][index] | self._data["truncated"][index]).unsqueeze(-1)
            bootstraps = {}
            for value_name, last in zip(self._value_names, (last_value, last_cost_value), strict=False):
                if last is None and not bool(ended.all()):
                    raise ValueError(f"{self._name}: finish needs last_{value_name} (E, N), the value of the state "
                                     "after the last step, to bootstrap from")
                if last is not None:
                    bootstraps[value_name] = self._tensor(f"last_{value_name}", last, (), self.dtype)
            for value_name, last in bootstraps.items():
                target = self._data[f"next_{value_name}"][index]
                target.copy_(torch.where(ended, target, last))
        self.finished = True

    def compute_returns(self, gamma: float, lam: float, cost_gamma: float | None = None,
                        cost_lam: float | None = None) -> None:
        """GAE advantages and returns for rewards (and costs; their discounts default to the rewards').

        For a layer that decides every delta-T slots, `gamma` is the discount per decision
        (`rl.gae.decision_gamma`).
        """
        if not self.finished:
            raise ValueError(f"{self._name}: finish the rollout before computing returns")
        steps = self.num_steps
        ends = {name: self._data[name][:steps].unsqueeze(-1).expand(-1, -1, self.num_agents)
                for name in ("terminated", "truncated")}
        signals = [("reward", "value", "", gamma, lam)]
        if self.with_costs:
            signals.append(("cost", "cost_value", "cost_", cost_gamma if cost_gamma is not None else gamma,
                            cost_lam if cost_lam is not None else lam))
        for signal, value_name, prefix, signal_gamma, signal_lam in signals:
            advantages, returns = gae(self._data[signal][:steps], self._data[value_name][:steps],
                                      self._data[f"next_{value_name}"][:steps], ends["terminated"],
                                      ends["truncated"], signal_gamma, signal_lam)
            self._data[f"{prefix}advantage"][:steps] = advantages
            self._data[f"{prefix}return"][:steps] = returns
        self.returns_ready = True

    def sequence_minibatches(self, chunk_length: int, num_minibatches: int, generator: torch.Generator | None = None,
                             hidden: Sequence[str] = ()) -> Iterator[dict[str, torch.Tensor]]:
        """Shuffled minibatches of sequence chunks, for recurrent actors and critics: each (environment, agent)'s
        steps cut into chunks of `chunk_length` consecutive steps (starting at steps 0, T, 2T...; the last chunk
        padded), time first. Each minibatch holds:

        - (T, B, ...) per quantity, the same ones as `minibatches` (B chunks, shuffled with `generator`);
        - each field named in `hidden` (the recurrent state fed into each step) at the chunks' first step, (B, ...);
        - "episode_start" (T, B) bool: the step begins an episode (its environment's previous step in this
          rollout ended), so the recurrent state is reset before it (`recurrent.unroll`);
        - "valid" (T, B) bool: False on the padding after the last step; average losses over valid entries.
        """
        if not self.returns_ready:
            raise ValueError(f"{self._name}: compute returns before drawing minibatches")
        if chunk_length < 1:
            raise ValueError(f"chunk_length must be at least 1 step, got {chunk_length}")
        hidden = (hidden,) if isinstance(hidden, str) else tuple(hidden)
        unknown = set(hidden) - set(self.fields)
        if unknown:
            raise ValueError(f"hidden states {sorted(unknown)} are not declared fields ({sorted(self.fields)})")
        clashes = {"episode_start", "valid"} & set(self.fields)
        if clashes:
            raise ValueError(f"fields {sorted(clashes)} clash with the sequence minibatches' own keys; rename them")
        steps, per_step = self.num_steps, self.num_envs * self.num_agents
        chunks = -(-steps // chunk_length)
        units = chunks * per_step
        if not 1 <= num_minibatches <= units:
            raise ValueError(f"num_minibatches must lie in [1, {units}] (the chunks stored), got {num_minibatches}")
        padded = chunks * chunk_length

        def chunked(tensor: torch.Tensor) -> torch.Tensor:  # (steps, E, N, ...) -> (T, chunks * E * N, ...)
            tail = tensor.shape[3:]
            full = tensor.new_zeros((padded, *tensor.shape[1:]))
            full[:steps] = tensor
            return full.reshape(chunks, chunk_length, per_step, *tail).transpose(0, 1).reshape(
                chunk_length, units, *tail)

        ended = (self.stored("terminated") | self.stored("truncated")).unsqueeze(-1)
        starts = torch.zeros_like(ended)
        starts[1:] = ended[:-1]
        valid = torch.ones_like(ended)
        sequences = {"episode_start": chunked(starts.expand(-1, -1, self.num_agents)),
                     "valid": chunked(valid.expand(-1, -1, self.num_agents))}
        names = [name for name in (*self.fields, *(name for name in _SAMPLED if name in self._data))
                 if name not in hidden]
        sequences.update({name: chunked(self.stored(name)) for name in names})
        firsts = {name: self.stored(name)[::chunk_length].reshape(units, *self.fields[name].shape)
                  for name in hidden}
        order = torch.randperm(units, generator=generator).to(self.device)
        for indices in order.tensor_split(num_minibatches):
            batch = {name: tensor[:, indices] for name, tensor in sequences.items()}
            batch.update({name: tensor[indices] for name, tensor in firsts.items()})
            yield batch

    def stored(self, name: str) -> torch.Tensor:
        """The complete steps of one quantity, (steps, E, N, ...) ((steps, E) for the episode-end flags)."""
        if name not in self._data:
            raise KeyError(f"{self._name} stores {sorted(self._data)}, not {name!r}")
        if name in ("advantage", "return", "cost_advantage", "cost_return") and not self.returns_ready:
            raise ValueError(f"{self._name}: {name} is known after compute_returns")
        return self._data[name][:self.num_steps]

    def decisions(self, name: str) -> torch.Tensor:
        """One quantity of every decision added, (D, E, N, ...), including one still waiting for its outcome."""
        if name not in self._data:
            raise KeyError(f"{self._name} stores {sorted(self._data)}, not {name!r}")
        return self._data[name][:self.num_decisions]

    def minibatches(self, num_minibatches: int, generator: torch.Generator | None = None,
                    whole_rows: bool = False, order: torch.Tensor | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Shuffled minibatches of flattened samples, (B, ...) per quantity: the fields, log_prob, value, reward,
        advantage, return (and cost, cost_value, cost_advantage, cost_return). Shuffled with `generator`, or in
        `order`, a permutation of the samples (rows) drawn beforehand.

        `whole_rows` shuffles (step, environment) rows instead, each minibatch holding all agents of its rows:
        for losses that evaluate a row's agents together (the allocation policy scores a whole slot at once).
        """
        if not self.returns_ready:
            raise ValueError(f"{self._name}: compute returns before drawing minibatches")
        agents = self.num_agents
        samples = self.num_steps * self.num_envs * agents
        units = samples // agents if whole_rows else samples
        if not 1 <= num_minibatches <= units:
            kind = "rows" if whole_rows else "samples"
            raise ValueError(f"num_minibatches must lie in [1, {units}] (the {kind} stored), got {num_minibatches}")
        names = [*self.fields, *(name for name in _SAMPLED if name in self._data)]
        flat = {name: self.stored(name).reshape(samples, *self._data[name].shape[3:]) for name in names}
        if order is None:
            order = torch.randperm(units, generator=generator)
        elif order.shape != (units,):
            raise ValueError(f"order must be a permutation of the {units} units stored, got shape {tuple(order.shape)}")
        order = order.to(self.device)
        for indices in order.tensor_split(num_minibatches):
            if whole_rows:
                indices = (indices.unsqueeze(-1) * agents + torch.arange(agents, device=self.device)).reshape(-1)
            yield {name: tensor[indices] for name, tensor in flat.items()}

    @property
    def _value_names(self) -> tuple[str, ...]:
        return ("value", "cost_value") if self.with_costs else ("value",)

    @property
    def _name(self) -> str:
        return f"{self.phase.name} buffer"

    def _expect_open(self) -> None:
        if self.finished:
            raise ValueError(f"{self._name}: the rollout is finished; reset the buffer before adding to it")

    def _check_slot(self, slot: int) -> None:
        interval = self.phase.interval
        if self.last_slot is None or self._all_ended:
            if slot % interval:
                raise ValueError(f"{self._name}: decisions come every {interval} slots, at multiples of "
                                 f"{interval}; got slot {slot}")
        elif slot != self.last_slot + interval:
            raise ValueError(f"{self._name}: decisions come every {interval} slot(s); after slot {self.last_slot} "
                             f"the next is {self.last_slot + interval}, got {slot}")

    def _check_log_prob_dtype(self, given: torch.dtype) -> None:
        if torch.finfo(given).bits > torch.finfo(self.dtype).bits:
            raise ValueError(f"{self._name}: log_prob is {given} but the buffer stores {self.dtype}; rounding would "
                             f"make the first PPO ratio differ from 1: make the buffer with dtype={given}")

    def _check_cost_args(self, name: str, item: Any) -> None:
        if self.with_costs and item is None and name == "cost":
            raise ValueError(f"{self._name}: a constrained layer needs {name} (E, N)")
        if not self.with_costs and item is not None:
            raise ValueError(f"{self._name}: {name} given, but the buffer was made with_costs=False")

    def _tensor(self, name: str, item: Any, shape: tuple[int, ...], dtype: torch.dtype,
                per_agent: bool = True) -> torch.Tensor:
        """`item` as a tensor of `dtype`, after checking its shape and that its kind (bool, int, float) fits."""
        if not self.validate:
            return torch.as_tensor(item, device=self.device).detach().to(dtype)
        expected = (self.num_envs, self.num_agents, *shape) if per_agent else (self.num_envs, *shape)
        what = "(E, N" + "".join(f", {size}" for size in shape) + ")" if per_agent else "(E,)"
        return checked_tensor(self._name, name, item, expected, what, dtype, self.device)


def checked_tensor(owner: str, name: str, item: Any, expected: tuple[int, ...], what: str, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """`item` as a detached tensor of `dtype` on `device`, after checking that its shape is `expected` (named
    `what` in the message, e.g. "(E, N, 4)"), that its kind (bool, integer, float) fits and that it is finite."""
    tensor = torch.as_tensor(item, device=device).detach()
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{owner}: {name} must have shape {what} = {tuple(expected)}, got {tuple(tensor.shape)}")
    if _kind(tensor.dtype) != _kind(dtype):
        raise ValueError(f"{owner}: {name} must be {_kind(dtype)} ({dtype}), got {tensor.dtype}")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{owner}: {name} contains NaN or infinite values")
    return tensor.to(dtype)


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point else "integer"
