"""Benchmark: the cost of replay (`edgeprof.rl.replay`) against one DQN update, and its O(n) scan against a sum tree.

- Buffers of 1e3 to 1e6 rows (obs and next_obs of 16 floats, action, reward, terminated), full, every row with
  a random priority; batches of 256; one thread. Median wall time per call of: uniform `sample`, prioritised
  `sample` (stratified, with importance weights: a cumulative sum and a binary search over every row),
  `update_priorities` of a batch, `add` of 256 rows.
- Alternative: the same stratified draw from a sum tree (numpy, vectorised over the batch level by level:
  O(B log n) per draw and per update; without the minimum tree the weights need, so its cost is understated),
  checked to pick the same rows.
- Scale: one double-DQN update of a FOCI-sized network (3-layer MLP 64 -> 128 -> 128, dueling head over
  353 actions, batch 256: online and target forward on next states, backward, Adam).

    python benchmarks/replay.py [--capacities 1000,10000,100000,1000000] [--batch 256] [-o PATH]
"""

from __future__ import annotations

import os

os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from reporting import machine, write_result
from sim_throughput import median_seconds
from torch import nn

import edgeprof
from edgeprof.rl.buffers import Field
from edgeprof.rl.dqn import DuelingHead, q_target, td_loss
from edgeprof.rl.replay import PrioritizedReplayBuffer, ReplayBuffer

RESULTS = Path(__file__).parent / "results"
FIELDS = {"obs": Field((16,)), "next_obs": Field((16,)), "action": Field((), torch.long), "reward": Field(()),
          "terminated": Field((), torch.bool)}
ALPHA, BETA = 0.6, 0.4


def median_ms(work: Callable[[], object]) -> float:
    return median_seconds(work) * 1e3


def rows(count: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"obs": torch.randn(count, 16, generator=generator),
            "next_obs": torch.randn(count, 16, generator=generator),
            "action": torch.randint(353, (count,), generator=generator),
            "reward": torch.randn(count, generator=generator),
            "terminated": torch.zeros(count, dtype=torch.bool)}


def filled(buffer: ReplayBuffer, generator: torch.Generator) -> None:
    chunk = min(buffer.capacity, 100_000)
    for start in range(0, buffer.capacity, chunk):
        slots = buffer.add(**rows(min(chunk, buffer.capacity - start), generator))
        if isinstance(buffer, PrioritizedReplayBuffer):
            buffer.update_priorities(slots, torch.rand(len(slots), generator=generator, dtype=torch.float64) * 10)


