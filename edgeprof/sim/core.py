"""The batched core of seed 001's edge system: E independent environments stepped at once, numpy only.

Every optimizer and RL solver evaluates actions through `evaluate`; the formulas live in `edgeprof.sim.model`
(cost terms) and `edgeprof.sim.radio` (channel), the workload in `edgeprof.sim.workload`. How to use:

    scenario = load_scenario("paper")
    table = load_service_table(scenario)                      # (I, Lmax + 1) per-sample workload
    rng = np.random.default_rng(seed)
    entities = sample_entities(scenario, num_envs, rng)       # once per episode: nodes, capacities, popularity
    cache = empty_cache(num_envs, scenario["system.num_users"], table.num_models)
    for t in range(slots):
        if t % scenario["system.slots_per_deployment"] == 0:
            # choose deployment (E, I, J) bool; check storage_feasible; charge migration_cost(...) vs the old one
        slot = sample_slot(scenario, entities, rng)           # requests, batches D_in, channel gains
        # choose association (E, K) server index, z (E, K), compute/bandwidth shares (E, K) of that server
        outcome = evaluate(table, scenario, entities, slot, deployment, association, z,
                           compute_share, bandwidth_share, cache.depth)
        cache = update_cache(table, entities, cache, slot.requests, z, outcome.success, t)
        interval_hits += hits(deployment, slot.requests, association)

Shares are fractions of the associated server's capacity: f_jk = compute_share x f_j and B_jk =
bandwidth_share x B_j, so C5 and C6 read "the shares of each server's users sum to at most 1"; `evaluate`
refuses (ValueError) any action that breaks C3-C6, so everything it scores is feasible. `equal_shares` gives
the baselines' equal split.

Modelling choices (see also `edgeprof.sim.model`):

- Popularity: each environment draws a random order of the I services with its entities; the service of rank r
  is requested with probability proportional to r^-s (Zipf, `services.zipf_exponent`), fixed for the episode.
- Powers are drawn uniformly in dBm (Table I gives dBm ranges), then converted to watts.
- Shadowing: `radio.shadowing = per_slot` draws new shadowing every slot (quasi-static within it);
  `per_episode` uses the draw made with the entities. Path loss is fixed per episode (nodes do not move).
- The prefix cache is per BASE MODEL, not per service: the services of one model share its weights, so a
  user who holds vgg16's first 8 layers holds them for all five vgg16 services. `cache.depth[e, k, m]` is the
  deepest z whose prefix user k holds for model m (0: nothing). Eviction is LRU by whole model prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from edgeprof.sim import model, radio
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.workload import ServiceTable, num_services

SHARE_TOLERANCE = 1e-9


def _take_envs(obj, index: np.ndarray | slice | int):
    """A copy of a dataclass of per-environment arrays keeping only the environments at `index` (axis 0)."""
    if isinstance(index, int):
        index = slice(index, index + 1)
    return replace(obj, **{f.name: getattr(obj, f.name)[index] for f in fields(obj)})


@dataclass(frozen=True)
class Entities:
    """What stays fixed for an episode, per environment (SI units). Shapes: (E, J) per server, (E, K) per user."""

    server_xy_m: np.ndarray  # (E, J, 2)
    user_xy_m: np.ndarray  # (E, K, 2)
    server_flops_per_s: np.ndarray  # f_j
    server_bandwidth_hz: np.ndarray  # B_j
    server_tx_power_w: np.ndarray  # P_j
    server_storage_bytes: np.ndarray  # S_j
    cloud_rate_bps: np.ndarray  # R_C2E, per server
    user_flops_per_s: np.ndarray  # f_k
    user_tx_power_w: np.ndarray  # P_k
    user_joules_per_flop: np.ndarray  # epsilon_k
    user_privacy_preference: np.ndarray  # Pre_k
    user_storage_bytes: np.ndarray  # prefix cache capacity
    service_popularity: np.ndarray  # (E, I) request probability of each service
    path_loss_db: np.ndarray  # (E, J, K)
    episode_shadowing_db: np.ndarray  # (E, J, K), used when radio.shadowing = per_episode

    @property
    def num_envs(self) -> int:
        return self.server_flops_per_s.shape[0]

    @property
    def num_servers(self) -> int:
        return self.server_flops_per_s.shape[1]

    @property
    def num_users(self) -> int:
        return self.user_flops_per_s.shape[1]

    def take(self, index: np.ndarray | slice | int) -> Entities:
        """The entities of some environments only (an int keeps the axis: E = 1)."""
        return _take_envs(self, index)


@dataclass(frozen=True)
class SlotDraw:
    """One slot's random draws: `requests` (E, K) service index, `batch` (E, K) D_in samples, `gains` (E, J, K)."""

    requests: np.ndarray
    batch: np.ndarray
    gains: np.ndarray

    def take(self, index: np.ndarray | slice | int) -> SlotDraw:
        return _take_envs(self, index)


