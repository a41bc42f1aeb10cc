"""Simulated clients emit contract-shaped events and follow the examination model."""

import dataclasses

import numpy as np
import pytest

from foryou.world.client import ClientBehaviour, ClientConfig, UserState, feed_post_ids
from foryou.world.config import preset
from foryou.world.posts import POST_ID_BASE
from foryou.world.world import World
from topics.actions import ACTIONS

ENGAGEMENT_FIELDS = {
    "v": int, "user_id": int, "post_id": int, "author_id": int, "action": str, "surface": str, "ts_ms": int,
    "dwell_ms": (int, type(None)),
}
SOCIAL_FIELDS = {
    "v": int, "type": str, "user_id": int, "target_id": (int, type(None)), "keyword": (str, type(None)),
    "ts_ms": int,
}
REQUEST_FIELDS = {
    "v": int, "request_id": str, "user_id": int, "max_results": int, "seen_ids": list, "served_ids": list,
    "in_network_only": bool, "is_bottom_request": bool, "country": (str, type(None)),
    "language": (str, type(None)), "explain": bool,
}


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(preset("tiny", seed=11))


def _check_fields(value: dict, fields: dict) -> None:
    assert set(value) == set(fields)
    for name, kind in fields.items():
        assert isinstance(value[name], kind), (name, value[name])
        if kind is int:
            assert not isinstance(value[name], bool)
    assert value["v"] == 1


def _feed(world: World, now_ms: int, size: int, rng: np.random.Generator) -> list[int]:
    live = np.flatnonzero(world.posts.created_ms <= now_ms)
    return (POST_ID_BASE + rng.choice(live, size, replace=False)).tolist()


def _run(world: World, client: ClientBehaviour, seed: int, feeds: int = 60) -> list:
    rng = np.random.default_rng(seed)
    now = world.config.start_ms + world.config.duration_ms // 2
    reactions = []
    for user_id in range(1, feeds + 1):
        state = client.initial_state(rng, user_id, now)
        reactions.append(client.react(rng, state, _feed(world, now, 20, rng), now))
    return reactions


def test_events_follow_the_contract(world: World) -> None:
    client = ClientBehaviour(world)
    reactions = _run(world, client, seed=1)
    engagements = [e for r in reactions for e in r.engagement_events]
    assert engagements
    for event in engagements:
        _check_fields(event, ENGAGEMENT_FIELDS)
        assert event["action"] in ACTIONS
        assert event["surface"] == "home_for_you"
        assert event["user_id"] > 0 and event["post_id"] > 0 and event["author_id"] > 0
        assert (event["dwell_ms"] is not None) == (event["action"] in ("dwell", "dwell_time", "click_dwell_time"))
        if event["action"] == "dwell_time":
            assert event["dwell_ms"] >= 8_000
    # The 2026-10 actions: an examined post without a dwell is not_dwelled, a click has its click_dwell_time.
    by_view = {}
    for event in engagements:
        by_view.setdefault((event["user_id"], event["post_id"]), set()).add(event["action"])
    assert any("not_dwelled" in actions for actions in by_view.values())
    for actions in by_view.values():
        assert ("not_dwelled" in actions) != ("dwell" in actions)
        assert ("click" in actions) == ("click_dwell_time" in actions)
    for reaction in reactions:
        for event in reaction.social_graph_events:
            _check_fields(event, SOCIAL_FIELDS)
        request = client.feed_request(reaction.state, "r-1")
        _check_fields(request, REQUEST_FIELDS)
        assert request["is_bottom_request"] == reaction.state.is_bottom_request


def test_react_is_a_function_of_rng_state_and_feed(world: World) -> None:
    client = ClientBehaviour(world)
    first = _run(world, client, seed=5, feeds=20)
    second = _run(world, client, seed=5, feeds=20)
    assert first == second
    assert _run(world, client, seed=6, feeds=20) != first