class SumTree:
    """The alternative measured here: leaves hold p ** alpha, node i holds the sum of nodes 2i and 2i + 1."""

    def __init__(self, scaled: np.ndarray) -> None:
        self.depth = max(len(scaled) - 1, 0).bit_length()
        self.width = 1 << self.depth
        self.nodes = np.zeros(2 * self.width)
        self.nodes[self.width:self.width + len(scaled)] = scaled
        for level in range(self.depth):
            low = self.width >> (level + 1)
            self.nodes[low:2 * low] = self.nodes[2 * low:4 * low:2] + self.nodes[2 * low + 1:4 * low:2]

    def find(self, targets: np.ndarray) -> np.ndarray:
        node = np.ones(len(targets), dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self.nodes[left]
            right = (targets >= left_sum) & (self.nodes[left + 1] > 0)
            targets = np.where(right, targets - left_sum, targets)
            node = np.where(right, left + 1, left)
        return node - self.width

    def draw(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        return self.find((np.arange(batch) + rng.random(batch)) * (self.nodes[1] / batch))

    def update(self, slots: np.ndarray, scaled: np.ndarray) -> None:
        node = slots + self.width
        self.nodes[node] = scaled
        for _ in range(self.depth):
            node = np.unique(node // 2)
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]


def bench_capacity(capacity: int, batch: int) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    uniform = ReplayBuffer(capacity, FIELDS, seed=0)
    prioritized = PrioritizedReplayBuffer(capacity, FIELDS, seed=0, alpha=ALPHA)
    filled(uniform, generator)
    filled(prioritized, generator)
    scaled = prioritized.state_dict()["scaled_priorities"]
    tree, rng = SumTree(scaled.numpy()), np.random.default_rng(0)
    targets = torch.rand(4096, dtype=torch.float64, generator=generator) * scaled.sum()
    agree = np.array_equal(tree.find(targets.numpy()),
                           torch.searchsorted(torch.cumsum(scaled, dim=0), targets, right=True).numpy())
    update_index = torch.unique(torch.randint(capacity, (batch,), generator=generator))
    update_error = torch.rand(len(update_index), dtype=torch.float64, generator=generator)
    tree_scaled = ((update_error.abs() + prioritized.eps) ** ALPHA).numpy()
    new_rows = rows(batch, generator)
    result = {
        "capacity": capacity,
        "uniform_sample_ms": median_ms(lambda: uniform.sample(batch)),
        "uniform_add_ms": median_ms(lambda: uniform.add(**new_rows)),
        "prioritized_sample_ms": median_ms(lambda: prioritized.sample(batch, BETA)),
        "prioritized_update_ms": median_ms(lambda: prioritized.update_priorities(update_index, update_error)),
        "prioritized_add_ms": median_ms(lambda: prioritized.add(**new_rows)),
        "sum_tree_draw_ms": median_ms(lambda: tree.draw(batch, rng)),
        "sum_tree_update_ms": median_ms(lambda: tree.update(update_index.numpy(), tree_scaled)),
        "sum_tree_and_scan_pick_the_same_rows": agree,
    }
    result["scan_over_tree_sample_and_update"] = (
        (result["prioritized_sample_ms"] + result["prioritized_update_ms"])
        / (result["sum_tree_draw_ms"] + result["sum_tree_update_ms"]))
    return result


def dqn_update_ms(batch: int) -> float:
    torch.manual_seed(0)

    def network() -> nn.Module:
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), DuelingHead(128, 353))

    online, target = network(), network()
    optimizer = torch.optim.Adam(online.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    obs, next_obs = torch.randn(batch, 64, generator=generator), torch.randn(batch, 64, generator=generator)
    action, reward = torch.randint(353, (batch,), generator=generator), torch.randn(batch, generator=generator)
    terminated = torch.zeros(batch, dtype=torch.bool)

    def update() -> None:
        with torch.no_grad():
            targets = q_target(reward, target(next_obs), terminated, 0.7, online(next_obs))
        taken = online(obs).gather(-1, action.unsqueeze(-1)).squeeze(-1)
        optimizer.zero_grad()
        td_loss(taken, targets).backward()
        optimizer.step()

    return median_ms(update)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", default="1000,10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "replay.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    capacities = [bench_capacity(int(value), args.batch) for value in args.capacities.split(",")]
    update = dqn_update_ms(args.batch)
    for row in capacities:
        row["prioritized_sample_and_update_share_of_dqn_update"] = (
            (row["prioritized_sample_ms"] + row["prioritized_update_ms"]) / update)
    result = {
        "benchmark": "replay",
        "edgeprof": edgeprof.__version__,
        "torch": torch.__version__,
        "machine": machine(),
        "settings": {"batch": args.batch, "alpha": ALPHA, "beta": BETA, "row_fields": "obs and next_obs (16,) "
                     "float32, action int64, reward float32, terminated bool", "statistic": "median wall time per call",
                     "dqn_update": "MLP 64-128-128 + dueling head, 353 actions, double-DQN target, Huber, Adam"},
        "dqn_update_ms": update,
        "capacities": capacities,
    }
    keys = ("uniform_sample_ms", "prioritized_sample_ms", "prioritized_update_ms", "sum_tree_draw_ms",
            "sum_tree_update_ms", "scan_over_tree_sample_and_update",
            "prioritized_sample_and_update_share_of_dqn_update")
    result["summary"] = {row["capacity"]: {key: round(row[key], 4) for key in keys}
                         | {"dqn_update_ms": round(update, 4)} for row in capacities}
    result["wall_s"] = time.perf_counter() - started
    write_result(args.output, result, "summary")


if __name__ == "__main__":
    main()
