"""Follower-count changes from social-graph events: what the post log learns from a follow or an unfollow.

Every worker's post store keeps each author's follower count and the follow edges (for the mutual-follow
reply boost), fed by `follower_delta` records on the post log; the worker owning the follower's partition
produces them when a follow or unfollow changed its social graph.
"""

from collections.abc import Mapping
from typing import Any, Final

from agents.envelope import encode_follower_delta

_FOLLOW_STEPS: Final[dict[str, int]] = {"follow": 1, "unfollow": -1}


def follower_delta(social_event: Mapping[str, Any]) -> tuple[int, bytes] | None:
    """(followed author, encoded follower_delta record naming the follower) for a follow (+1) or an unfollow
    (-1); None for the other social events (block, mute...), which leave follower counts alone. The caller
    sends it only when the event changed the graph (a repeated follow must not count twice)."""
    step = _FOLLOW_STEPS.get(social_event["type"])
    if step is None:
        return None
    author_id = social_event["target_id"]
    return author_id, encode_follower_delta(author_id, step, follower_id=social_event["user_id"])