@dataclass(frozen=True)
class Outcome:
    """What one slot's actions cost. Per user (E, K): the totals `delay_s` (eq. 5), `energy_j` (eq. 8),
    `privacy_cost` (eq. 10), `success`, and their parts, 0 for a failed request. Per environment (E,): `cost`
    (eq. 12) and the means over users (a failed request counts with its failure delay and zero cost)."""

    delay_s: np.ndarray
    energy_j: np.ndarray
    privacy_cost: np.ndarray
    success: np.ndarray
    download_s: np.ndarray
    local_s: np.ndarray
    upload_s: np.ndarray
    edge_s: np.ndarray
    compute_energy_j: np.ndarray
    transmit_energy_j: np.ndarray
    download_bytes: np.ndarray
    uplink_bps: np.ndarray
    downlink_bps: np.ndarray
    cost: np.ndarray
    delay_mean_s: np.ndarray
    energy_mean_j: np.ndarray
    privacy_mean: np.ndarray
    success_rate: np.ndarray


@dataclass(frozen=True)
class PrefixCache:
    """Per user and base model (E, K, M): `depth`, the deepest z whose prefix is held (0: none), and
    `last_used`, the slot it was last used in (-1: never)."""

    depth: np.ndarray
    last_used: np.ndarray


def _uniform(rng: np.random.Generator, scenario: Scenario, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Draws from a scenario range in SI units; dBm ranges are drawn in dBm, then converted to watts."""
    if key.endswith("_dbm"):
        low, high = scenario[key]
        return radio.dbm_to_watts(rng.uniform(low, high, size=shape))
    low, high = scenario.si_range(key)
    return rng.uniform(low, high, size=shape)


def _zipf_popularity(rng: np.random.Generator, num_envs: int, num_services: int, exponent: float) -> np.ndarray:
    """(E, I) probabilities: a random rank order of the services per environment, P(rank r) ~ r^-exponent."""
    order = np.argsort(rng.random((num_envs, num_services)), axis=1)
    by_rank = np.arange(1, num_services + 1, dtype=np.float64) ** -exponent
    by_rank /= by_rank.sum()
    popularity = np.empty((num_envs, num_services))
    np.put_along_axis(popularity, order, np.broadcast_to(by_rank, (num_envs, num_services)), axis=1)
    return popularity


def sample_entities(scenario: Scenario, num_envs: int, rng: np.random.Generator) -> Entities:
    """E independent episodes' servers, users and service popularity, drawn in a fixed order from `rng`."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    servers, users = scenario["system.num_servers"], scenario["system.num_users"]
    area = scenario["system.area_m"]
    if scenario["system.server_placement"] == "grid":
        server_xy = np.broadcast_to(radio.grid_positions(servers, area), (num_envs, servers, 2)).copy()
    else:
        server_xy = radio.uniform_positions(rng, (num_envs, servers), area)
    user_xy = radio.uniform_positions(rng, (num_envs, users), area)
    per_server, per_user = (num_envs, servers), (num_envs, users)
    server_flops = _uniform(rng, scenario, "servers.compute_gflops", per_server)
    server_storage = _uniform(rng, scenario, "servers.storage_gb", per_server)
    server_bandwidth = _uniform(rng, scenario, "servers.bandwidth_mhz", per_server)
    server_power = _uniform(rng, scenario, "servers.tx_power_dbm", per_server)
    cloud_rate = _uniform(rng, scenario, "servers.cloud_rate_mbps", per_server)
    user_flops = _uniform(rng, scenario, "users.compute_gflops", per_user)
    user_storage = _uniform(rng, scenario, "users.storage_gb", per_user)
    user_energy = _uniform(rng, scenario, "users.energy_per_flop_j", per_user)
    user_power = _uniform(rng, scenario, "users.tx_power_dbm", per_user)
    user_preference = _uniform(rng, scenario, "users.privacy_preference", per_user)
    popularity = _zipf_popularity(rng, num_envs, num_services(scenario), scenario["services.zipf_exponent"])
    distance = radio.distances_m(server_xy, user_xy, scenario["radio.min_distance_m"])
    path_loss = radio.path_loss_db(distance, scenario["radio.reference_path_loss_db"],
                                   scenario["radio.path_loss_exponent"])
    shadowing = radio.shadowing_db(rng, distance.shape, scenario["radio.shadowing_db"])
    return Entities(
        server_xy_m=server_xy,
        user_xy_m=user_xy,
        server_flops_per_s=server_flops,
        server_bandwidth_hz=server_bandwidth,
        server_tx_power_w=server_power,
        server_storage_bytes=server_storage,
        cloud_rate_bps=cloud_rate,
        user_flops_per_s=user_flops,
        user_tx_power_w=user_power,
        user_joules_per_flop=user_energy,
        user_privacy_preference=user_preference,
        user_storage_bytes=user_storage,
        service_popularity=popularity,
        path_loss_db=path_loss,
        episode_shadowing_db=shadowing,
    )


def sample_requests(rng: np.random.Generator, popularity: np.ndarray, num_users: int) -> np.ndarray:
    """(E, K) service indices, each user drawing from its environment's popularity (E, I) by inverse CDF."""
    num_envs, num_services = popularity.shape
    cdf = np.cumsum(popularity, axis=1)
    cdf[:, -1] = 1.0
    offsets = np.arange(num_envs)[:, None]
    position = np.searchsorted((cdf + offsets).ravel(), (rng.random((num_envs, num_users)) + offsets).ravel(),
                               side="right")
    return np.minimum(position.reshape(num_envs, num_users) - offsets * num_services, num_services - 1)


def sample_slot(
    scenario: Scenario, entities: Entities, rng: np.random.Generator, shadowing: str | None = None
) -> SlotDraw:
    """One slot's requests (Zipf), batch sizes D_in (uniform integers in `services.batch_range`) and gains.

    `shadowing` overrides the scenario's `radio.shadowing` (per_slot: a fresh draw; per_episode: the entities').
    """
    mode = shadowing or scenario["radio.shadowing"]
    if mode not in ("per_slot", "per_episode"):
        raise ValueError(f"shadowing must be per_slot or per_episode, got {mode!r}")
    requests = sample_requests(rng, entities.service_popularity, entities.num_users)
    low, high = scenario["services.batch_range"]
    batch = rng.integers(low, high + 1, size=requests.shape)
    if mode == "per_slot":
        shadow = radio.shadowing_db(rng, entities.path_loss_db.shape, scenario["radio.shadowing_db"])
    else:
        shadow = entities.episode_shadowing_db
    return SlotDraw(requests=requests, batch=batch, gains=radio.channel_gain(entities.path_loss_db, shadow))


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")


def _check_integer(name: str, array: np.ndarray) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")


def _check_shares(name: str, share: np.ndarray, association: np.ndarray, num_servers: int, constraint: str) -> None:
    bad = ~np.isfinite(share) | (share < 0)
    if bad.any():
        where = _first_bad(bad)
        raise ValueError(f"{name}{list(where)} = {share[where]} must be a finite share >= 0")
    sums = model.per_server_sum(share, association, num_servers)
    over = sums > 1.0 + SHARE_TOLERANCE
    if over.any():
        env, server = _first_bad(over)
        raise ValueError(f"{constraint} violated: the {name} of server {server}'s users in environment {env} sum to "
                         f"{sums[env, server]:.12g} > 1")


def check_actions(
    table: ServiceTable,
    entities: Entities,
    slot: SlotDraw,
    deployment: np.ndarray,
    association: np.ndarray,
    z: np.ndarray,
    compute_share: np.ndarray,
    bandwidth_share: np.ndarray,
) -> None:
    """Raise ValueError unless the actions have the right shapes and satisfy C1, C3-C6."""
    num_envs, num_users, num_servers = entities.num_envs, entities.num_users, entities.num_servers
    per_user = (num_envs, num_users)
    _check_shape("slot.requests", slot.requests, per_user)
    _check_shape("deployment", deployment, (num_envs, table.num_services, num_servers))
    if deployment.dtype != bool:
        raise ValueError(f"deployment must be a bool array (C1), got dtype {deployment.dtype}")
    for name, array in (("association", association), ("z", z), ("compute_share", compute_share),
                        ("bandwidth_share", bandwidth_share)):
        _check_shape(name, array, per_user)
    _check_integer("association", association)
    _check_integer("z", z)
    outside = ~model.one_server_each(association, num_servers)
    if outside.any():
        where = _first_bad(outside)
        raise ValueError(f"C4 violated: association{list(where)} = {association[where]} is not a server in "
                         f"0..{num_servers - 1}")
    deepest = table.num_points[slot.requests]
    bad_z = (z < 0) | (z > deepest)
    if bad_z.any():
        where = _first_bad(bad_z)
        service = slot.requests[where]
        raise ValueError(f"C3 violated: z{list(where)} = {z[where]} is outside 0..{deepest[where]} for service "
                         f"{service} ({table.model_names[service]})")
    _check_shares("compute_share", compute_share, association, num_servers, "C5")
    _check_shares("bandwidth_share", bandwidth_share, association, num_servers, "C6")


def cached_prefix_bytes(table: ServiceTable, requests: np.ndarray, cache_depth: np.ndarray) -> np.ndarray:
    """(E, K) bytes of the requested model's prefix that each user already holds."""
    base = table.base_model[requests]
    if cache_depth.shape != (*requests.shape, table.num_models):
        raise ValueError(f"cache_depth must have shape {(*requests.shape, table.num_models)} (per base model), "
                         f"got {cache_depth.shape}")
    depth = np.take_along_axis(cache_depth, base[..., None], axis=-1)[..., 0]
    if (depth < 0).any() or (depth > table.num_points[requests]).any():
        raise ValueError("cache_depth holds a depth outside 0..L of its model")
    return table.model_prefix_param_bytes[base, depth]


def evaluate(
    table: ServiceTable,
    scenario: Scenario,
    entities: Entities,
    slot: SlotDraw,
    deployment: np.ndarray,
    association: np.ndarray,
    z: np.ndarray,
    compute_share: np.ndarray,
    bandwidth_share: np.ndarray,
    cache_depth: np.ndarray | None = None,
) -> Outcome:
    """Score one slot of E environments: each user's delay, energy and privacy cost, and each environment's cost.

    deployment (E, I, J) bool; association (E, K) server index; z (E, K) partition point of the requested
    service; shares (E, K) fractions of the associated server's f_j and B_j; cache_depth (E, K, M) per base model
    (ignored unless `users.prefix_cache`; None: nothing cached). Invalid actions raise ValueError.
    """
    association = np.asarray(association)
    z = np.asarray(z)
    compute_share = np.asarray(compute_share, dtype=np.float64)
    bandwidth_share = np.asarray(bandwidth_share, dtype=np.float64)
    check_actions(table, entities, slot, deployment, association, z, compute_share, bandwidth_share)
    requests, batch = slot.requests, slot.batch
    envs = np.arange(entities.num_envs)[:, None]
    users = np.arange(entities.num_users)[None, :]

    point = requests * (table.max_points + 1) + z
    device_flops = np.take(table.device_flops, point)
    edge_flops = np.take(table.edge_flops, point)
    upload_bytes = np.take(table.upload_bytes, point)
    prefix_bytes = np.take(table.prefix_param_bytes, point)
    leakage = np.take(table.leakage, point)

    gain = slot.gains[envs, association, users]
    bandwidth = bandwidth_share * entities.server_bandwidth_hz[envs, association]
    noise = (scenario["radio.noise_dbm_per_hz"], scenario["radio.noise_figure_db"])
    uplink = radio.shannon_rate_bps(bandwidth, entities.user_tx_power_w, gain, *noise)
    downlink = radio.shannon_rate_bps(bandwidth, entities.server_tx_power_w[envs, association], gain, *noise)
    edge_flops_per_s = compute_share * entities.server_flops_per_s[envs, association]

    cached = 0.0
    if cache_depth is not None and scenario["users.prefix_cache"]:
        cached = cached_prefix_bytes(table, requests, np.asarray(cache_depth))
    download_bytes = model.prefix_download_bytes(prefix_bytes, cached)
    download_s = model.download_delay_s(download_bytes, downlink)
    local_s = model.local_delay_s(batch, device_flops, entities.user_flops_per_s)
    upload_s = model.upload_delay_s(batch, upload_bytes, uplink)
    edge_s = model.edge_delay_s(batch, edge_flops, edge_flops_per_s)
    success_delay = model.success_delay_s(download_s, local_s, upload_s, edge_s)
    deployed = model.served_by_deployment(deployment, requests, association)
    success = model.request_succeeds(deployed, success_delay, scenario["system.request_deadline_s"])
    delay = model.total_delay_s(success_delay, success, scenario["system.failure_delay_s"])

    def ran(part: np.ndarray) -> np.ndarray:
        return np.where(success, part, 0.0)

    download_s, local_s, upload_s, edge_s = ran(download_s), ran(local_s), ran(upload_s), ran(edge_s)
    compute_j = ran(model.compute_energy_j(entities.user_joules_per_flop, batch, device_flops))
    transmit_j = model.transmit_energy_j(entities.user_tx_power_w, upload_s)
    energy = model.total_energy_j(compute_j, transmit_j, success)
    privacy = model.privacy_cost(scenario["privacy.alpha1"], scenario["privacy.alpha2"],
                                 entities.user_privacy_preference, leakage, batch, table.input_bytes[requests],
                                 scenario["privacy.data_unit_bytes"], success)
    privacy_mean = privacy.mean(axis=1)
    energy_mean = energy.mean(axis=1)
    return Outcome(
        delay_s=delay,
        energy_j=energy,
        privacy_cost=privacy,
        success=success,
        download_s=download_s,
        local_s=local_s,
        upload_s=upload_s,
        edge_s=edge_s,
        compute_energy_j=compute_j,
        transmit_energy_j=transmit_j,
        download_bytes=ran(download_bytes),
        uplink_bps=uplink,
        downlink_bps=downlink,
        cost=model.slot_cost(privacy_mean, energy_mean, scenario["cost.mu_privacy"], scenario["cost.mu_energy"]),
        delay_mean_s=delay.mean(axis=1),
        energy_mean_j=energy_mean,
        privacy_mean=privacy_mean,
        success_rate=success.mean(axis=1),
    )


def slot_objective_of(outcome: Outcome, scenario: Scenario, delay_weight: float = 0.0) -> np.ndarray:
    """`model.slot_objective` (E,) of a scored slot, with the scenario's weights and failure penalty."""
    return model.slot_objective(outcome.privacy_cost, outcome.energy_j, outcome.delay_s, outcome.success,
                                scenario["cost.mu_privacy"], scenario["cost.mu_energy"],
                                -scenario["cost.failure_reward"], delay_weight)


def equal_shares(association: np.ndarray, num_servers: int) -> np.ndarray:
    """(E, K) shares 1 / (users at the same server): the baselines' equal split of every server."""
    counts = model.per_server_sum(np.ones(association.shape), association, num_servers)
    return 1.0 / np.take_along_axis(counts, association, axis=1)


def empty_cache(num_envs: int, num_users: int, num_models: int) -> PrefixCache:
    """A prefix cache holding nothing."""
    shape = (num_envs, num_users, num_models)
    return PrefixCache(depth=np.zeros(shape, dtype=np.int64), last_used=np.full(shape, -1, dtype=np.int64))


def cached_bytes(table: ServiceTable, cache: PrefixCache) -> np.ndarray:
    """(E, K, M) bytes each user holds for each base model."""
    return table.model_prefix_param_bytes[np.arange(table.num_models), cache.depth]


def update_cache(
    table: ServiceTable,
    entities: Entities,
    cache: PrefixCache,
    requests: np.ndarray,
    z: np.ndarray,
    success: np.ndarray,
    slot_index: int,
) -> PrefixCache:
    """The cache after a slot: each successful request with z > 0 leaves its model's prefix up to z held (a
    deeper held prefix stays) and marks the model used at `slot_index`; then, per user, whole model prefixes are
    evicted least recently used first until what is held fits the user's storage."""
    num_envs, num_users = requests.shape
    envs, users = np.arange(num_envs)[:, None], np.arange(num_users)[None, :]
    base = table.base_model[requests]
    used = np.asarray(success, dtype=bool) & (z > 0)
    depth = cache.depth.copy()
    last_used = cache.last_used.copy()
    current = depth[envs, users, base]
    depth[envs, users, base] = np.where(used, np.maximum(current, z), current)
    last_used[envs, users, base] = np.where(used, slot_index, last_used[envs, users, base])

    held = table.model_prefix_param_bytes[np.arange(table.num_models), depth]
    recent_first = np.argsort(-last_used, axis=-1, kind="stable")
    running = np.cumsum(np.take_along_axis(held, recent_first, axis=-1), axis=-1)
    keep = np.empty_like(depth, dtype=bool)
    np.put_along_axis(keep, recent_first, running <= entities.user_storage_bytes[..., None], axis=-1)
    return PrefixCache(depth=np.where(keep, depth, 0), last_used=np.where(keep, last_used, -1))


def storage_feasible(table: ServiceTable, entities: Entities, deployment: np.ndarray) -> np.ndarray:
    """C7: (E, J) whether each server's deployed services fit its storage."""
    return model.storage_ok(deployment, table.model_bytes, entities.server_storage_bytes)


def hits(deployment: np.ndarray, requests: np.ndarray, association: np.ndarray) -> np.ndarray:
    """Eq. 22: (E, J) requests served from each server's deployment, over one slot (E, K) or several (E, T, K)."""
    num_envs = deployment.shape[0]
    requests = requests.reshape(num_envs, -1)
    association = association.reshape(num_envs, -1)
    return model.hit_count(deployment, requests, association, deployment.shape[2])


def migration_cost(
    table: ServiceTable, entities: Entities, new_deployment: np.ndarray, old_deployment: np.ndarray
) -> np.ndarray:
    """Eq. 23: (E, J) seconds each server spends fetching its newly deployed services from the cloud."""
    return model.migration_cost_s(new_deployment, old_deployment, table.model_bytes, entities.cloud_rate_bps)
