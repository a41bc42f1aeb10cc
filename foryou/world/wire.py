"""Wire values the world produces, built from the contract's record types (`topics.schemas`).

Keys are the decimal id as UTF-8 bytes: post_id for tweet-events, user_id for engagement-events,
social-graph-events, feed-requests and impressions.
"""

from typing import Any, NamedTuple

from topics.schemas import Engagement, SocialGraphEvent, TweetDelete

WireValue = dict[str, Any]

TWEET_EVENTS = "tweet-events"
ENGAGEMENT_EVENTS = "engagement-events"
SOCIAL_GRAPH_EVENTS = "social-graph-events"
FEED_REQUESTS = "feed-requests"
SURFACE_HOME_FOR_YOU = "home_for_you"


class WorldEvent(NamedTuple):
    """One record for a topic. `time_ms` orders the stream (it is the wire time, except for deletes emitted
    before their create, whose time_ms precedes the create while deleted_at_ms follows it)."""

    time_ms: int
    topic: str
    key: bytes
    value: WireValue


def wire_key(entity_id: int) -> bytes:
    return str(entity_id).encode()


def delete_value(post_id: int, author_id: int, deleted_at_ms: int) -> WireValue:
    return TweetDelete(post_id=post_id, author_id=author_id, deleted_at_ms=deleted_at_ms).to_dict()


def social_value(kind: str, user_id: int, ts_ms: int, target_id: int | None = None,
                 keyword: str | None = None) -> WireValue:
    return SocialGraphEvent(type=kind, user_id=user_id, ts_ms=ts_ms, target_id=target_id, keyword=keyword).to_dict()


def engagement_value(user_id: int, post_id: int, author_id: int, action: str, ts_ms: int,
                     dwell_ms: int | None = None, surface: str = SURFACE_HOME_FOR_YOU) -> WireValue:
    return Engagement(
        user_id=user_id, post_id=post_id, author_id=author_id, action=action, surface=surface, ts_ms=ts_ms,
        dwell_ms=dwell_ms,
    ).to_dict()
