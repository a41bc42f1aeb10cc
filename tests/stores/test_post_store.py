import random
from collections.abc import Iterator

import pytest

from stores.post_store import PostStore
from stores.records import Post

NOW = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR
VIEWER = 1


def create(post_id: int, author_id: int, created_at_ms: int, **fields: object) -> dict:
    event = {
        "v": 1,
        "type": "create",
        "post_id": post_id,
        "author_id": author_id,
        "created_at_ms": created_at_ms,
        "text": f"post {post_id}",
        "in_reply_to_post_id": None,
        "in_reply_to_user_id": None,
        "repost_of_post_id": None,
        "repost_of_user_id": None,
        "quote_of_post_id": None,
        "conversation_id": None,
        "media": "none",
        "video_duration_ms": None,
        "subscriber_only": False,
    }
    event.update(fields)
    return event


def reply(post_id: int, author_id: int, created_at_ms: int, parent_id: int, parent_author: int, root: int) -> dict:
    return create(
        post_id,
        author_id,
        created_at_ms,
        in_reply_to_post_id=parent_id,
        in_reply_to_user_id=parent_author,
        conversation_id=root,
    )


def repost(post_id: int, author_id: int, created_at_ms: int, source_id: int, source_author: int) -> dict:
    return create(post_id, author_id, created_at_ms, repost_of_post_id=source_id, repost_of_user_id=source_author)


def delete(post_id: int, author_id: int, deleted_at_ms: int) -> dict:
    return {"v": 1, "type": "delete", "post_id": post_id, "author_id": author_id, "deleted_at_ms": deleted_at_ms}


@pytest.fixture
def store(tmp_path) -> Iterator[PostStore]:
    posts = PostStore(str(tmp_path / "posts"))
    yield posts
    posts.close()


def ids(posts: list[Post]) -> list[int]:
    return [post.post_id for post in posts]


# ----------------------------------------------------------------------------------------- create and delete


def test_create_is_stored_with_every_field(store: PostStore) -> None:
    event = create(
        10,
        2,
        NOW - 1000,
        text="héllo",
        quote_of_post_id=7,
        conversation_id=10,
        media="video",
        video_duration_ms=12_000,
        subscriber_only=True,
        safety_label="nsfw",
    )
    store.apply([event], now_ms=NOW)
    assert store.get(10) == Post(
        post_id=10,
        author_id=2,
        created_at_ms=NOW - 1000,
        text="héllo",
        quote_of_post_id=7,
        conversation_id=10,
        media="video",
        video_duration_ms=12_000,
        subscriber_only=True,
        safety_label="nsfw",
    )
    assert store.timeline(2, "original") == [(10, NOW - 1000)]
    assert store.timeline(2, "video") == [(10, NOW - 1000)]
    assert store.timeline(2, "secondary") == []
    assert store.count() == len(store) == 1
    assert store.get(11) is None
    assert not store.is_deleted(10)


def test_get_many_returns_the_stored_posts_field_for_field_and_skips_unknown_ids(store: PostStore) -> None:
    events = [
        create(10, 2, NOW - 1000, text="héllo", media="video", video_duration_ms=12_000, safety_label="nsfw"),
        reply(11, 3, NOW - 900, 10, 2, 10),
        repost(12, 4, NOW - 800, 10, 2),
        create(13, 5, NOW - 700, quote_of_post_id=10, subscriber_only=True, media="photo"),
    ]
    store.apply(events, now_ms=NOW)
    found = store.get_many([13, 99, 10, 11, 12, 10])
    assert list(found) == [13, 10, 11, 12]
    for post_id, post in found.items():
        assert post == store.get(post_id)
        event = next(e for e in events if e["post_id"] == post_id)
        assert post == Post(**{name: event.get(name) for name in Post.__dataclass_fields__})
    assert store.get_many([98, 99]) == {}


