"""The follower-count change a social-graph event sends to the post log, as the post store applies it."""

import pytest

from agents.envelope import decode_post_log_record
from agents.follower_deltas import follower_delta


@pytest.mark.parametrize(("event_type", "step"), [("follow", 1), ("unfollow", -1)])
def test_a_follow_or_unfollow_moves_the_followed_authors_count_and_names_the_follower(
    event_type: str, step: int
) -> None:
    delta = follower_delta({"type": event_type, "user_id": 3, "target_id": 7})
    assert delta is not None
    author_id, record = delta
    assert author_id == 7
    assert decode_post_log_record(record) == {"type": "follower_delta", "author_id": 7, "delta": step, "follower_id": 3}


@pytest.mark.parametrize("event_type", ["block", "unblock", "mute", "unmute"])
def test_other_social_events_leave_follower_counts_alone(event_type: str) -> None:
    assert follower_delta({"type": event_type, "user_id": 3, "target_id": 7}) is None