def test_blocks_and_mutes_emit_social_graph_events(world: World) -> None:
    # An intolerant user shown many disliked, low-quality posts blocks and mutes some authors.
    population = dataclasses.replace(world.population, tolerance=np.full(world.num_users, 0.001))
    disliked = int(np.argmin(world.population.interests[0]))
    posts = dataclasses.replace(world.posts, topic=np.full(world.num_posts, disliked),
                                quality=np.full(world.num_posts, 0.02))
    harsh = World(world.config, population, posts)
    client = ClientBehaviour(harsh, config=ClientConfig(continue_min=1.0, continue_base=1.0,
                                                         negative_stop_factor=1.0))
    rng = np.random.default_rng(0)
    now = world.config.start_ms + world.config.duration_ms // 2
    state = UserState(user_id=1, next_request_ms=now)
    seen = {"block": 0, "mute": 0}
    for _ in range(20):
        reaction = client.react(rng, state, _feed(harsh, now, 30, rng), now)
        social = {(e["type"], e["target_id"], e["ts_ms"]) for e in reaction.social_graph_events}
        for event in reaction.engagement_events:
            kind = {"block_author": "block", "mute_author": "mute"}.get(event["action"])
            if kind:
                assert (kind, event["author_id"], event["ts_ms"]) in social
                seen[kind] += 1
        assert len(reaction.social_graph_events) == sum(
            e["action"] in ("block_author", "mute_author", "follow_author") for e in reaction.engagement_events
        )
        state = reaction.state
    assert seen["block"] > 0 and seen["mute"] > 0
    assert state.blocked and state.muted
    # The client never shows a post by an author it blocked or muted in the same session.
    hidden = state.blocked | state.muted
    reaction = client.react(rng, state, _feed(harsh, now, 30, rng), now)
    assert not {v.author_id for v in reaction.viewed} & hidden


def test_examination_decreases_with_rank(world: World) -> None:
    client = ClientBehaviour(world, config=ClientConfig(continue_base=0.9, continue_decay=0.9, continue_min=0.0))
    reactions = _run(world, client, seed=2, feeds=150)
    examined = np.zeros(20)
    for reaction in reactions:
        for viewed in reaction.viewed:
            examined[viewed.rank] += 1
    assert examined[0] > examined[5] > examined[15]


def test_paging_and_next_request(world: World) -> None:
    always_page = ClientConfig(continue_min=1.0, continue_base=1.0, negative_stop_factor=1.0, page_probability=1.0)
    client = ClientBehaviour(world, config=always_page)
    rng = np.random.default_rng(3)
    now = world.config.start_ms + world.config.duration_ms // 2
    state = client.initial_state(rng, 4, now)
    feed = _feed(world, now, 10, rng)
    reaction = client.react(rng, state, feed, now)
    assert reaction.state.is_bottom_request
    assert reaction.state.served_ids == tuple(feed)
    assert reaction.state.next_request_ms > now
    request = client.feed_request(reaction.state, "page-2")
    assert request["served_ids"] == feed and request["is_bottom_request"]
    assert set(request["seen_ids"]) == {v.post_id for v in reaction.viewed}

    empty = client.react(rng, reaction.state, [], now)
    assert not empty.state.is_bottom_request and empty.state.served_ids == ()
    assert empty.viewed == () and empty.engagement_events == ()


def test_unknown_and_deleted_posts_are_not_shown(world: World) -> None:
    client = ClientBehaviour(world, config=ClientConfig(continue_min=1.0, continue_base=1.0,
                                                        negative_stop_factor=1.0))
    deleted = np.flatnonzero(world.posts.deleted_ms < world.config.end_ms)
    now = int(world.posts.deleted_ms[deleted[0]]) + 1
    feed = [POST_ID_BASE + int(deleted[0]), 42, POST_ID_BASE + world.num_posts + 5]
    reaction = client.react(np.random.default_rng(0), UserState(user_id=2, next_request_ms=now), feed, now)
    assert reaction.viewed == ()


def test_feed_post_ids_orders_by_rank() -> None:
    ranked = {"v": 1, "request_id": "r", "user_id": 1, "status": "ok", "error": None, "model": "m",
              "latency_ms": 3.0, "posts": [
                  {"post_id": 7, "author_id": 1, "rank": 1, "score": 0.5, "in_network": True},
                  {"post_id": 9, "author_id": 2, "rank": 0, "score": 0.9, "in_network": False},
              ]}
    assert feed_post_ids(ranked) == [9, 7]
    assert feed_post_ids({**ranked, "status": "error", "error": "timeout"}) == []