def test_reads_reuse_decoded_posts_only_while_the_stored_post_is_the_same(tmp_path) -> None:
    store = PostStore(str(tmp_path / "posts"), decoded_posts=2)
    store.apply([create(1, 2, NOW - 3, text="first"), create(2, 2, NOW - 2), create(3, 2, NOW - 1)], now_ms=NOW)
    first = store.get_many([1])[1]
    assert store.get_many([1])[1] is first  # decoded once, reused
    assert list(store.get_many([2, 3])) == [2, 3]  # pushes 1 out of the bounded cache
    assert store.get_many([1])[1] == first and store.get_many([1])[1] is not first
    assert [p.post_id for p in store.recent_posts([2], 10, now_ms=NOW)] == [3, 2, 1]

    store.apply([delete(1, 2, NOW)], now_ms=NOW)
    assert store.get_many([1, 2]).keys() == {2}
    later = NOW + 3 * DAY  # the post, then its tombstone, age out; the id may then come back as a new post
    store.trim(later)
    store.apply([create(1, 2, later - 1, text="second")], now_ms=later)
    assert store.get_many([1])[1].text == "second"
    assert [p.text for p in store.recent_posts([2], 10, now_ms=later)] == ["second"]
    store.close()


def test_replies_and_reposts_go_to_the_secondary_timeline(store: PostStore) -> None:
    store.apply([create(1, 5, NOW - 300), reply(2, 6, NOW - 200, 1, 5, 1), repost(3, 6, NOW - 100, 1, 5)], now_ms=NOW)
    assert store.timeline(6, "secondary") == [(3, NOW - 100), (2, NOW - 200)]
    assert store.timeline(6, "original") == []
    assert store.get(2).kind == "reply"
    assert store.get(3).kind == "repost"


def test_delete_before_create_is_honoured(store: PostStore) -> None:
    store.apply([delete(10, 2, NOW - 500)], now_ms=NOW)
    store.apply([create(10, 2, NOW - 1000)], now_ms=NOW)
    assert store.get(10) is None
    assert store.is_deleted(10)
    assert store.timeline(2, "original") == []
    assert store.count() == 0
    assert store.recent_posts([2], 10, now_ms=NOW) == []


def test_delete_before_create_in_the_same_batch(store: PostStore) -> None:
    store.apply([delete(10, 2, NOW - 500), create(10, 2, NOW - 1000)], now_ms=NOW)
    assert store.get(10) is None
    assert store.count() == 0


def test_delete_after_create_removes_post_and_timeline_entries(store: PostStore) -> None:
    store.apply([create(10, 2, NOW - 1000, media="video"), create(11, 2, NOW - 900)], now_ms=NOW)
    store.apply([delete(10, 2, NOW - 500)], now_ms=NOW)
    assert store.get(10) is None
    assert store.get_many([10, 11]) == {11: store.get(11)}
    assert store.is_deleted(10)
    assert store.timeline(2, "original") == [(11, NOW - 900)]
    assert store.timeline(2, "video") == []
    assert store.count() == 1
    assert ids(store.recent_posts([2], 10, now_ms=NOW)) == [11]


def test_reads_through_the_row_cache_see_later_deletes_and_creates(store: PostStore) -> None:
    # Flushed to table files, the posts are read through the row cache (memtable reads bypass it); the
    # cached rows must not outlive a delete, nor hide a later create.
    store.apply([create(10, 2, NOW - 1000), create(11, 2, NOW - 900)], now_ms=NOW)
    store._db.flush()
    assert set(store.get_many([10, 11])) == {10, 11}
    assert set(store.get_many([10, 11])) == {10, 11}
    store.apply([delete(10, 2, NOW - 500), create(12, 2, NOW - 400)], now_ms=NOW)
    store._db.flush()
    assert set(store.get_many([10, 11, 12])) == {11, 12}
    assert ids(store.recent_posts([2], 10, now_ms=NOW)) == [12, 11]


def test_delete_after_create_in_the_same_batch(store: PostStore) -> None:
    store.apply([create(10, 2, NOW - 1000), delete(10, 2, NOW - 500)], now_ms=NOW)
    assert store.get(10) is None
    assert store.timeline(2, "original") == []
    assert store.count() == 0


def test_duplicate_create_is_idempotent(store: PostStore) -> None:
    store.apply([create(10, 2, NOW - 1000)], now_ms=NOW)
    store.apply([create(10, 2, NOW - 1000), create(10, 2, NOW - 900, text="changed")], now_ms=NOW)
    assert store.get(10).text == "post 10"
    assert store.timeline(2, "original") == [(10, NOW - 1000)]
    assert store.count() == 1


