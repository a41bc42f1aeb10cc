"""Concurrent executions of the For You pipeline share Phoenix forwards (the ranker's micro-batcher), and
their feeds are the ones each would get alone."""

import asyncio
import dataclasses

import numpy as np

from phoenix.ranker import Ranker
from stores.records import ActionEntry, UserFeatures
from streams.config import load_config
from streams.for_you import for_you_pipeline
from streams.query import FeedQuery
from tests.phoenix.test_batcher import hold_first_batch
from tests.phoenix.test_model import TINY
from tests.streams.foryou_fakes import (
    HOUR_MS,
    NOW_MS,
    FakeEngagementCounts,
    FakePostStore,
    FakeSink,
    FakeUserState,
    post,
)

CONFIG = load_config(env={"FORYOU_PRESET": "seed-2026-01"})
USERS = (1, 2, 3, 4)
AUTHORS = range(100, 120)


def _world() -> tuple[FakePostStore, FakeUserState]:
    rng = np.random.default_rng(3)
    posts = [post(1_000 + i, author, age_ms=int(rng.integers(1, 20)) * HOUR_MS // 2) for i, author in
             enumerate(a for a in AUTHORS for _ in range(3))]
    features = {user: UserFeatures(following=frozenset(AUTHORS[user : user + 12])) for user in USERS}
    histories = {  # different lengths: different history buckets
        user: [ActionEntry(int(rng.integers(1, 10**6)), int(rng.integers(1, 500)), 1 << user, "home_for_you", i)
               for i in range(3 * user * user)]
        for user in USERS
    }
    return FakePostStore(posts), FakeUserState(features=features, sequences=histories)


def _query(user: int) -> FeedQuery:
    return FeedQuery(user_id=user, request_id=f"r-{user}", max_results=20, now_ms=NOW_MS, explain=True)


def test_concurrent_requests_share_forwards_and_get_their_own_feeds() -> None:
    model = dataclasses.replace(TINY, age_buckets=8)
    ranker = Ranker.untrained(model, seed=2, candidate_buckets=(8, 32), history_buckets=(4, 16))
    ranker.warmup()
    post_store, user_state = _world()
    pipeline = for_you_pipeline(
        config=CONFIG, post_store=post_store, user_state=user_state, counts=FakeEngagementCounts(), ranker=ranker,
        sink=FakeSink(),
    )

    async def alone() -> list:
        return [await pipeline.execute(_query(user)) for user in USERS]

    async def together() -> list:
        return await asyncio.gather(*(pipeline.execute(_query(user)) for user in USERS))

    expected = asyncio.run(alone())
    assert ranker.batcher.stats.largest == 1
    hold_first_batch(ranker.batcher, until_waiting=len(USERS) - 1)
    results = asyncio.run(together())
    stats = ranker.batcher.stats
    assert stats.jobs == 2 * len(USERS) and stats.batches == len(USERS) + 2  # 4 alone, then 1 + the other 3
    assert stats.largest == len(USERS) - 1
    for want, got in zip(expected, results, strict=True):
        assert got.degraded == [] and got.model == ranker.version and len(got.posts) >= 10
        assert [p.post_id for p in got.posts] == [p.post_id for p in want.posts]
        np.testing.assert_allclose([p.score for p in got.posts], [p.score for p in want.posts], rtol=1e-5)
