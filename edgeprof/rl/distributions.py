"""Categorical distributions under action masks, and auto-regressive sequences of masked choices.

Masked actions get a logit of -inf, so their probability is exactly 0: they are never sampled (sampling is
Gumbel-max, and finite noise never lifts -inf), and asking for their log-probability is an error rather than a
large negative number that PPO would happily push further down. A row with every action masked is an error:
the caller must decide what such an agent does.

Auto-regressive sequences (seed 001's deployment policy picks services one at a time, eq. 28): sampling and
replaying go through the one function `autoregressive_sequence`, which only differs in where each choice comes
from (drawn, or read from the stored sequence). The policy's step logits, its recurrent update and the masks in
force at each step are therefore the same in both, so the sequence log-probability (eq. 30, the sum of the step
log-probabilities) of freshly sampled data re-evaluates to the same number and the first PPO ratio is 1. The
public code trained on a different distribution than it sampled from (hcmappo.md section 7.1, D1): a GRU step
offset, masks and temperature applied only when sampling. Here a temperature or bias belongs in the policy's
`step`, so both paths see it; a stored sequence that the masks would not have allowed raises.

Re-scoring step by step costs a Python loop of small operations per pick. A policy whose step inputs are all
known from the stored choices (teacher forcing: the GRU reads the previous choice) can instead compute every
step's logits at once and call `score_sequences` with the masks of `storage_masks`; that is the same
computation batched over the steps, and tests check it against `autoregressive_sequence`'s replay. Such a
policy can also act by drawing its choices alone and scoring them that way, so the stored log-probabilities
are the training path's own (`hc_policies.DeploymentPolicy.draw`, checked against `autoregressive_sequence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from edgeprof.rl.shapes import check_shape


class MaskedCategorical:
    """A categorical over the last axis of `logits` (..., C); `mask` (same shape, bool) is True where allowed.

    `validate=False` skips the checks of the inputs and of `log_prob`'s actions: only for a caller that built
    the mask itself and scores its own samples (they cost more than the arithmetic on small batches)."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor, validate: bool = True) -> None:
        self.validate = validate
        if validate:
            self._check(logits, mask)
        self.mask = mask
        self.logits = logits.masked_fill(~mask, float("-inf"))
        self.log_probs = torch.log_softmax(self.logits, dim=-1)

    @staticmethod
    def _check(logits: torch.Tensor, mask: torch.Tensor) -> None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
        check_shape("mask", mask, tuple(logits.shape))
        if logits.dim() == 0:
            raise ValueError("logits need at least one axis (the choices)")
        empty_rows = int((~mask.any(dim=-1)).sum())
        if empty_rows:
            raise ValueError(f"{empty_rows} row(s) have every action masked; a categorical needs at least one "
                             "allowed action")
        if not torch.isfinite(logits.detach()[mask]).all():
            raise ValueError("logits of allowed actions must be finite")

    @property
    def probs(self) -> torch.Tensor:
        """Probabilities; exactly 0 for masked actions."""
        return self.log_probs.exp()

    def sample(self, generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One action per row (...), long; draws from `generator` (or torch's global one), or takes the Gumbel
        `noise` (shaped like the logits) drawn in advance."""
        if noise is None:
            noise = gumbel_noise(self.logits.shape, generator, self.logits.dtype, self.logits.device)
        return (self.logits.detach() + noise).argmax(dim=-1)

    def mode(self) -> torch.Tensor:
        """The most probable allowed action of each row (greedy evaluation)."""
        return self.logits.detach().argmax(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability of `actions` (...); raises if any action is out of range or masked."""
        index = actions.long().unsqueeze(-1)
        if not self.validate:
            return self.log_probs.gather(-1, index).squeeze(-1)
        check_shape("actions", actions, tuple(self.logits.shape[:-1]))
        if actions.dtype == torch.bool or actions.is_floating_point():
            raise ValueError(f"actions must be integer indices, got {actions.dtype}")
        num_choices = self.logits.shape[-1]
        if bool(((actions < 0) | (actions >= num_choices)).any()):
            raise ValueError(f"actions must lie in [0, {num_choices}), got {int(actions.min())}..{int(actions.max())}")
        if not bool(self.mask.gather(-1, index).all()):
            raise ValueError("log_prob of a masked action: it has probability 0 and cannot have been sampled "
                             "under this mask")
        return self.log_probs.gather(-1, index).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy over the allowed actions (masked ones contribute 0, with finite gradients)."""
        safe_log_probs = self.log_probs.masked_fill(~self.mask, 0.0)
        return -(self.probs * safe_log_probs).sum(dim=-1)


def gumbel_noise(shape: Sequence[int], generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Standard Gumbel noise: argmax(logits + noise) draws from the categorical of `logits` (Gumbel-max)."""
    uniform = torch.rand(tuple(shape), generator=generator, dtype=dtype, device=device)
    return -torch.log(-torch.log(uniform.clamp(min=torch.finfo(dtype).tiny)))


class MultiHeadMaskedCategorical:
    """Independent masked categoricals sampled together: actions (..., H), one column per head.

    Seed 001's user agent picks a server and a partition point; the joint log-probability is the sum of the
    heads' (the heads are independent given the observation).
    """

    def __init__(self, heads: Sequence[MaskedCategorical]) -> None:
        if not heads:
            raise ValueError("a multi-head categorical needs at least one head")
        batch_shapes = {tuple(head.logits.shape[:-1]) for head in heads}
        if len(batch_shapes) != 1:
            raise ValueError(f"every head must have the same batch shape, got {sorted(batch_shapes)}")
        self.heads = list(heads)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.stack([head.sample(generator) for head in self.heads], dim=-1)

    def mode(self) -> torch.Tensor:
        return torch.stack([head.mode() for head in self.heads], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        check_shape("actions", actions, (*self.heads[0].logits.shape[:-1], len(self.heads)))
        return torch.stack([head.log_prob(actions[..., i]) for i, head in enumerate(self.heads)], dim=-1).sum(-1)

    def entropy(self) -> torch.Tensor:
        return torch.stack([head.entropy() for head in self.heads], dim=-1).sum(-1)


class StepPolicy(Protocol):
    """What an auto-regressive policy provides: logits (and optionally a value) from a hidden state, and the
    hidden state after a choice. `hidden` is whatever the policy needs (a GRU state, a tuple with an indicator)."""

    def step(self, hidden: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, C) for the next choice, and the step value V(h_n) (B,) or None."""

    def advance(self, hidden: Any, choice: torch.Tensor) -> Any:
        """The hidden state after `choice` (B,); rows whose sequence has ended get choice 0, and their later
        outputs are ignored."""


class ChoiceMasker(Protocol):
    """The masks in force at each step; a fresh masker for every run (it remembers the choices made)."""

    def allowed(self) -> torch.Tensor:
        """(B, C) bool: the choices allowed now. A row with none allowed has finished its sequence."""

    def choose(self, choice: torch.Tensor, active: torch.Tensor) -> None:
        """Record `choice` (B,) for the rows where `active` (B,) is True."""


class StorageMasker:
    """No repeats, and only what fits the remaining storage (seed 001's duplicate and C7 masks).

    `sizes` (B, C) or (C,), `capacity` (B,), in the same units. Use float64 byte counts, as the simulator does,
    so that "fits" means the same thing here and in its storage check.
    """

    def __init__(self, sizes: torch.Tensor, capacity: torch.Tensor) -> None:
        if capacity.dim() != 1:
            raise ValueError(f"capacity must have shape (B,), got {tuple(capacity.shape)}")
        batch = capacity.shape[0]
        self.sizes = sizes.expand(batch, -1) if sizes.dim() == 1 else sizes
        check_shape("sizes", self.sizes, (batch, self.sizes.shape[-1]))
        self.remaining = capacity.clone()
        self.chosen = torch.zeros(self.sizes.shape, dtype=torch.bool, device=self.sizes.device)

    def allowed(self) -> torch.Tensor:
        return ~self.chosen & (self.sizes <= self.remaining.unsqueeze(-1))

    def choose(self, choice: torch.Tensor, active: torch.Tensor) -> None:
        rows = active.nonzero().squeeze(-1)
        self.chosen[rows, choice[rows]] = True
        self.remaining[rows] -= self.sizes[rows, choice[rows]]


def storage_masks(sizes: torch.Tensor, capacity: torch.Tensor, choices: torch.Tensor) -> torch.Tensor:
    """(B, L, C): the masks a `StorageMasker(sizes, capacity)` gives at each step of the stored `choices` (B, L),
    padded with -1, all at once: step n allows what is not among the first n choices and fits what they left."""
    batch = choices.shape[0]
    sizes = sizes.expand(batch, -1) if sizes.dim() == 1 else sizes
    taken = choices >= 0
    picks = choices.clamp(min=0)
    picked = torch.nn.functional.one_hot(picks, sizes.shape[-1]).bool() & taken.unsqueeze(-1)  # (B, L, C)
    chosen_before = torch.cumsum(picked, dim=1).gt(0).roll(1, dims=1)
    chosen_before[:, 0] = False
    used = torch.where(taken, sizes.gather(-1, picks), 0.0)  # (B, L)
    # capacity - s_0 - s_1 ... in the masker's order of operations, so "fits" rounds the same way
    remaining = torch.cumsum(torch.cat([capacity.unsqueeze(-1), -used[:, :-1]], dim=-1), dim=-1)  # before each step
    return ~chosen_before & (sizes.unsqueeze(1) <= remaining.unsqueeze(-1))


def score_sequences(logits: torch.Tensor, allowed: torch.Tensor, choices: torch.Tensor,
                    step_values: torch.Tensor | None = None, validate: bool = True) -> SequenceResult:
    """Score stored `choices` (B, L), padded with -1, from every step's `logits` (B, L, C), masks `allowed`
    (B, L, C) and optional `step_values` (B, L): what `autoregressive_sequence` returns when it replays them,
    computed for all steps at once. Raises as the replay does on a sequence the masks would not have allowed,
    unless `validate` is False (choices drawn under these very masks)."""
    check_shape("logits", logits, (*choices.shape, allowed.shape[-1]))
    check_shape("allowed", allowed, tuple(logits.shape))
    running = torch.cummin(allowed.any(dim=-1).to(torch.uint8), dim=1).values.bool()  # (B, L)
    if validate:
        _check_stored(choices, running, 0)
    fallback = torch.zeros_like(allowed)
    fallback[..., 0] = True
    dist = MaskedCategorical(logits, torch.where(running.unsqueeze(-1), allowed, fallback), validate)
    choice = torch.where(running, choices, 0)
    zero = logits.new_zeros(())
    log_probs = torch.where(running, dist.log_prob(choice), zero)
    entropies = torch.where(running, dist.entropy(), zero)
    values = None if step_values is None else torch.where(running, step_values, zero)
    first_value = None if step_values is None else step_values[:, 0]
    return _sequence_result(choices, log_probs, entropies, values, first_value)


@dataclass
class SequenceResult:
    """One sequence per row, padded to `max_steps` columns (choices -1, log-probs, entropies and values 0)."""

    choices: torch.Tensor  # (B, L) long
    step_log_probs: torch.Tensor  # (B, L)
    log_prob: torch.Tensor  # (B,): eq. 30, the sum over the steps taken
    entropy: torch.Tensor  # (B,): the sum of the step entropies along the sequence
    lengths: torch.Tensor  # (B,) long
    step_values: torch.Tensor | None  # (B, L), when the policy gives step values
    value: torch.Tensor | None  # (B,): eq. 29, the mean step value over the steps taken (V(h_0) if none)
    initial_value: torch.Tensor | None = None  # (B,): V(h_0), the value before any choice


def autoregressive_sequence(
    policy: StepPolicy,
    hidden: Any,
    masker: ChoiceMasker,
    choices: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    greedy: bool = False,
    max_steps: int | None = None,
    noise: torch.Tensor | None = None,
) -> SequenceResult:
    """Sample a sequence of masked choices (`choices` None), or replay stored `choices` (B, L) to score them.

    The sequence of a row ends when its masker allows nothing, or after `max_steps` steps (default: C, enough
    when choices cannot repeat; a replay takes it from the stored width). Replaying checks that the stored
    sequence is one the masks allow, ending where they end: build the masker from the same stored inputs.
    Sampling draws each step's Gumbel noise from `generator`, or reads step n's from `noise` (B, L, C), drawn in
    advance (`gumbel_noise`): one draw for the whole sequence.
    """
    allowed = masker.allowed()
    batch, num_choices = allowed.shape
    if choices is not None:
        if max_steps is not None and max_steps != choices.shape[-1]:
            raise ValueError(f"max_steps={max_steps} but the stored choices have {choices.shape[-1]} columns")
        check_shape("choices", choices, (batch, choices.shape[-1]))
        max_steps = choices.shape[-1]
    max_steps = num_choices if max_steps is None else max_steps
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    running = torch.ones(batch, dtype=torch.bool, device=allowed.device)
    out_choices = torch.full((batch, max_steps), -1, dtype=torch.long, device=allowed.device)
    fallback = torch.zeros_like(allowed)
    fallback[:, 0] = True  # rows that have finished get a one-choice distribution; their outputs are dropped
    step_log_probs, entropies, step_values = [], [], []
    first_value = None
    for step in range(max_steps):
        if step > 0:
            allowed = masker.allowed()
        running = running & allowed.any(dim=-1)
        if choices is not None:
            _check_stored(choices[:, step:step + 1], running.unsqueeze(-1), step)
        if step > 0 and not running.any():
            break
        logits, value = policy.step(hidden)
        if value is not None:
            check_shape("a step value", value, (batch,))
        first_value = value if step == 0 else first_value
        # sampled choices come from these very masks; stored ones are checked
        dist = MaskedCategorical(logits, torch.where(running.unsqueeze(-1), allowed, fallback),
                                 validate=choices is not None)
        if choices is not None:
            choice = torch.where(running, choices[:, step], 0)
        else:
            drawn = dist.mode() if greedy else dist.sample(generator, None if noise is None else noise[:, step])
            choice = torch.where(running, drawn, 0)
        zero = logits.new_zeros(())
        step_log_probs.append(torch.where(running, dist.log_prob(choice), zero))
        entropies.append(torch.where(running, dist.entropy(), zero))
        if value is not None:
            step_values.append(torch.where(running, value, zero))
        out_choices[:, step] = torch.where(running, choice, -1)
        masker.choose(choice, running)
        hidden = policy.advance(hidden, choice)
    if choices is not None and bool((choices[:, len(step_log_probs):] >= 0).any()):
        raise ValueError(f"a stored sequence continues after step {len(step_log_probs) - 1} although its masks "
                         "allow nothing more")
    values = None if first_value is None else _pad(torch.stack(step_values, dim=-1), max_steps)
    return _sequence_result(out_choices, _pad(torch.stack(step_log_probs, dim=-1), max_steps),
                            torch.stack(entropies, dim=-1), values, first_value)


def _sequence_result(choices: torch.Tensor, step_log_probs: torch.Tensor, step_entropies: torch.Tensor,
                     step_values: torch.Tensor | None, first_value: torch.Tensor | None) -> SequenceResult:
    """Eq. 29-30 from per-step terms (B, L) that are 0 after each sequence's end."""
    lengths = (choices >= 0).sum(dim=-1)
    result = SequenceResult(choices, step_log_probs, step_log_probs.sum(dim=-1), step_entropies.sum(dim=-1),
                            lengths, None, None)
    if step_values is not None:
        mean_taken = step_values.sum(dim=-1) / lengths.clamp(min=1).to(step_values.dtype)
        result.step_values, result.value = step_values, torch.where(lengths > 0, mean_taken, first_value)
        result.initial_value = first_value
    return result


def _check_stored(stored: torch.Tensor, running: torch.Tensor, first_step: int) -> None:
    """Stored choices (B, S) must go on exactly while the masks allow something (`running`, B x S)."""
    for wrong, message in (((running & (stored < 0)), ("ends at step {} although its masks still allow choices: it "
                                                       "was not sampled under these masks")),
                           ((~running & (stored >= 0)), "continues at step {} although its masks allow nothing more")):
        if bool(wrong.any()):
            step = first_step + int(wrong.any(dim=0).nonzero()[0])
            raise ValueError("a stored sequence " + message.format(step))


def _pad(columns: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(columns, (0, width - columns.shape[-1]))