def test_creates_outside_retention_or_too_far_ahead_are_dropped(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), retention_ms=DAY, max_future_ms=60_000) as store:
        store.apply(
            [
                create(1, 2, NOW - DAY - 1),
                create(2, 2, NOW - DAY),
                create(3, 2, NOW + 60_000),
                create(4, 2, NOW + 60_001),
            ],
            now_ms=NOW,
        )
        assert sorted(store.get_many([1, 2, 3, 4])) == [2, 3]


def test_unknown_event_type_writes_nothing(store: PostStore) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        store.apply([create(1, 2, NOW), {"type": "edit", "post_id": 1}], offsets={0: 5}, now_ms=NOW)
    assert store.get(1) is None
    assert store.offsets() == {}


# ---------------------------------------------------------------------------------------- follower counts


def test_follower_deltas_accumulate_and_never_read_negative(store: PostStore) -> None:
    delta = {"type": "follower_delta", "author_id": 7, "delta": 1}
    store.apply([delta, delta, {"type": "follower_delta", "author_id": 7, "delta": -1}])
    assert store.follower_count(7) == 1
    assert store.follower_count(8) == 0
    store.apply([{"type": "follower_delta", "author_id": 8, "delta": -3}])
    assert store.follower_count(8) == 0
    store.apply([{"type": "follower_delta", "author_id": 8, "delta": 4}])
    assert store.follower_count(8) == 1


def test_follower_counts_reads_many_authors_like_follower_count(store: PostStore) -> None:
    store.apply(
        [
            {"type": "follower_delta", "author_id": 7, "delta": 5},
            {"type": "follower_delta", "author_id": 8, "delta": -2},
        ]
    )
    assert store.follower_counts([7, 8, 9, 7]) == {7: 5, 8: 0, 9: 0}
    assert store.follower_counts([]) == {}


# ---------------------------------------------------------------------------------- offsets and recovery


def test_offsets_are_recorded_with_the_batch_and_survive_reopening(tmp_path) -> None:
    path = str(tmp_path / "posts")
    store = PostStore(path)
    store.apply([create(1, 2, NOW - 10)], offsets={0: 11, 1: 4}, now_ms=NOW)
    store.apply([create(2, 2, NOW - 5)], offsets={1: 9}, now_ms=NOW)
    store.apply([{"type": "follower_delta", "author_id": 2, "delta": 3}], offsets={2: 1})
    store.close()

    reopened = PostStore(path)
    try:
        assert reopened.offsets() == {0: 11, 1: 9, 2: 1}
        assert sorted(reopened.get_many([1, 2])) == [1, 2]
        assert reopened.count() == 2
        assert reopened.follower_count(2) == 3
        assert reopened.timeline(2, "original") == [(2, NOW - 5), (1, NOW - 10)]
    finally:
        reopened.close()


def test_close_is_possible_while_iter_recent_is_part_way(tmp_path) -> None:
    path = str(tmp_path / "posts")
    store = PostStore(path)
    store.apply([create(i, 2, NOW - 1000 + i) for i in range(1, 4)], now_ms=NOW)
    iterator = store.iter_recent(0)
    assert next(iterator).post_id == 1
    store.close()
    with PostStore(path) as reopened:
        assert reopened.count() == 3


# ------------------------------------------------------------------------------------------- bounds, trim


def test_timeline_is_bounded_per_author_and_kind(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), timeline_cap=3) as store:
        # Out of time order on purpose: the bound keeps the newest by time, not by arrival.
        store.apply(
            [create(i, 2, NOW - 1000 + t) for i, t in [(1, 10), (2, 50), (3, 30), (4, 20), (5, 40)]], now_ms=NOW
        )
        assert store.timeline(2, "original") == [(2, NOW - 950), (5, NOW - 960), (3, NOW - 970)]
        assert sorted(store.get_many(range(1, 6))) == [2, 3, 5]
        assert store.count() == 3
        store.apply([create(6, 2, NOW - 1000)], now_ms=NOW)  # older than a full timeline: never kept
        assert store.get(6) is None
        assert store.count() == 3
        store.apply([create(7, 3, NOW - 100, media="video")], now_ms=NOW)
        assert store.timeline(3, "video") == [(7, NOW - 100)]


