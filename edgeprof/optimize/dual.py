"""The Lagrange multiplier of a long-term cost constraint (seed 001: mean delay at most tau-bar, eq. 27).

Plain Python, shared by the optimizers (`primal_dual`) and the RL trainers (`edgeprof.rl.lagrange`).

`LagrangeMultiplier` is projected dual ascent, eq. 33 with the bound of section V-A:
lambda <- clip(lambda + lr * (mean_cost - limit), 0, upper), once per rollout, before the policy update
(Algorithm 1, lines 17-18). A plain step, not Adam: Adam on a scalar turns every update into a +-lr sign step
whatever the size of the violation. Defaults are section V-A's: lambda_0 = 0.01, lr = 0.01, upper = 100.

`PIDLagrangeMultiplier` follows Stooke, Achiam and Abbeel (2020), "Responsive Safety in Reinforcement Learning by
PID Lagrangian Methods": with the violation e = mean_cost - limit,
    integral <- clip(integral + ki * e, 0, upper)
    lambda   <- clip(kp * e + integral + kd * max(0, mean_cost - previous mean_cost), 0, upper)
The integral term alone (kp = kd = 0, ki = lr) is exactly the projected dual ascent above; the proportional
term reacts to the violation now and the derivative term to a cost that is rising, which damps the oscillation.

Units: the mean cost and the limit must be the same quantity, e.g. the mean per-slot delay of every user in the
rollout against tau-bar in seconds (how the public code fed eq. 33), not a discounted sum against tau-bar.
"""

from __future__ import annotations

import math
from typing import Any


def _check_bounds(init: float, upper: float) -> None:
    if not 0.0 <= init <= upper:
        raise ValueError(f"the initial multiplier must lie in [0, {upper}], got {init}")


def _check_cost(mean_cost: float) -> float:
    mean_cost = float(mean_cost)
    if not math.isfinite(mean_cost):
        raise ValueError(f"the mean cost must be finite, got {mean_cost}")
    return mean_cost


class LagrangeMultiplier:
    """Projected dual ascent on one constraint, mean_cost <= limit (eq. 33, bounded to [0, upper])."""

    def __init__(self, limit: float, init: float = 0.01, lr: float = 0.01, upper: float = 100.0) -> None:
        _check_bounds(init, upper)
        self.limit, self.lr, self.upper = float(limit), float(lr), float(upper)
        self.value = float(init)

    def update(self, mean_cost: float) -> float:
        """One dual step with the rollout's mean cost; returns the new multiplier."""
        violation = _check_cost(mean_cost) - self.limit
        self.value = min(max(self.value + self.lr * violation, 0.0), self.upper)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "lr": self.lr, "upper": self.upper, "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.limit, self.lr, self.upper = float(state["limit"]), float(state["lr"]), float(state["upper"])
        self.value = float(state["value"])


class PIDLagrangeMultiplier:
    """A PID controller on the constraint violation, projected to [0, upper] (Stooke et al. 2020)."""

    def __init__(self, limit: float, kp: float = 0.0, ki: float = 0.01, kd: float = 0.0, init: float = 0.01,
                 upper: float = 100.0) -> None:
        _check_bounds(init, upper)
        self.limit, self.kp, self.ki, self.kd, self.upper = float(limit), float(kp), float(ki), float(kd), float(upper)
        self.integral = float(init)
        self.previous_cost: float | None = None
        self.value = float(init)

    def update(self, mean_cost: float) -> float:
        """One controller step with the rollout's mean cost; returns the new multiplier."""
        mean_cost = _check_cost(mean_cost)
        violation = mean_cost - self.limit
        self.integral = min(max(self.integral + self.ki * violation, 0.0), self.upper)
        rise = 0.0 if self.previous_cost is None else max(0.0, mean_cost - self.previous_cost)
        self.previous_cost = mean_cost
        self.value = min(max(self.kp * violation + self.integral + self.kd * rise, 0.0), self.upper)
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "kp": self.kp, "ki": self.ki, "kd": self.kd, "upper": self.upper,
                "integral": self.integral, "previous_cost": self.previous_cost, "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.limit, self.kp, self.ki, self.kd = (float(state[key]) for key in ("limit", "kp", "ki", "kd"))
        self.upper, self.integral, self.value = (float(state[key]) for key in ("upper", "integral", "value"))
        self.previous_cost = None if state["previous_cost"] is None else float(state["previous_cost"])
