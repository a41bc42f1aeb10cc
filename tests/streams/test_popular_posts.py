"""PopularPosts: the published views-based score, per-author and total limits, refresh, exclusions."""

import asyncio
import math
from dataclasses import replace

import pytest

from stores.records import PostCounts, UserFeatures
from streams.config import load_config
from streams.popular_posts import PopularPostsSource, popularity, rank_popular
from tests.streams.foryou_fakes import HOUR_MS, NOW_MS, FakeEngagementCounts, FakePostStore, ids, post, query

CONFIG = load_config(env={}).popular  # production-2026-10: 5 per author, 24 h, 8 h half-life, 60 s refresh


def test_popularity_is_views_scaled_by_the_published_decay():
    rate = math.log(2) / (8 * HOUR_MS)
    expected = 100 * (1 - math.exp(-rate * 24 * HOUR_MS)) / (1 - math.exp(-rate * 2 * HOUR_MS))
    assert popularity(100, 2 * HOUR_MS, 8 * HOUR_MS, 24 * HOUR_MS) == pytest.approx(expected)
    # A day-old post scores its views; younger ones are scaled up; ages under 30 minutes count as 30 minutes.
    assert popularity(100, 24 * HOUR_MS, 8 * HOUR_MS, 24 * HOUR_MS) == pytest.approx(100)
    def score(views: int, age_ms: int) -> float:
        return popularity(views, age_ms, 8 * HOUR_MS, 24 * HOUR_MS)

    assert score(100, 60_000) == score(100, HOUR_MS // 2)
    assert score(100, 30 * 60_000) > score(1_000, 24 * HOUR_MS)


def test_ranks_fresh_originals_only_with_at_most_five_per_author():
    posts = [post(i, 10, age_ms=HOUR_MS) for i in range(1, 8)]  # seven by one author
    posts += [
        post(20, 20, age_ms=HOUR_MS),
        post(21, 21, age_ms=HOUR_MS, in_reply_to_post_id=20),  # a reply: not an original
        post(22, 22, age_ms=HOUR_MS, repost_of_post_id=20),  # a repost
        post(23, 23, age_ms=30 * HOUR_MS),  # older than 24 h
    ]
    counts = {p.post_id: PostCounts(views=p.post_id) for p in posts}
    ranked = rank_popular(posts, counts, {}, NOW_MS, CONFIG, limit=500)
    assert [p.post_id for p in ranked] == [20, 7, 6, 5, 4, 3]
    assert len(rank_popular(posts, counts, {}, NOW_MS, CONFIG, limit=2)) == 2


def test_ties_go_to_the_author_with_more_followers():
    posts = [post(1, 10), post(2, 20)]
    ranked = rank_popular(posts, {}, {20: 9, 10: 1}, NOW_MS, CONFIG, limit=10)
    assert [p.post_id for p in ranked] == [2, 1]


def source(store: FakePostStore, counts: FakeEngagementCounts, limit: int = 500) -> PopularPostsSource:
    return PopularPostsSource(store, counts, limit, CONFIG, served_filter_all_requests=True)


def test_the_list_is_shared_until_refresh_and_requests_drop_their_own_seen_and_served_posts():
    store = FakePostStore([post(1, 10), post(2, 20), post(3, 30), post(4, 1)])
    counts = FakeEngagementCounts({1: PostCounts(views=30), 2: PostCounts(views=20), 3: PostCounts(views=10)})
    popular = source(store, counts)
    q = query(seen_ids=frozenset({2}), served_ids=frozenset({3}))
    assert ids(asyncio.run(popular.fetch(q))) == [1]  # 4 is the user's own post
    candidates = asyncio.run(popular.fetch(query()))
    assert ids(candidates) == [1, 2, 3]
    assert {c.source for c in candidates} == {"popular"}
    assert candidates[0].retrieval_score > candidates[1].retrieval_score
    assert counts.calls == 1  # one build for both requests
    asyncio.run(popular.fetch(replace(query(), now_ms=NOW_MS + CONFIG.refresh_ms)))
    assert counts.calls == 2


def test_disabled_for_in_network_only_requests_and_without_a_limit():
    popular = source(FakePostStore([post(1, 10)]), FakeEngagementCounts())
    assert popular.enable(query())
    assert not popular.enable(query(in_network_only=True))
    assert not source(FakePostStore(), FakeEngagementCounts(), limit=0).enable(query(features=UserFeatures()))