def test_eviction_from_the_primary_timeline_also_clears_the_video_timeline(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), timeline_cap=2) as store:
        store.apply([create(1, 2, NOW - 30, media="video"), create(2, 2, NOW - 20), create(3, 2, NOW - 10)], now_ms=NOW)
        assert store.get(1) is None
        assert store.timeline(2, "video") == []


def test_trim_drops_old_posts_and_old_tombstones(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), retention_ms=DAY, tombstone_margin_ms=HOUR) as store:
        store.apply(
            [
                create(1, 2, NOW - 21 * HOUR, media="video"),
                create(2, 2, NOW - 10 * HOUR),
                repost(3, 4, NOW - 15 * HOUR, 1, 2),
                create(4, 4, NOW - 5 * HOUR),
                delete(9, 2, NOW - 20 * HOUR),
            ],
            now_ms=NOW,
        )
        assert store.timeline(4, "video") == [(3, NOW - 15 * HOUR)]
        later = NOW + 4 * HOUR  # post cutoff NOW - 20h, tombstone cutoff NOW - 21h
        assert store.trim(later) == [1]
        assert store.get(1) is None
        assert store.timeline(2, "original") == [(2, NOW - 10 * HOUR)]
        assert store.timeline(2, "video") == []
        assert store.count() == 3
        assert store.is_deleted(9)  # a tombstone lasts retention + margin after the delete was applied
        assert store.trim(later) == []

        assert sorted(store.trim(NOW + 20 * HOUR)) == [2, 3, 4]  # cutoff NOW - 4h: everything else
        assert store.is_deleted(9)  # applied at NOW: held until NOW + 25h, whatever deleted_at_ms said
        store.trim(NOW + 25 * HOUR + 1)
        assert not store.is_deleted(9)
        assert store.count() == 0
        assert store.timeline(4, "secondary") == []
        assert store.timeline(4, "video") == []
        assert store.timeline(4, "original") == []


def test_trim_handles_more_posts_than_one_chunk(store: PostStore) -> None:
    store.apply([create(i, i % 50, NOW - DAY + i) for i in range(1, 6_001)], now_ms=NOW)
    assert store.count() == 6_000
    assert len(store.trim(NOW + DAY + 5_001)) == 5_000
    assert store.count() == 1_000
    assert min(store.get_many(range(1, 6_001))) == 5_001


def test_iter_recent_yields_live_posts_oldest_first(store: PostStore) -> None:
    store.apply([create(i, i % 5, NOW - 2_000 + i) for i in range(1, 1_501)], now_ms=NOW)
    store.apply([delete(1_200, 0, NOW)], now_ms=NOW)
    recent = list(store.iter_recent(NOW - 2_000 + 100))
    assert [post.post_id for post in recent] == [i for i in range(100, 1_501) if i != 1_200]


# ------------------------------------------------------------------------------------------- recent_posts


def test_recent_posts_order_limit_exclude_and_age(store: PostStore) -> None:
    store.apply(
        [
            create(1, 2, NOW - 5 * HOUR),
            create(2, 3, NOW - 4 * HOUR),
            create(3, 2, NOW - 3 * HOUR),
            create(4, 3, NOW - 2 * HOUR),
            create(5, 9, NOW - 1 * HOUR),  # not followed
            create(6, 2, NOW - 3 * DAY // 2),
        ],
        now_ms=NOW,
    )
    assert ids(store.recent_posts([2, 3], 10, now_ms=NOW)) == [4, 3, 2, 1, 6]
    assert ids(store.recent_posts([3, 2, 3], 2, now_ms=NOW)) == [4, 3]
    assert ids(store.recent_posts([2, 3], 10, exclude={3, 4}, now_ms=NOW)) == [2, 1, 6]
    assert ids(store.recent_posts([2, 3], 10, now_ms=NOW, max_age_ms=3 * HOUR)) == [4, 3]
    assert ids(store.recent_posts([2, 3], 10, now_ms=NOW + DAY)) == [4, 3, 2, 1]  # 6 is past retention
    assert store.recent_posts([2, 3], 0, now_ms=NOW) == []
    assert store.recent_posts([], 10, now_ms=NOW) == []
    assert store.recent_posts([42], 10, now_ms=NOW) == []


def test_recent_posts_caps_each_author_per_kind(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), max_original_per_author=2, max_secondary_per_author=1) as store:
        store.apply([create(100, 9, NOW - 10 * HOUR)], now_ms=NOW)
        store.apply(
            [create(i, 2, NOW - i * 60_000) for i in range(1, 5)]
            + [repost(10 + i, 2, NOW - i * 30_000, 100, 9) for i in range(1, 4)]
            + [create(20, 3, NOW - 1000)],
            now_ms=NOW,
        )
        # Author 2: the two newest originals and the newest repost; author 3 untouched by 2's caps.
        assert ids(store.recent_posts([2, 3], 10, now_ms=NOW)) == [20, 11, 1, 2]
        # Excluded posts do not count against the cap.
        assert ids(store.recent_posts([2], 10, exclude={1, 11}, now_ms=NOW)) == [12, 2, 3]


