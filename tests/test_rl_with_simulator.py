"""The pieces on seed 001's simulator: both timescales fill their buffers in the order the phases happen, the
auto-regressive deployment respects C7 as the simulator checks it, and replays from the buffer with ratio 1."""

import numpy as np
import pytest
import torch
from sim_testing import small_scenario

from edgeprof.optimize.heuristics import equal_share_allocation
from edgeprof.rl.buffers import Field, Phase, RolloutBuffer
from edgeprof.rl.distributions import (
    MaskedCategorical,
    MultiHeadMaskedCategorical,
    StorageMasker,
    autoregressive_sequence,
)
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.workload import load_service_table


class UniformSteps:
    """An untrained deployment policy: equal logits, a step value of 1."""

    def __init__(self, rows: int, choices: int) -> None:
        self.rows, self.choices = rows, choices

    def step(self, hidden):
        return torch.zeros(self.rows, self.choices), torch.ones(self.rows)

    def advance(self, hidden, choice):
        return hidden


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    scenario = small_scenario(tmp_path_factory.mktemp("profiles"))
    return EdgeSystem(scenario, load_service_table(scenario), num_envs=2, seed=0)


def test_both_timescales_on_the_simulator(system):
    envs, servers, users, services = system.num_envs, system.num_servers, system.num_users, system.table.num_services
    interval, slots = system.scenario["system.slots_per_deployment"], 3 * system.scenario["system.slots_per_deployment"]
    points = system.user_masks()[1].shape[-1]
    deploy = RolloutBuffer(Phase("deploy", interval), slots // interval, envs, servers,
                           fields={"choices": Field((services,), torch.long)})
    user = RolloutBuffer(Phase("user", 1), slots, envs, users, with_costs=True, fields={
        "action": Field((2,), torch.long), "server_mask": Field((servers,), torch.bool),
        "point_mask": Field((points,), torch.bool)})
    generator = torch.Generator().manual_seed(0)
    sizes = torch.tensor(system.table.model_bytes)  # float64 bytes, as the C7 check
    capacity = torch.tensor(system.entities.server_storage_bytes).reshape(-1)  # (E * J,)
    policy = UniformSteps(envs * servers, services)
    zeros = torch.zeros(envs, users)
    for _ in range(slots):
        if system.deployment_due:
            sequence = autoregressive_sequence(policy, None, StorageMasker(sizes, capacity), generator=generator)
            deployment = np.zeros((envs * servers, services), dtype=bool)
            rows, steps = np.nonzero(sequence.choices.numpy() >= 0)
            deployment[rows, sequence.choices.numpy()[rows, steps]] = True
            rewards = system.deploy(deployment.reshape(envs, servers, services).transpose(0, 2, 1))  # checks C7
            if system.t > 0:
                deploy.add_outcome(rewards)  # eq. 24 of the interval that ended
            deploy.add_decision(system.t, sequence.log_prob.view(envs, servers), sequence.value.view(envs, servers),
                                choices=sequence.choices.view(envs, servers, services))
        server_mask, point_mask = (torch.from_numpy(mask) for mask in system.user_masks())
        dist = MultiHeadMaskedCategorical([MaskedCategorical(torch.zeros(server_mask.shape), server_mask),
                                           MaskedCategorical(torch.zeros(point_mask.shape), point_mask)])
        action = dist.sample(generator)
        user.add_decision(system.t, dist.log_prob(action), zeros, zeros, action=action, server_mask=server_mask,
                          point_mask=point_mask)
        association, z = action[..., 0].numpy(), action[..., 1].numpy()
        outcome = system.step(association, z, *equal_share_allocation(system, association))
        user.add_outcome(system.user_rewards(outcome), cost=outcome.delay_s)

    deploy.finish()  # the last deployment's reward comes at the next deploy: it is left out
    user.finish(last_value=zeros, last_cost_value=zeros)
    assert (deploy.num_steps, user.num_steps) == (2, slots)
    deploy.compute_returns(gamma=0.99 ** interval, lam=0.95)
    user.compute_returns(gamma=0.99, lam=0.95)
    assert bool(torch.isfinite(user.stored("cost_advantage")).all())

    stored = deploy.stored("choices").reshape(-1, services)
    replay = autoregressive_sequence(UniformSteps(len(stored), services), None,
                                     StorageMasker(sizes, capacity.repeat(deploy.num_steps)), choices=stored)
    assert torch.equal(replay.log_prob, deploy.stored("log_prob").reshape(-1))
