"""Seed 001's three policy layers on the small scenario: observations, masks, exact re-scoring, shares, a whole
run through the simulator, seeding and gradients."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from sim_testing import small_scenario

from edgeprof.rl.distributions import autoregressive_sequence, gumbel_noise
from edgeprof.rl.hc_policies import (
    DeploymentObservation,
    DeploymentPolicy,
    HCPolicies,
    HCPolicyConfig,
    ServerThenPoint,
    UserObservation,
    UserPolicy,
    allocation_observation,
    allocation_shares,
    deployment_from_choices,
    deployment_observation,
    draw_deployment,
    others_picks,
    user_observation,
)
from edgeprof.sim import core, model
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.workload import load_service_table

torch.set_num_threads(1)

SMALL = HCPolicyConfig(user_hidden=32, deploy_hidden=32, deploy_embed=8, alloc_hidden=16)


@pytest.fixture(scope="module")
def scenario_and_table(tmp_path_factory):
    # two services per model (I = 8) and short intervals, so several deployments happen in a few slots
    scenario = small_scenario(tmp_path_factory.mktemp("profiles"), "services.services_per_model=2",
                              "system.slots_per_deployment=2")
    return scenario, load_service_table(scenario)


def make_system(scenario_and_table, num_envs=4, seed=0):
    return EdgeSystem(*scenario_and_table, num_envs=num_envs, seed=seed)


def make_policies(system, config=SMALL, seed=0):
    torch.manual_seed(seed)
    return HCPolicies.for_system(system, config)


def deploy_with(policies, system, generator, greedy=False):
    with torch.no_grad():
        sequence = policies.deployment.sample(deployment_observation(system), generator, greedy)
    system.deploy(deployment_from_choices(sequence.choices, system.table.num_services))
    return sequence


def test_observations_have_their_documented_shapes_and_order_one_features(scenario_and_table):
    system = make_system(scenario_and_table)
    deploy_with(make_policies(system), system, torch.Generator().manual_seed(0))
    system.step(*_local_everywhere(system))  # fill the request counters and the prefix caches
    envs, servers, users = system.num_envs, system.num_servers, system.num_users
    services, models = system.table.num_services, system.table.num_models

    deploy = deployment_observation(system)
    assert deploy.features.shape == (envs, servers, 6 * services + 1)
    assert deploy.storage_bytes.dtype == torch.float64 and deploy.model_bytes.shape == (services,)
    own_deployment = deploy.features[..., 2 * services:3 * services]
    assert torch.equal(own_deployment.bool(), torch.from_numpy(system.deployment).transpose(1, 2))
    system_wide = deploy.features[0, 0, :services] * users * system.scenario["system.slots_per_deployment"]
    torch.testing.assert_close(system_wide, torch.tensor(system.interval_requests[0], dtype=torch.float32))

    user = user_observation(system)
    assert user.local.shape == (envs, users, services + models + 3 * servers + 6)
    assert user.state.shape == (envs, 2 * services + services * servers + 3 * servers + users * (servers + 4))
    assert torch.equal(user.local[..., :services].argmax(-1), torch.from_numpy(system.slot.requests))
    server_mask, point_mask = system.user_masks()
    assert torch.equal(user.server_mask, torch.from_numpy(server_mask))
    assert torch.equal(user.point_mask, torch.from_numpy(point_mask))

    association = np.zeros((envs, users), dtype=np.int64)
    alloc = allocation_observation(system, association, system.table.num_points[system.slot.requests])
    assert alloc.users.shape == (envs, users, 8) and alloc.servers.shape == (envs, servers, 3)
    assert alloc.users[..., 2].abs().max() == 0  # z = L: no edge work
    assert torch.equal(alloc.servers[..., 2].sum(-1), torch.full((envs,), float(servers)))  # K users, K / J each

    for features in (deploy.features, user.local, user.state, alloc.users, alloc.servers):
        assert features.dtype == torch.float32
        assert bool(torch.isfinite(features).all()) and features.abs().max() < 10


def test_deployment_sequences_fit_storage_never_repeat_and_stop_only_when_nothing_fits(scenario_and_table):
    system = make_system(scenario_and_table, num_envs=16)
    policies = make_policies(system)
    obs = deployment_observation(system)
    sizes, storage = system.table.model_bytes, system.entities.server_storage_bytes
    generator = torch.Generator().manual_seed(1)
    lengths = []
    for _ in range(20):
        with torch.no_grad():
            sequence = policies.deployment.sample(obs, generator)
        choices = sequence.choices.numpy()  # (E, J, I)
        deployment = deployment_from_choices(sequence.choices, system.table.num_services)
        assert core.storage_feasible(system.table, system.entities, deployment).all()  # C7 as the simulator checks
        for (env, server), row in np.ndenumerate(sequence.lengths.numpy()):
            picked = choices[env, server, :row]
            assert len(set(picked)) == row and (choices[env, server, row:] == -1).all()
            assert set(picked) == set(np.flatnonzero(deployment[env, :, server]))
            left = storage[env, server] - sizes[picked].sum()
            assert (sizes[~deployment[env, :, server]] > left).all()  # no stop choice: ends only when full
        lengths.append(sequence.lengths)
    lengths = torch.stack(lengths)
    assert 0 < lengths.min() and lengths.max() < system.table.num_services  # the storage mask did bind
    system.deploy(deployment)


@pytest.mark.parametrize("order", ["turn", "rounds"])
def test_servers_deploy_in_turn_or_in_rounds_seeing_the_others_picks_and_rescore_exactly(scenario_and_table, order):
    system = make_system(scenario_and_table)
    policies = make_policies(system, dataclasses.replace(SMALL, deployment_order=order))
    deploy_with(policies, system, torch.Generator().manual_seed(3))
    system.step(*_local_everywhere(system))
    while not system.deployment_due:
        system.step(*_local_everywhere(system))
    with torch.no_grad():
        obs, choices, deployment = draw_deployment(policies.deployment, system, torch.Generator().manual_seed(4))
        others = others_picks(choices, system.table.num_services, order)
        sequences = policies.deployment.evaluate(obs, choices, others)
    assert np.array_equal(deployment, deployment_from_choices(choices, system.table.num_services))
    assert torch.equal(sequences.choices, choices)
    services, servers = system.table.num_services, system.num_servers
    picked = torch.nn.functional.one_hot(choices.clamp(min=0), services) * (choices >= 0).unsqueeze(-1)
    for server in range(servers):
        for step in range(services):
            if order == "turn":  # the sets of the servers before it
                seen = picked[:, :server].sum((1, 2))
            else:  # the other servers' picks of steps < n
                seen = picked[:, :, :step].sum(2).sum(1) - picked[:, server, :step].sum(1)
            torch.testing.assert_close(others[:, server, step], seen.float() / (servers - 1), rtol=0, atol=1e-6)
    # each server's picks and scores, one step after another, given the round's table and the noise drawn at once
    noise = gumbel_noise((system.num_envs, servers, services, services), torch.Generator().manual_seed(4))
    for server in range(servers):
        own = type(obs)(obs.features[:, server], obs.storage_bytes[:, server], obs.model_bytes)
        reference = stepwise_reference(policies.deployment, own, noise=noise[:, server], others=others[:, server])
        assert torch.equal(choices[:, server], reference.choices)
        torch.testing.assert_close(sequences.log_prob[:, server], reference.log_prob, rtol=0, atol=1e-5)
        torch.testing.assert_close(sequences.value[:, server], reference.value, rtol=0, atol=1e-5)
    assert sequences.log_prob.shape == (system.num_envs, servers)
    assert core.storage_feasible(system.table, system.entities, deployment).all()
    assert bool(others[:, -1].sum() > 0) and policies.deployment.actor.in_features == 32 + services


def stepwise_reference(policy, obs, generator=None, greedy=False, noise=None, others=None):
    """Each pick drawn and scored as it is made: `autoregressive_sequence` through the policy's own steps, with
    the Gumbel noise of the whole sequence drawn at once from `generator`, as `DeploymentPolicy.draw` draws it
    (or given), and the round's table `others` (default: that of the rows as the servers of one system, drawn
    first)."""
    rows, services = obs.storage_bytes.numel(), obs.model_bytes.shape[0]
    if noise is None and not greedy:
        noise = gumbel_noise((rows, services, services), generator)
    if others is None:
        others = others_picks(policy.draw(obs, greedy=greedy, noise=noise), services, policy.order)
    with torch.no_grad():
        return autoregressive_sequence(policy, policy.initial_hidden(obs, others), policy.masker(obs), greedy=greedy,
                                       noise=None if noise is None else noise.reshape(rows, services, services))


@pytest.mark.parametrize("greedy", [False, True])
def test_drawn_sequences_are_the_stepwise_references_and_rescore_to_its_log_probs(scenario_and_table, greedy):
    system = make_system(scenario_and_table)
    policies = make_policies(system)
    obs = deployment_observation(system)
    generator, reference_generator = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    sampled = policies.deployment.sample(obs, generator, greedy)
    reference = stepwise_reference(policies.deployment, obs, reference_generator, greedy)
    assert torch.equal(sampled.choices.reshape(reference.choices.shape), reference.choices)
    assert torch.equal(generator.get_state(), reference_generator.get_state())  # the same draws, no more
    for name in ("log_prob", "entropy", "value", "step_log_probs", "step_values"):
        torch.testing.assert_close(getattr(sampled, name).reshape(getattr(reference, name).shape),
                                   getattr(reference, name), rtol=0, atol=1e-5)


@pytest.mark.parametrize("order", ["turn", "rounds"])
def test_the_numpy_pick_loop_draws_like_the_stepwise_reference_at_the_papers_sizes(order):
    torch.manual_seed(0)
    services = 45
    policy = DeploymentPolicy(12, services, HCPolicyConfig(head_gain=1.0, deployment_order=order))  # peaked logits
    generator = torch.Generator().manual_seed(5)
    for trial in range(6):
        servers = 1 + trial % 3  # the rows of a one-dimensional observation are the servers of one system
        obs = DeploymentObservation(torch.randn(servers, 12), torch.rand(servers, dtype=torch.float64) * 4e9 + 1e8,
                                    torch.rand(services, dtype=torch.float64) * 3e8)
        state = generator.get_state()
        drawn = policy.draw(obs, generator, greedy=trial % 2 == 1)
        reference = stepwise_reference(policy, obs, torch.Generator().set_state(state), greedy=trial % 2 == 1)
        assert torch.equal(drawn, reference.choices)
        lengths = (drawn >= 0).sum(-1)
        assert 0 < int(lengths.min()) and int(lengths.max()) < services  # the storage mask ended the sequences


def test_sequence_scores_follow_eq_29_30_whatever_the_batch_and_depend_on_the_order(scenario_and_table):
    system = make_system(scenario_and_table)
    policies = make_policies(system)
    obs = deployment_observation(system)
    sampled = policies.deployment.sample(obs, torch.Generator().manual_seed(2))
    assert sampled.log_prob.shape == sampled.value.shape == (system.num_envs, system.num_servers)
    assert bool((sampled.log_prob < 0).all())

    # eq. 29 and 30: the sequence value is the mean step value, the log-probability the sum of step terms
    lengths = sampled.lengths.to(sampled.value.dtype)
    torch.testing.assert_close(sampled.value, sampled.step_values.sum(-1) / lengths)
    torch.testing.assert_close(sampled.log_prob, sampled.step_log_probs.sum(-1))

    # a minibatch of flattened samples re-scores the same
    flat = type(obs)(obs.features.reshape(-1, obs.features.shape[-1]), obs.storage_bytes.reshape(-1),
                     obs.model_bytes)
    services = system.table.num_services
    others = others_picks(sampled.choices, services, "turn")
    replay_flat = policies.deployment.evaluate(flat, sampled.choices.reshape(-1, services),
                                               others.reshape(-1, services, services))
    torch.testing.assert_close(replay_flat.log_prob, sampled.log_prob.reshape(-1), rtol=0, atol=1e-5)

    changed = sampled.choices.clone()
    changed[..., [0, 1]] = changed[..., [1, 0]]  # same sets, other order: a different sequence
    assert not torch.equal(policies.deployment.evaluate(obs, changed, others_picks(changed, services, "turn")).log_prob,
                           sampled.log_prob)

    lengths = sampled.lengths.reshape(-1)
    row = int(lengths.argmin())  # a sequence the storage ended early; append a choice after a gap
    assert lengths[row] + 2 < system.table.num_services
    gapped = sampled.choices.reshape(len(lengths), -1).clone()
    gapped[row, lengths[row] + 1] = next(c for c in range(system.table.num_services) if c not in gapped[row])
    with pytest.raises(ValueError, match="stored sequence"):
        policies.deployment.evaluate(flat, gapped, others.reshape(-1, services, services))


def test_deployment_from_choices_marks_exactly_the_chosen_services():
    choices = torch.tensor([[[2, 0, -1, -1], [-1, -1, -1, -1], [3, -1, -1, -1]]])  # E = 1, J = 3, I = 4
    expected = np.zeros((1, 4, 3), dtype=bool)
    expected[0, [2, 0], 0] = True
    expected[0, 3, 2] = True
    deployment = deployment_from_choices(choices, 4)
    assert deployment.dtype == bool and np.array_equal(deployment, expected)


def test_user_actions_respect_the_server_and_point_masks(scenario_and_table):
    system = make_system(scenario_and_table)
    policies = make_policies(system)
    obs = user_observation(system)
    generator = torch.Generator().manual_seed(3)
    server_mask = torch.rand(obs.server_mask.shape, generator=generator) < 0.5
    server_mask[..., 0] |= ~server_mask.any(-1)  # at least one server per user
    obs = UserObservation(obs.local, obs.state, server_mask, obs.point_mask)
    assert not obs.server_mask.all() and not obs.point_mask.all()  # both masks forbid something
    seen = torch.zeros(obs.point_mask.shape, dtype=torch.bool)
    for _ in range(200):
        with torch.no_grad():
            actions, log_prob = policies.user.act(obs, generator)
            replayed, entropy = policies.user.evaluate(obs, actions)
        assert actions.shape == (system.num_envs, system.num_users, 2) and actions.dtype == torch.long
        assert bool(server_mask.gather(-1, actions[..., :1]).all())
        assert bool(obs.point_mask.gather(-1, actions[..., 1:]).all())
        assert torch.equal(replayed, log_prob) and bool((entropy > 0).all())
        seen.scatter_(-1, actions[..., 1:], True)
    assert seen.sum() > 0.5 * obs.point_mask.sum()  # exploration covers the allowed points, not a constant


def test_server_then_point_is_an_exact_joint_distribution():
    generator = torch.Generator().manual_seed(4)
    server_logits, point_logits = torch.randn(3, generator=generator), 2 * torch.randn(3, 4, generator=generator)
    server_mask, point_mask = torch.tensor([True, False, True]), torch.tensor([True, True, False, True])
    dist = ServerThenPoint(server_logits, point_logits, server_mask, point_mask)
    pairs = torch.tensor(list(itertools.product([0, 2], [0, 1, 3])))
    joint = torch.stack([dist.log_prob(pair) for pair in pairs]).exp()
    torch.testing.assert_close(joint.sum(), torch.tensor(1.0))
    torch.testing.assert_close(dist.entropy(), -(joint * joint.log()).sum())
    server_probs = torch.softmax(server_logits[[0, 2]], -1)
    for pair, probability in zip(pairs, joint, strict=True):
        server, point = pair.tolist()
        point_probs = torch.softmax(point_logits[server, [0, 1, 3]], -1)
        expected = server_probs[server // 2] * point_probs[[0, 1, 3].index(point)]
        torch.testing.assert_close(probability, expected)  # the point's distribution depends on the server
    with pytest.raises(ValueError, match="masked"):
        dist.log_prob(torch.tensor([1, 0]))


def _allocation_case(system, association):
    association = np.array(association)
    return allocation_observation(system, association, np.zeros_like(association))


def test_allocation_shares_sum_to_one_per_server_and_leave_other_servers_alone(scenario_and_table):
    system = make_system(scenario_and_table, num_envs=2)
    policies = make_policies(system)
    # environment 0: server 2 has nobody; environment 1: server 0 has nobody, server 1 one user
    obs = _allocation_case(system, [[0, 0, 1, 1, 1, 0], [2, 2, 2, 2, 2, 1]])
    with torch.no_grad():
        logits, log_prob = policies.allocation.act(obs, torch.Generator().manual_seed(5))
        _, entropy = policies.allocation.evaluate(obs, logits)
        value = policies.allocation.value(obs)
    association = obs.association.numpy()
    empty, alone = np.array([[False, False, True], [True, False, False]]), np.array([[False] * 3, [False, True, False]])
    for scaled in (logits, 300 * logits):  # also far from the linear regime of the softmax
        for shares in allocation_shares(scaled, obs.association, system.num_servers):
            assert shares.shape == (2, 6) and shares.dtype == torch.float64 and bool((shares >= 0).all())
            sums = model.per_server_sum(shares.numpy(), association, system.num_servers)
            np.testing.assert_allclose(sums[~empty], 1.0, rtol=0, atol=1e-12)
            assert (sums <= 1.0 + 1e-12).all() and (sums[empty] == 0).all()
            assert shares[1, 5].item() == 1.0  # alone at its server
    assert torch.equal(log_prob[torch.from_numpy(empty | alone)], torch.zeros(3))
    assert torch.equal(entropy[torch.from_numpy(empty | alone)], torch.zeros(3))
    assert bool((log_prob[torch.from_numpy(~(empty | alone))] != 0).all())
    assert bool(torch.isfinite(value).all()) and value.shape == (2, 3)

    # a user's logits move shares only at its own server
    nudged = logits.clone()
    nudged[0, 2] += 1.0  # user 2 of environment 0 is at server 1
    before = allocation_shares(logits, obs.association, system.num_servers)[0]
    after = allocation_shares(nudged, obs.association, system.num_servers)[0]
    at_server_1 = torch.from_numpy(association[0] == 1)
    assert torch.equal(after[0, ~at_server_1], before[0, ~at_server_1]) and torch.equal(after[1], before[1])
    assert after[0, 2] > before[0, 2]


def test_allocation_log_prob_is_the_gaussian_density_of_the_stored_logits(scenario_and_table):
    system = make_system(scenario_and_table, num_envs=2)
    policies = make_policies(system)
    obs = _allocation_case(system, [[0, 0, 1, 1, 1, 0], [2, 2, 2, 2, 2, 1]])
    with torch.no_grad():
        logits, log_prob = policies.allocation.act(obs, torch.Generator().manual_seed(6))
        replayed, entropy = policies.allocation.evaluate(obs, logits)
        mean = policies.allocation.mean_logits(obs)
    assert torch.equal(replayed, log_prob)
    normal = torch.distributions.Normal(mean, policies.allocation.log_std.exp().detach())
    users_of_server_1 = torch.tensor([2, 3, 4])
    expected = normal.log_prob(logits)[0, users_of_server_1].sum()
    torch.testing.assert_close(log_prob[0, 1], expected)
    torch.testing.assert_close(entropy[0, 1], normal.entropy()[0, users_of_server_1].sum())
    greedy, _ = policies.allocation.act(obs, greedy=True)
    assert torch.equal(greedy, mean)


def test_the_three_layers_run_a_whole_episode_through_the_edge_system(scenario_and_table):
    system = make_system(scenario_and_table, num_envs=3)
    policies = make_policies(system)
    generator = torch.Generator().manual_seed(7)
    deployments = 0
    for slot in range(5):
        greedy = slot == 4
        if system.deployment_due:
            sequence = deploy_with(policies, system, generator, greedy)
            assert np.array_equal(system.deployment,
                                  deployment_from_choices(sequence.choices, system.table.num_services))
            deployments += 1
        with torch.no_grad():
            user_obs = user_observation(system)
            actions, _ = policies.user.act(user_obs, generator, greedy)
            reward_value, cost_value = policies.user.values(user_obs)
            association, z = actions[..., 0].numpy(), actions[..., 1].numpy()
            alloc_obs = allocation_observation(system, association, z)
            logits, _ = policies.allocation.act(alloc_obs, generator, greedy)
        compute, bandwidth = allocation_shares(logits, alloc_obs.association, system.num_servers)
        outcome = system.step(association, z, compute.numpy(), bandwidth.numpy())  # raises on C3-C6
        assert outcome.delay_s.shape == (3, system.num_users) and np.isfinite(outcome.delay_s).all()
        assert np.isfinite(system.user_rewards(outcome)).all()
        assert reward_value.shape == cost_value.shape == (3, system.num_users)
    assert deployments == 3


def test_the_same_seed_gives_the_same_actions(scenario_and_table):
    def actions(init_seed, sample_seed):
        system = make_system(scenario_and_table, num_envs=2)
        policies = make_policies(system, seed=init_seed)
        generator = torch.Generator().manual_seed(sample_seed)
        sequence = deploy_with(policies, system, generator)
        with torch.no_grad():
            user, _ = policies.user.act(user_observation(system), generator)
            alloc_obs = allocation_observation(system, user[..., 0].numpy(), user[..., 1].numpy())
            logits, _ = policies.allocation.act(alloc_obs, generator)
        return sequence.choices, user, logits

    first, again = actions(0, 0), actions(0, 0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other_sampling, other_init = actions(0, 1), actions(1, 0)
    for other in (other_sampling, other_init):
        assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def _assert_every_parameter_gets_a_gradient(module):
    missing = [name for name, parameter in module.named_parameters()
               if parameter.grad is None or not bool(parameter.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches {missing}"


def test_gradients_reach_every_parameter_of_each_layer(scenario_and_table):
    system = make_system(scenario_and_table)
    policies = make_policies(system)
    generator = torch.Generator().manual_seed(8)

    deploy_obs = deployment_observation(system)
    with torch.no_grad():
        stored = policies.deployment.sample(deploy_obs, generator).choices
    result = policies.deployment.evaluate(deploy_obs, stored, others_picks(stored, system.table.num_services, "turn"))
    (result.log_prob.sum() + result.entropy.sum() + result.value.pow(2).sum()).backward()
    _assert_every_parameter_gets_a_gradient(policies.deployment)

    user_obs = user_observation(system)
    with torch.no_grad():
        actions, _ = policies.user.act(user_obs, generator)
    log_prob, entropy = policies.user.evaluate(user_obs, actions)
    reward_value, cost_value = policies.user.values(user_obs)
    (log_prob.sum() + entropy.sum() + reward_value.pow(2).sum() + cost_value.pow(2).sum()).backward()
    _assert_every_parameter_gets_a_gradient(policies.user)

    alloc_obs = _allocation_case(system, [[0, 0, 1, 1, 2, 2]] * system.num_envs)
    with torch.no_grad():
        logits, _ = policies.allocation.act(alloc_obs, generator)
    log_prob, entropy = policies.allocation.evaluate(alloc_obs, logits)
    (log_prob.sum() + entropy.sum() + policies.allocation.value(alloc_obs).pow(2).sum()).backward()
    _assert_every_parameter_gets_a_gradient(policies.allocation)


@pytest.mark.parametrize("independent", [False, True])
def test_independent_critics_read_only_the_local_observation(scenario_and_table, independent):
    system = make_system(scenario_and_table)
    config = HCPolicyConfig(user_hidden=32, independent_critics=independent)
    torch.manual_seed(0)
    obs = user_observation(system)
    policy = UserPolicy(obs.local.shape[-1], obs.state.shape[-1], system.num_servers, obs.point_mask.shape[-1],
                        config)
    scrambled = UserObservation(obs.local, obs.state + 1.0, obs.server_mask, obs.point_mask)
    per_agent = UserObservation(obs.local, obs.state.unsqueeze(1).expand(-1, system.num_users, -1),
                                obs.server_mask, obs.point_mask)
    with torch.no_grad():
        values, moved, repeated = policy.values(obs), policy.values(scrambled), policy.values(per_agent)
    assert all(torch.equal(a, b) for a, b in zip(values, repeated, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(values, moved, strict=True)) == independent
    assert not torch.equal(values[0], values[1])  # two separate critics
    if not independent:
        with pytest.raises(ValueError, match="state"):
            policy.values(UserObservation(obs.local, obs.state[:1], obs.server_mask, obs.point_mask))


def test_centralised_critics_split_first_layer_equals_the_concatenated_input(scenario_and_table):
    system = make_system(scenario_and_table)
    torch.manual_seed(0)
    obs = user_observation(system)
    policy = UserPolicy(obs.local.shape[-1], obs.state.shape[-1], system.num_servers, obs.point_mask.shape[-1],
                        HCPolicyConfig(user_hidden=32))
    (critic,) = policy.critics  # one trunk, a reward head and a cost head
    with torch.no_grad():
        whole = torch.nn.Sequential(*critic)(torch.cat([obs.local, obs.state.unsqueeze(1).expand(
            -1, system.num_users, -1)], dim=-1))  # the same weights applied to [o; s]
        values = torch.stack(policy.values(obs), dim=-1)
        index = torch.arange(system.num_envs).unsqueeze(-1).expand(-1, system.num_users)
        flat = UserObservation(obs.local.reshape(-1, obs.local.shape[-1]), obs.state, obs.server_mask.flatten(0, 1),
                               obs.point_mask.flatten(0, 1), index.reshape(-1))  # a minibatch reading a table
        from_table = torch.stack(policy.values(flat), dim=-1)
    torch.testing.assert_close(values, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(from_table, whole.reshape(-1, 2), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_critics_share_a_trunk_or_not_and_methods_without_a_multiplier_have_no_cost_critic(scenario_and_table,
                                                                                           shared):
    system = make_system(scenario_and_table)
    obs = user_observation(system)
    sizes = (obs.local.shape[-1], obs.state.shape[-1], system.num_servers, obs.point_mask.shape[-1])

    def critic_parameters(policy):
        return sum(parameter.numel() for parameter in policy.critics.parameters())

    both = UserPolicy(*sizes, HCPolicyConfig(user_hidden=32, shared_critic=shared))
    reward_only = UserPolicy(*sizes, HCPolicyConfig(user_hidden=32, shared_critic=shared, cost_critic=False))
    assert len(both.critics) == (1 if shared else 2) and len(reward_only.critics) == 1
    value, cost_value = reward_only.values(obs)
    assert cost_value is None and value.shape == (system.num_envs, system.num_users)
    one_trunk = critic_parameters(reward_only)
    # a second head adds 33 weights to a shared trunk; separate critics double the network
    assert critic_parameters(both) == (one_trunk + 33 if shared else 2 * one_trunk)


def _local_everywhere(system):
    """Everyone at server 0, all on the device (z = L): always feasible."""
    association = np.zeros((system.num_envs, system.num_users), dtype=np.int64)
    z = system.table.num_points[system.slot.requests]
    shares = core.equal_shares(association, system.num_servers)
    return association, z, shares, shares