def test_reply_rule_follows_thunder(store: PostStore) -> None:
    # The conversation rooted at 1000 (by 10); Thunder keeps replies to the root, and replies to a reply
    # to the root when the replied-to user is followed.
    t = NOW - 10_000
    store.apply(
        [
            create(1_000, 10, t, conversation_id=1_000),
            reply(1_001, 2, t + 1, 1_000, 10, 1_000),  # reply to the root: kept
            reply(1_002, 3, t + 2, 1_001, 2, 1_000),  # reply to a reply to the root, to followed 2: kept
            reply(1_003, 4, t + 3, 1_001, 99, 1_000),  # replied-to user 99 not followed: dropped
            reply(1_004, 5, t + 4, 1_000, 10, 1_000),  # reply to the root: kept
            repost(1_005, 2, t + 5, 5_000, VIEWER),  # repost of the viewer's own post: dropped
            reply(1_006, 3, t + 6, 1_002, 3, 1_000),  # reply deeper in the thread: dropped
            reply(1_007, 4, t + 7, 777, 2, 777),  # replied-to post unknown: dropped
        ],
        now_ms=NOW,
    )
    following = [2, 3, 4, 5]
    kept = ids(store.recent_posts(following, 20, now_ms=NOW, viewer_id=VIEWER))
    assert kept == [1_004, 1_002, 1_001]
    assert 1_005 in ids(store.recent_posts(following, 20, now_ms=NOW))  # no viewer: no self-repost filter
    widened = ids(store.recent_posts(following, 20, now_ms=NOW, following=[2, 3, 4, 5, 99], viewer_id=VIEWER))
    assert widened == [1_004, 1_003, 1_002, 1_001]


def test_video_timeline_and_video_query(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), max_video_per_author=1) as store:
        store.apply(
            [
                create(1, 2, NOW - 100, media="video"),
                create(2, 2, NOW - 90, media="photo"),
                repost(3, 4, NOW - 80, 1, 2),  # repost of a stored video original: video
                repost(4, 4, NOW - 70, 2, 2),  # repost of a photo: not video
                repost(5, 4, NOW - 60, 555, 2),  # source unknown: not video
                create(6, 4, NOW - 50, media="video", in_reply_to_post_id=1, in_reply_to_user_id=2),
                create(7, 5, NOW - 40, media="video"),
                create(8, 5, NOW - 30, media="video"),
            ],
            now_ms=NOW,
        )
        assert store.timeline(2, "video") == [(1, NOW - 100)]
        assert store.timeline(4, "video") == [(3, NOW - 80)]
        assert ids(store.recent_posts([2, 4, 5], 10, now_ms=NOW, video_only=True)) == [8, 3, 1]
        assert ids(store.recent_posts([2, 4, 5], 10, now_ms=NOW, video_only=True, viewer_id=2)) == [8, 1]


def test_repost_of_a_video_created_earlier_in_the_same_batch_is_video(store: PostStore) -> None:
    store.apply([create(1, 2, NOW - 100, media="video"), repost(2, 3, NOW - 50, 1, 2)], now_ms=NOW)
    assert store.timeline(3, "video") == [(2, NOW - 50)]


