import asyncio

from stores.post_store import PostStore
from stores.records import ActionEntry, UserFeatures
from streams.sources import PhoenixRetrievalSource, ThunderSource
from tests.stores.test_post_store import create, repost
from tests.streams.foryou_fakes import HOUR_MS, NOW_MS, USER, FakePostStore, FakeRanker, post, query

FEATURES = UserFeatures(following=frozenset({10, 11}), blocked=frozenset({66}), muted=frozenset({77}))
POSTS = [post(i, 10 + i % 2, age_ms=i * HOUR_MS) for i in range(1, 8)] + [post(50, 99)]


def test_thunder_returns_followed_authors_newest_first_without_seen_and_limited():
    store = FakePostStore(POSTS)
    history = (ActionEntry(post_id=3, author_id=11, action_mask=1, surface="home_for_you", ts_ms=0),)
    out = asyncio.run(
        ThunderSource(store, limit=3, max_age_ms=100 * HOUR_MS, served_filter_all_requests=False).fetch(
            query(features=FEATURES, seen_ids=frozenset({1}), served_ids=frozenset({2}), action_sequence=history)
        )
    )
    assert [c.post_id for c in out] == [2, 4, 5]  # 1 seen, 3 acted on; 2 served but this is a top request
    assert all(c.source == "thunder" for c in out)


def test_thunder_excludes_served_posts_on_bottom_requests():
    source = ThunderSource(FakePostStore(POSTS), limit=10, max_age_ms=100 * HOUR_MS, served_filter_all_requests=False)
    out = asyncio.run(source.fetch(query(features=FEATURES, served_ids=frozenset({1, 2}), is_bottom_request=True)))
    assert 1 not in [c.post_id for c in out] and 2 not in [c.post_id for c in out]


def test_thunder_leaves_out_reposts_of_the_users_own_posts(tmp_path):
    """As Thunder: a followed account reposting the user's post does not bring it back to its author."""
    with PostStore(str(tmp_path / "posts")) as store:
        store.apply(
            [
                create(1, USER, NOW_MS - 3 * HOUR_MS),
                create(2, 10, NOW_MS - 3 * HOUR_MS),
                repost(3, 10, NOW_MS - 2 * HOUR_MS, source_id=1, source_author=USER),
                repost(4, 11, NOW_MS - HOUR_MS, source_id=2, source_author=10),
            ],
            now_ms=NOW_MS,
        )
        source = ThunderSource(store, limit=10, max_age_ms=100 * HOUR_MS, served_filter_all_requests=False)
        out = asyncio.run(source.fetch(query(features=FEATURES)))
    assert [c.post_id for c in out] == [4, 2]


def test_thunder_needs_user_features_and_a_positive_limit():
    source = ThunderSource(FakePostStore(POSTS), limit=10, max_age_ms=HOUR_MS, served_filter_all_requests=False)
    assert not source.enable(query(features=None))
    assert asyncio.run(source.fetch(query(features=UserFeatures()))) == []
    assert not ThunderSource(FakePostStore(), 0, HOUR_MS, False).enable(query())


def test_retrieval_excludes_followed_blocked_muted_and_self_and_keeps_scores():
    ranker = FakeRanker(corpus=[(1, 10, 0.9), (2, 66, 0.8), (3, 20, 0.7), (4, 77, 0.6), (5, USER, 0.5), (6, 21, 0.4)])
    source = PhoenixRetrievalSource(ranker, k=5, served_filter_all_requests=False)
    out = asyncio.run(source.fetch(query(features=FEATURES, seen_ids=frozenset({6}))))
    assert [(c.post_id, c.author_id, c.retrieval_score) for c in out] == [(3, 20, 0.7)]
    assert ranker.retrieve_calls[0]["exclude_authors"] == {10, 11, 66, 77, USER}
    assert ranker.retrieve_calls[0]["exclude_posts"] == {6}
    assert out[0].source == "phoenix_retrieval"


def test_retrieval_is_skipped_for_in_network_only_requests():
    source = PhoenixRetrievalSource(FakeRanker(), k=5, served_filter_all_requests=False)
    assert not source.enable(query(in_network_only=True))
    assert source.enable(query())
