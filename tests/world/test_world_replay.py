"""Replay rebasing: world time moved to wall time by one constant, old posts left out, order kept."""

import numpy as np
import pytest

from foryou.world.config import HOUR_MS, preset
from foryou.world.replay import (
    TimeShift,
    merge_by_time,
    rebase_events,
    rebase_value,
    replay_events,
    world_end_ms,
)
from foryou.world.wire import ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS, WorldEvent, engagement_value
from foryou.world.world import World

NOW = 1_800_000_000_000


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(preset("tiny", seed=3, num_users=80, num_posts=600))


def test_shift_maps_the_anchor_and_back() -> None:
    shift = TimeShift.anchor(1_000, NOW)
    assert shift.to_wall(1_000) == NOW
    assert shift.to_wall(400) == NOW - 600
    assert shift.to_world(NOW + 25) == 1_025
    assert shift.to_world(float(NOW) + 0.7) == 1_000


def test_rebase_moves_only_timestamps() -> None:
    shift = TimeShift(10_000)
    create = {"v": 1, "type": "create", "post_id": 5, "author_id": 2, "created_at_ms": 100,
              "conversation_id": None, "video_duration_ms": 3_000}
    delete = {"v": 1, "type": "delete", "post_id": 5, "author_id": 2, "deleted_at_ms": 250}
    social = {"v": 1, "type": "follow", "user_id": 1, "target_id": 2, "keyword": None, "ts_ms": 7}
    assert rebase_value(create, shift) == {**create, "created_at_ms": 10_100}
    assert rebase_value(delete, shift) == {**delete, "deleted_at_ms": 10_250}
    assert rebase_value(social, shift) == {**social, "ts_ms": 10_007}
    assert create["created_at_ms"] == 100  # the input is not modified


def test_replay_ends_now_and_keeps_stream_order(world: World) -> None:
    shift = TimeShift.anchor(world_end_ms(world), NOW)
    events = list(replay_events(world, shift))
    assert len(events) == world.event_count()
    times = [event.time_ms for event in events]
    assert times == sorted(times)
    assert max(times) == NOW
    created = [e.value["created_at_ms"] for e in events if e.value.get("type") == "create"]
    assert max(created) == NOW
    assert min(created) == int(world.posts.created_ms[0]) + shift.offset_ms


def test_window_leaves_out_old_posts_and_their_deletes(world: World) -> None:
    shift = TimeShift.anchor(world_end_ms(world), NOW)
    window = 12 * HOUR_MS
    events = list(replay_events(world, shift, window))
    creates = [e.value for e in events if e.topic == TWEET_EVENTS and e.value["type"] == "create"]
    deletes = [e.value for e in events if e.topic == TWEET_EVENTS and e.value["type"] == "delete"]
    expected = int((world.posts.created_ms >= world_end_ms(world) - window).sum())
    assert len(creates) == expected
    assert all(v["created_at_ms"] >= NOW - window for v in creates)
    kept = {v["post_id"] for v in creates}
    assert deletes and all(v["post_id"] in kept for v in deletes)
    social = sum(e.topic == SOCIAL_GRAPH_EVENTS for e in events)
    assert social == sum(e.topic == SOCIAL_GRAPH_EVENTS for e in world.events())


def test_history_events_are_rebased_and_merged_in_time_order() -> None:
    shift = TimeShift(1_000)
    engagements = [engagement_value(4, 10, 2, "favorite", 50), engagement_value(9, 11, 2, "reply", 20)]
    rebased = list(rebase_events(ENGAGEMENT_EVENTS, engagements, shift))
    assert [(e.key, e.time_ms, e.value["ts_ms"]) for e in rebased] == [(b"4", 1_050, 1_050), (b"9", 1_020, 1_020)]
    other = [WorldEvent(1_030, TWEET_EVENTS, b"1", {}), WorldEvent(1_050, TWEET_EVENTS, b"2", {})]
    merged = merge_by_time(other, rebased)
    assert [e.time_ms for e in merged] == [1_020, 1_030, 1_050, 1_050]
    assert merged[2].topic == TWEET_EVENTS  # equal times keep stream order


def test_world_end_is_the_last_post(world: World) -> None:
    assert world_end_ms(world) == int(np.max(world.posts.created_ms))