def _reference_recent_posts(
    store: PostStore,
    authors: list[int],
    limit: int,
    exclude: set[int],
    caps: dict[str, int],
    *,
    reply_rule: bool,
) -> list[int]:
    """Thunder's query written naively: per author and timeline, filter then cap; then the newest `limit`."""
    following = set(authors)
    chosen: list[Post] = []
    for author in dict.fromkeys(authors):
        for kind, cap in caps.items():
            taken = 0
            for post_id, created in store.timeline(author, kind):
                if taken == cap:
                    break
                if post_id in exclude or created < NOW - store.retention_ms:
                    continue
                post = store.get(post_id)
                if post is None or (post.kind == "repost" and post.repost_of_user_id == VIEWER):
                    continue
                if reply_rule and post.in_reply_to_post_id is not None:
                    parent = store.get(post.in_reply_to_post_id)
                    if parent is None:
                        continue
                    if parent.kind != "original" and not (
                        post.conversation_id is not None
                        and parent.in_reply_to_post_id == post.conversation_id
                        and post.in_reply_to_user_id in following
                    ):
                        continue
                chosen.append(post)
                taken += 1
    chosen.sort(key=lambda post: (post.created_at_ms, post.post_id), reverse=True)
    return [post.post_id for post in chosen[:limit]]


def _random_events(rng: random.Random, count: int) -> list[dict]:
    events = []
    posts: list[tuple[int, int, int]] = []  # (post_id, author, conversation root)
    for post_id in range(1, count + 1):
        author = rng.randrange(1, 60)
        created = NOW - rng.randrange(0, 2 * DAY + HOUR)
        roll = rng.random()
        if roll < 0.5 or not posts:
            media = "video" if rng.random() < 0.3 else "none"
            events.append(create(post_id, author, created, conversation_id=post_id, media=media))
            posts.append((post_id, author, post_id))
        elif roll < 0.8:
            parent_id, parent_author, root = rng.choice(posts)
            events.append(reply(post_id, author, created, parent_id, parent_author, root))
            posts.append((post_id, author, root))
        else:
            source_id, source_author, _ = rng.choice(posts)
            events.append(repost(post_id, author, created, source_id, rng.choice([source_author, VIEWER])))
    return events


@pytest.mark.parametrize(("original_cap", "secondary_cap", "video_cap"), [(10, 5, 5), (1, 1, 1), (3, 0, 2)])
def test_recent_posts_matches_a_naive_reference_on_random_data(
    tmp_path, original_cap: int, secondary_cap: int, video_cap: int
) -> None:
    rng = random.Random(original_cap * 100 + secondary_cap)
    store = PostStore(
        str(tmp_path / "p"),
        max_original_per_author=original_cap,
        max_secondary_per_author=secondary_cap,
        max_video_per_author=video_cap,
    )
    try:
        events = _random_events(rng, 3_000)
        for batch_start in range(0, len(events), 250):
            store.apply(events[batch_start : batch_start + 250], now_ms=NOW)
        store.apply([delete(post_id, 0, NOW) for post_id in rng.sample(range(1, 3_001), 200)], now_ms=NOW)
        for _ in range(20):
            authors = rng.sample(range(1, 60), rng.randrange(1, 40))
            exclude = set(rng.sample(range(1, 3_001), 300))
            limit = rng.choice([1, 5, 30, 200, 1000])
            caps = {"original": original_cap, "secondary": secondary_cap}
            expected = _reference_recent_posts(store, authors, limit, exclude, caps, reply_rule=True)
            got = store.recent_posts(authors, limit, exclude, now_ms=NOW, viewer_id=VIEWER)
            assert ids(got) == expected
            expected = _reference_recent_posts(store, authors, limit, exclude, {"video": video_cap}, reply_rule=False)
            got = store.recent_posts(authors, limit, exclude, now_ms=NOW, viewer_id=VIEWER, video_only=True)
            assert ids(got) == expected
    finally:
        store.close()


def test_a_delete_holds_by_the_stores_clock_whatever_deleted_at_ms_says(store: PostStore) -> None:
    store.apply([create(1, 2, NOW - HOUR), create(2, 2, NOW - HOUR)], now_ms=NOW)
    store.apply([delete(1, 2, 0), delete(2, 2, 2**63 - 1)], now_ms=NOW)
    store.trim(NOW + 2 * DAY)  # the producer's 0 would have expired the tombstone at once
    assert store.is_deleted(1) and store.is_deleted(2)
    # A late create of a deleted post is skipped, even one that claims a fresh creation time.
    store.apply([create(1, 2, NOW + 2 * DAY), create(2, 2, NOW + 2 * DAY)], now_ms=NOW + 2 * DAY)
    assert store.get(1) is None and store.get(2) is None
    store.trim(NOW + 3 * DAY)  # retention + margin after the delete was applied: the far-future one goes too
    assert not store.is_deleted(1) and not store.is_deleted(2)


