"""An offline closed loop (no Kafka): users request feeds, a policy ranks candidates, clients react.

Each step serves the user whose next request is due first (a heap on `UserState.next_request_ms`), so
active users ask more often, as they do over Kafka. Candidates stand in for the real candidate pipeline:
live posts of the last `candidate_window_ms` that are not the user's own, not by blocked or muted authors
and not already seen or served in the session; up to half are the newest in-network posts, the rest a
random out-of-network sample. The policy returns post ids in rank order; the first `feed_size` are served.
Impressions are the posts the client examined (so the engagement log has no unseen negatives).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush

import numpy as np

from foryou.world.client import ClientBehaviour, UserState
from foryou.world.config import DAY_MS
from foryou.world.metrics import OnlineMetrics, describe_feed
from foryou.world.offline import Impression
from foryou.world.wire import WireValue
from foryou.world.world import World

Policy = Callable[[int, np.ndarray, int], Sequence[int]]  # (user_id, candidate post ids, now_ms) -> ranking

# Most recent-window posts examined per request, as a multiple of the candidates wanted (bounds the work).
_POOL_FACTOR = 20


@dataclass
class SimulationResult:
    impressions: list[Impression] = field(default_factory=list)
    engagements: list[WireValue] = field(default_factory=list)
    social_graph_events: list[WireValue] = field(default_factory=list)
    feed_requests: list[WireValue] = field(default_factory=list)
    states: dict[int, UserState] = field(default_factory=dict)
    metrics: OnlineMetrics = field(default_factory=OnlineMetrics)


def recent_candidates(
    client: ClientBehaviour, rng: np.random.Generator, state: UserState, now_ms: int, count: int,
    window_ms: int = DAY_MS,
) -> np.ndarray:
    """Candidate post ids for a request (see the module docstring)."""
    world, posts = client.world, client.world.posts
    low, high = np.searchsorted(posts.created_ms, [now_ms - window_ms, now_ms], side="right")
    pool = np.arange(low, high)
    if pool.size > _POOL_FACTOR * count:
        pool = np.sort(rng.choice(pool, _POOL_FACTOR * count, replace=False))
    authors = posts.author[pool] + 1
    ids = world.post_ids()[pool]
    relation = client.relation(state, authors, now_ms)
    excluded = np.isin(ids, np.fromiter((*state.seen_ids, *state.served_ids), dtype=np.int64))
    keep = (posts.deleted_ms[pool] > now_ms) & (authors != state.user_id) & ~relation.blocked & ~excluded
    in_network = np.flatnonzero(keep & relation.following)[::-1][: count // 2]
    others = np.flatnonzero(keep & ~relation.following)
    wanted = min(others.size, count - in_network.size)
    sample = rng.choice(others, wanted, replace=False) if wanted else others[:0]
    return ids[np.concatenate([in_network, sample])]


def simulate_offline(
    world: World,
    policy_fn: Policy,
    steps: int,
    *,
    seed: int = 0,
    policy_name: str = "policy",
    feed_size: int = 20,
    candidates: int = 200,
    candidate_window_ms: int = DAY_MS,
    start_ms: int | None = None,
    user_ids: Sequence[int] | None = None,
    client: ClientBehaviour | None = None,
    metrics: OnlineMetrics | None = None,
) -> SimulationResult:
    """Serve `steps` feeds (fewer if every user's next request falls past the world's end)."""
    rng = np.random.default_rng(seed)
    client = client or ClientBehaviour(world)
    start = world.config.start_ms + world.config.duration_ms // 4 if start_ms is None else start_ms
    users = [int(u) for u in (world.user_ids() if user_ids is None else user_ids)]
    result = SimulationResult(metrics=metrics or OnlineMetrics(origin_ms=start))
    heap: list[tuple[int, int]] = []
    for user_id in users:
        state = client.initial_state(rng, user_id, start)
        result.states[user_id] = state
        heappush(heap, (state.next_request_ms, user_id))

    for step in range(steps):
        if not heap or heap[0][0] > world.config.end_ms:
            break
        now, user_id = heappop(heap)
        state = result.states[user_id]
        request_id = f"{policy_name}-{step}"
        result.feed_requests.append(client.feed_request(state, request_id, feed_size))
        pool = recent_candidates(client, rng, state, now, candidates, candidate_window_ms)
        feed = [int(p) for p in policy_fn(user_id, pool, now)][:feed_size]
        result.metrics.record_served(policy_name, user_id, now, describe_feed(world, user_id, feed, now,
                                                                              state.followed))
        reaction = client.react(rng, state, feed, now)
        result.impressions.extend(
            Impression(user_id, v.post_id, v.author_id, v.ts_ms, request_id) for v in reaction.viewed
        )
        for event in reaction.engagement_events:
            result.metrics.record_engagement_event(event)
        result.engagements.extend(reaction.engagement_events)
        result.social_graph_events.extend(reaction.social_graph_events)
        result.states[user_id] = reaction.state
        heappush(heap, (reaction.state.next_request_ms, user_id))
    return result


def random_policy(seed: int = 0) -> Policy:
    """Ranks candidates in a random order (a baseline)."""
    rng = np.random.default_rng(seed)

    def rank(user_id: int, candidates: np.ndarray, now_ms: int) -> Sequence[int]:
        return rng.permutation(candidates).tolist()

    return rank


def oracle_policy(client: ClientBehaviour) -> Policy:
    """Ranks candidates by their ground-truth expected value under DEFAULT_WEIGHTS (an upper baseline)."""

    def rank(user_id: int, candidates: np.ndarray, now_ms: int) -> Sequence[int]:
        if candidates.size == 0:
            return []
        users = np.full(candidates.size, user_id, dtype=np.int64)
        values = client.truth.expected_value(users, candidates, now_ms)
        return candidates[np.argsort(-values, kind="stable")].tolist()

    return rank


def reverse_chronological_policy() -> Policy:
    """Newest first (post ids ascend with creation time in the world)."""

    def rank(user_id: int, candidates: np.ndarray, now_ms: int) -> Sequence[int]:
        return np.sort(candidates)[::-1].tolist()

    return rank
