"""The generated world: determinism, the wire shape of its events, and the properties it promises."""

import numpy as np
import pytest

from foryou.world.config import preset
from foryou.world.vocab import topic_words
from foryou.world.world import World

CREATE_FIELDS = {
    "v": int,
    "type": str,
    "post_id": int,
    "author_id": int,
    "created_at_ms": int,
    "text": str,
    "in_reply_to_post_id": (int, type(None)),
    "in_reply_to_user_id": (int, type(None)),
    "repost_of_post_id": (int, type(None)),
    "repost_of_user_id": (int, type(None)),
    "quote_of_post_id": (int, type(None)),
    "conversation_id": (int, type(None)),
    "media": str,
    "video_duration_ms": (int, type(None)),
    "subscriber_only": bool,
    "safety_label": (str, type(None)),
}
DELETE_FIELDS = {"v": int, "type": str, "post_id": int, "author_id": int, "deleted_at_ms": int}
SOCIAL_FIELDS = {
    "v": int, "type": str, "user_id": int, "target_id": (int, type(None)), "keyword": (str, type(None)),
    "ts_ms": int,
}


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(preset("tiny", seed=7))


@pytest.fixture(scope="module")
def events(world: World) -> list:
    return list(world.events())


def _check_fields(value: dict, fields: dict) -> None:
    assert set(value) == set(fields), set(value) ^ set(fields)
    for name, kind in fields.items():
        assert isinstance(value[name], kind), (name, value[name])
        if kind is int:
            assert not isinstance(value[name], bool), name
    assert value["v"] == 1


def test_same_seed_same_events_and_other_seed_differs(events: list) -> None:
    again = list(World.generate(preset("tiny", seed=7)).events())
    assert again == events
    other = list(World.generate(preset("tiny", seed=8)).events())
    assert other != events


def test_events_follow_the_contract(events: list) -> None:
    kinds = set()
    for event in events:
        value = event.value
        kinds.add((event.topic, value["type"]))
        if event.topic == "tweet-events":
            _check_fields(value, CREATE_FIELDS if value["type"] == "create" else DELETE_FIELDS)
            assert event.key == str(value["post_id"]).encode()
            assert value["post_id"] > 0 and value["author_id"] > 0
        else:
            assert event.topic == "social-graph-events"
            _check_fields(value, SOCIAL_FIELDS)
            assert event.key == str(value["user_id"]).encode()
            assert value["user_id"] > 0
            if value["type"] == "mute_keyword":
                assert value["keyword"] and value["target_id"] is None
            else:
                assert value["target_id"] > 0 and value["keyword"] is None
    assert kinds == {
        ("tweet-events", "create"), ("tweet-events", "delete"), ("social-graph-events", "follow"),
        ("social-graph-events", "block"), ("social-graph-events", "mute"),
        ("social-graph-events", "mute_keyword"),
    }


def test_stream_is_in_time_order(events: list) -> None:
    times = [e.time_ms for e in events]
    assert times == sorted(times)


def test_some_deletes_come_before_their_create(events: list) -> None:
    first_seen: dict[int, str] = {}
    deleted_at: dict[int, int] = {}
    for event in events:
        if event.topic == "tweet-events":
            first_seen.setdefault(event.value["post_id"], event.value["type"])
            if event.value["type"] == "delete":
                deleted_at[event.value["post_id"]] = event.value["deleted_at_ms"]
    early = [p for p, kind in first_seen.items() if kind == "delete"]
    assert early, "no delete overtook its create"
    assert len(early) < len(deleted_at)
    creates = {e.value["post_id"]: e.value for e in events if e.value.get("type") == "create"}
    for post_id in early:  # reordered on the wire, but still deleted after being created
        assert deleted_at[post_id] > creates[post_id]["created_at_ms"]


def test_post_structure_is_consistent(events: list) -> None:
    creates = {e.value["post_id"]: e.value for e in events if e.value.get("type") == "create"}
    counts = {"reply": 0, "repost": 0, "quote": 0, "photo": 0, "video": 0, "subscriber_only": 0}
    for post in creates.values():
        if post["in_reply_to_post_id"] is not None:
            counts["reply"] += 1
            parent = creates[post["in_reply_to_post_id"]]
            assert parent["repost_of_post_id"] is None
            assert post["in_reply_to_user_id"] == parent["author_id"]
            assert post["conversation_id"] == parent["conversation_id"]
            assert parent["created_at_ms"] <= post["created_at_ms"]
        elif post["repost_of_post_id"] is not None:
            counts["repost"] += 1
            original = creates[post["repost_of_post_id"]]
            assert original["repost_of_post_id"] is None
            assert post["repost_of_user_id"] == original["author_id"]
            assert post["conversation_id"] is None
            assert (post["media"], post["text"]) == (original["media"], original["text"])
        else:
            assert post["conversation_id"] == post["post_id"]
        counts["quote"] += post["quote_of_post_id"] is not None
        counts[post["media"]] = counts.get(post["media"], 0) + 1
        counts["subscriber_only"] += post["subscriber_only"]
        assert (post["media"] == "video") == (post["video_duration_ms"] is not None)
    assert all(counts[name] > 0 for name in counts), counts


def test_follow_in_degree_is_heavy_tailed(world: World) -> None:
    in_degree = np.bincount(world.population.follows.dst, minlength=world.num_users)
    assert in_degree.max() >= 10 * max(np.median(in_degree), 1)
    top_tenth = np.sort(in_degree)[::-1][: world.num_users // 10].sum()
    assert top_tenth / in_degree.sum() > 0.4


def test_follows_lean_towards_the_users_topics(world: World) -> None:
    follows, population = world.population.follows, world.population
    followed_match = population.interests[follows.src, population.main_topic[follows.dst]].mean()
    rng = np.random.default_rng(0)
    random_targets = rng.integers(0, world.num_users, follows.src.size)
    random_match = population.interests[follows.src, population.main_topic[random_targets]].mean()
    assert followed_match > 1.5 * random_match


def test_negative_relations_match_the_ground_truth(world: World) -> None:
    population = world.population
    for edges in (population.blocks, population.mutes):
        assert len(edges) > 0
        assert not population.follows.active(edges.src, edges.dst, np.iinfo(np.int64).max, world.num_users).any()
        match = population.interests[edges.src, population.main_topic[edges.dst]]
        assert match.mean() < 1.0 / world.config.num_topics
    words = topic_words(world.config.num_topics)
    for user, keyword in zip(population.keyword_mutes.user, population.keyword_mutes.keyword, strict=True):
        assert keyword in words[int(np.argmin(population.interests[user]))]


def test_post_record_matches_create_value(world: World, events: list) -> None:
    create = next(e.value for e in events if e.value.get("type") == "create" and e.value["in_reply_to_post_id"])
    post = world.post(create["post_id"])
    assert post.kind == "reply"
    assert post.conversation_id == create["conversation_id"]
    assert post.text == create["text"]
