"""FOCI's per-edge fairness oracle (seed 002, P-EDGE-2, eq. 11; App. A, Algorithm 1).

Edge n shares its L streaming multiprocessors (SMs) among its connected devices. With device m's cost (the
negative QoS) at l SMs written c_m(l) = Rc_m + Rf_m / l (Rc: energy, local and transmission latency, and the
switch cost; Rf: beta x L x the suffix latency on the whole edge), the oracle maximises the worst QoS:
min over integer l >= 1 with sum l <= L of max_m c_m(l_m). Here costs are positive (lower is better), so
"max-min reward" reads "min-max cost".

- `greedy_allocation`: the exact integer optimum. The problem is separable with each c_m decreasing, so
  handing the next SM to the currently worst device is optimal (the paper calls the integer problem NP-hard;
  for this form it is not). Tests check it against brute force over every composition.
- `ipls`: Algorithm 1 steps 1-15 on the relaxation (real l >= 1): a geometric grid p_i = R_l (1 + eps)^i
  between the lower and upper bounds of the worst cost, and a binary search ("dichotomy") for the smallest
  grid level p whose allocation l_m(p) = max(Rf_m / (p - Rc_m), 1) fits in L SMs. The level found is within
  a factor (1 + eps) of the relaxation's optimum (`relaxed_optimum`, plain bisection, the reference; where no
  device needs the l >= 1 floor it equals seed 001's min-max split, `allocation.minmax_noise_limited_shares`).
- `min_risk_rounding`: steps 16-22: round every share up, then take SMs back one at a time from devices with
  more than one until no SM is over-allocated.

Where Algorithm 1 is ambiguous or does not terminate, our reading (measured in research/seeds-002-004.md):

- "argmin of the drop" (step 19) is read as: take the SM back where the device's resulting cost is lowest
  (`rule="lowest_cost"`, the default: exact on 400/400 small cases); the smallest-increase reading
  (`rule="smallest_increase"`) was off on 97/400, by up to 33.7%.
- With the eps-grid the rounded-up shares can sum to less than L, and the literal `while theta != 0` loop only
  takes SMs back, so it never ends (34/2000 random cases at eps 0.01, 545/2000 at 0.1). Leftover SMs go one at
  a time to the worst device instead, so every SM is used (edges are "selfless and always fully utilize all
  available resources", section 3).
- The step-8 test uses the same l_m(p) >= 1 as step 10, and p must exceed every Rc_m (below it no share is
  enough). When the grid's top point lies below the upper bound the bound itself is the last candidate (it is
  always feasible: one SM each).

An edge with more devices than SMs cannot give each one: the simulator (`sim.foci`) sends the devices with the
weakest channels beyond the first L to run locally before the oracle is asked.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

ROUNDING_RULES = ("lowest_cost", "smallest_increase")
METHODS = ("min-risk", "greedy")


def _check(rc: np.ndarray, rf: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    rc, rf = np.asarray(rc, dtype=np.float64), np.asarray(rf, dtype=np.float64)
    if rc.ndim != 1 or rc.shape != rf.shape or len(rc) == 0:
        raise ValueError(f"rc and rf must be non-empty vectors of one length, got shapes {rc.shape} and {rf.shape}")
    if not (np.all(np.isfinite(rc)) and np.all(np.isfinite(rf)) and np.all(rc >= 0) and np.all(rf > 0)):
        raise ValueError("the oracle needs finite costs with rc >= 0 and rf > 0 (Algorithm 1's input)")
    if total < len(rc):
        raise ValueError(f"{total} SMs cannot give each of {len(rc)} devices at least one")
    return rc, rf


def costs(rc: np.ndarray, rf: np.ndarray, sms: np.ndarray) -> np.ndarray:
    """c_m(l) = Rc_m + Rf_m / l: each device's cost (the negative QoS of eq. 11) at its share."""
    return np.asarray(rc, dtype=np.float64) + np.asarray(rf, dtype=np.float64) / np.asarray(sms, dtype=np.float64)


def greedy_allocation(rc: np.ndarray, rf: np.ndarray, total: int) -> np.ndarray:
    """The exact integer optimum: one SM each, then every further SM to the device whose cost is highest
    (ties: the lowest index). Returns (M,) int64 shares summing to `total`."""
    rc, rf = _check(rc, rf, total)
    sms = np.ones(len(rc), dtype=np.int64)
    heap = [(-(c + f), m) for m, (c, f) in enumerate(zip(rc.tolist(), rf.tolist(), strict=True))]
    heapq.heapify(heap)
    for _ in range(total - len(rc)):
        _, m = heapq.heappop(heap)
        sms[m] += 1
        heapq.heappush(heap, (-(rc[m] + rf[m] / sms[m]), m))
    return sms


def _continuous_shares(rc: np.ndarray, rf: np.ndarray, level: float) -> np.ndarray:
    """l_m(p) = max(Rf_m / (p - Rc_m), 1): the fewest SMs that bring each device's cost down to `level`
    (infinite where the level is not above Rc_m)."""
    gap = level - rc
    with np.errstate(divide="ignore"):
        return np.where(gap > 0, np.maximum(rf / np.where(gap > 0, gap, 1.0), 1.0), np.inf)


def _fits(rc: np.ndarray, rf: np.ndarray, level: float, total: int) -> bool:
    return bool(_continuous_shares(rc, rf, level).sum() <= total)