def test_apply_reports_exactly_the_posts_it_stored_and_removed(tmp_path) -> None:
    with PostStore(str(tmp_path / "p"), timeline_cap=2) as store:
        applied = store.apply(
            [
                create(1, 2, NOW - 30),
                create(2, 2, NOW - 20),
                create(3, 2, NOW - 10),  # pushes 1 out of the author's timeline, and so out of the store
                create(4, 5, NOW - 3 * DAY),  # too old: rejected
                create(5, 5, NOW + DAY),  # too far ahead: rejected
                create(2, 2, NOW - 20),  # a duplicate
                delete(6, 5, NOW),
                create(6, 5, NOW - 5),  # deleted before it came: skipped
            ],
            now_ms=NOW,
        )
        assert applied.added == {2: 2, 3: 2}
        assert applied.removed == []
        applied = store.apply([create(7, 2, NOW - 1), delete(3, 2, NOW), delete(99, 2, NOW)], now_ms=NOW)
        assert applied.added == {7: 2}
        assert sorted(applied.removed) == [2, 3]  # 2 evicted by 7, 3 deleted; 99 was never stored


def test_only_the_author_deletes_a_post(store: PostStore) -> None:
    store.apply([create(1, 7, NOW - 1000)], now_ms=NOW)
    applied = store.apply([delete(1, 8, NOW)], now_ms=NOW)
    assert applied.refused_deletes == [1]
    assert store.get(1) is not None and not store.is_deleted(1)
    applied = store.apply([delete(1, 7, NOW)], now_ms=NOW)
    assert applied.refused_deletes == [] and applied.removed == [1]
    assert store.get(1) is None


def test_a_forged_delete_before_the_create_does_not_suppress_the_post(store: PostStore) -> None:
    store.apply([delete(2, 8, NOW), create(2, 7, NOW - 1000)], now_ms=NOW)
    assert store.get(2) is not None  # the early delete named another author
    store.apply([delete(3, 7, NOW), create(3, 7, NOW - 1000)], now_ms=NOW)
    assert store.get(3) is None and store.is_deleted(3)  # the author's own early delete holds
    store.apply([delete(2, 7, NOW)], now_ms=NOW)
    assert store.get(2) is None and store.is_deleted(2)


def test_follow_edges_from_follower_deltas_answer_who_follows_a_user(store: PostStore) -> None:
    def follow(follower: int, followed: int, delta: int = 1) -> dict:
        return {"type": "follower_delta", "author_id": followed, "delta": delta, "follower_id": follower}

    store.apply([follow(10, VIEWER), follow(20, VIEWER), follow(VIEWER, 30), {"type": "follower_delta",
                                                                             "author_id": VIEWER, "delta": 1}])
    assert store.authors_following(VIEWER, [10, 20, 30, 40]) == {10, 20}
    assert store.follower_count(VIEWER) == 3  # the delta without a follower still counts
    store.apply([follow(20, VIEWER, -1)])
    assert store.authors_following(VIEWER, [10, 20]) == {10}
    assert store.authors_following(VIEWER, []) == set()


def test_the_published_thunder_limits_from_the_production_preset(tmp_path) -> None:
    from streams.config import load_config

    thunder = load_config(env={}).thunder
    with PostStore(str(tmp_path / "p"), timeline_cap=thunder.timeline_cap,
                   max_original_per_author=thunder.max_originals_per_author,
                   max_secondary_per_author=thunder.max_secondary_per_author) as store:
        originals = [create(i, 2, NOW - 10 * HOUR + i) for i in range(1, 5_011)]
        replies = [reply(100_000 + i, 2, NOW - 5 * HOUR + i, 5_010, 2, 5_010) for i in range(40)]
        store.apply(originals + replies, now_ms=NOW)
        assert len(store.timeline(2, "original")) == 5_000  # the 10 oldest were evicted
        assert store.get(10) is None and store.get(11) is not None
        served = store.recent_posts([2], limit=1_000, now_ms=NOW)
        assert sum(p.kind == "original" for p in served) == 50 and sum(p.kind == "reply" for p in served) == 30