def cost_bounds(rc: np.ndarray, rf: np.ndarray, total: int) -> tuple[float, float]:
    """Algorithm 1 steps 2-3: the worst cost lies between max_m c_m(L - M + 1) (each device's best case: the
    paper writes L - |M_n|, one SM short of it, not a lower bound in general, e.g. M = 1) and max_m c_m(1) (one SM
    each, always feasible)."""
    rc, rf = _check(rc, rf, total)
    return float(costs(rc, rf, total - len(rc) + 1).max()), float(costs(rc, rf, 1).max())


def relaxed_optimum(rc: np.ndarray, rf: np.ndarray, total: int, iterations: int = 200) -> float:
    """The relaxation's optimal worst cost by bisection on the level (the reference IPLS is tested against)."""
    low, high = cost_bounds(rc, rf, total)
    rc, rf = np.asarray(rc, dtype=np.float64), np.asarray(rf, dtype=np.float64)
    if _fits(rc, rf, low, total):
        return low
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if _fits(rc, rf, middle, total):
            high = middle
        else:
            low = middle
        if high - low <= 1e-15 * high:
            break
    return high


@dataclass(frozen=True)
class IplsResult:
    """The relaxation's eps-optimal worst cost `level`, its shares (M,) (real, >= 1, summing to <= L), and the
    feasibility tests the binary search made."""

    level: float
    shares: np.ndarray
    tests: int


def ipls(rc: np.ndarray, rf: np.ndarray, total: int, eps: float = 0.01) -> IplsResult:
    """Algorithm 1 steps 1-15: the smallest level of the grid R_l (1 + eps)^i (and R_u) whose shares fit in
    `total` SMs, found by binary search; within a factor (1 + eps) of `relaxed_optimum`."""
    if not eps > 0:
        raise ValueError(f"the IPLS tolerance eps must be positive, got {eps}")
    low, high = cost_bounds(rc, rf, total)
    rc, rf = np.asarray(rc, dtype=np.float64), np.asarray(rf, dtype=np.float64)
    steps = math.floor(math.log(high / low) / math.log1p(eps)) if high > low else 0
    grid = low * (1.0 + eps) ** np.arange(steps + 1)
    if grid[-1] < high:
        grid = np.append(grid, high)
    first, last, tests = 0, len(grid) - 1, 0  # the answer lies in grid[first..last]; grid[last] always fits
    while first < last:
        middle = (first + last) // 2
        tests += 1
        if _fits(rc, rf, float(grid[middle]), total):
            last = middle
        else:
            first = middle + 1
    level = float(grid[last])
    return IplsResult(level, _continuous_shares(rc, rf, level), tests)


def min_risk_rounding(rc: np.ndarray, rf: np.ndarray, shares: np.ndarray, total: int,
                      rule: str = "lowest_cost") -> np.ndarray:
    """Algorithm 1 steps 16-22: integer shares from real ones (>= 1): round up, take SMs back one at a time
    from devices holding more than one (`rule`: where the resulting cost is lowest, or where the cost rises
    least), and hand leftover SMs one at a time to the worst device. Returns (M,) int64 summing to `total`."""
    rc, rf = _check(rc, rf, total)
    if rule not in ROUNDING_RULES:
        raise ValueError(f"the rounding rule must be one of {', '.join(ROUNDING_RULES)}, got {rule!r}")
    shares = np.asarray(shares, dtype=np.float64)
    if shares.shape != rc.shape or not np.all(shares >= 1.0 - 1e-9):
        raise ValueError("the real shares must be one per device, each at least 1")
    sms = np.maximum(np.ceil(shares - 1e-9), 1).astype(np.int64)
    while sms.sum() > total:
        reducible = sms > 1
        after = costs(rc, rf, np.maximum(sms - 1, 1))
        score = after if rule == "lowest_cost" else after - costs(rc, rf, sms)
        m = int(np.argmin(np.where(reducible, score, np.inf)))
        sms[m] -= 1
    while sms.sum() < total:
        sms[int(np.argmax(costs(rc, rf, sms)))] += 1
    return sms


def min_risk_allocation(rc: np.ndarray, rf: np.ndarray, total: int, eps: float = 0.01,
                        rule: str = "lowest_cost") -> np.ndarray:
    """The paper's oracle: IPLS on the relaxation, then min-risk rounding."""
    return min_risk_rounding(rc, rf, ipls(rc, rf, total, eps).shares, total, rule)


def oracle_allocation(method: str, rc: np.ndarray, rf: np.ndarray, total: int, eps: float = 0.01) -> np.ndarray:
    """Integer shares by `method`: "min-risk" (IPLS + rounding, the paper's) or "greedy" (the exact optimum)."""
    if method == "min-risk":
        return min_risk_allocation(rc, rf, total, eps)
    if method == "greedy":
        return greedy_allocation(rc, rf, total)
    raise ValueError(f"the oracle method must be one of {', '.join(METHODS)}, got {method!r}")


def oracle_cost(method: str, rc: np.ndarray, rf: np.ndarray, total: int, eps: float = 0.01) -> float:
    """-R_n^* (eq. 4): the worst device's cost under the oracle's allocation."""
    return float(costs(rc, rf, oracle_allocation(method, rc, rf, total, eps)).max())
