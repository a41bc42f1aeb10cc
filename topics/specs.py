"""The public topics: names, keys, default partition counts and Kafka topic configs.

Partition counts are defaults for topic creation only: the app repartitions every user-keyed input by
`topics.partitioning.partition_for_id`, so producers need not know the count nor use a particular
partitioner. Once the app has state, changing a count moves keys between partitions, so pick it once.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from topics.limits import DEAD_LETTER_MAX_MESSAGE_BYTES, DEAD_LETTER_RETENTION_BYTES, TOPIC_MAX_MESSAGE_BYTES

TWEET_EVENTS: Final = "tweet-events"
ENGAGEMENT_EVENTS: Final = "engagement-events"
SOCIAL_GRAPH_EVENTS: Final = "social-graph-events"
FEED_REQUESTS: Final = "feed-requests"
RANKED_FEEDS: Final = "ranked-feeds"
IMPRESSIONS: Final = "impressions"
DEAD_LETTERS: Final = "dead-letters"

# Enough parallelism for a few workers on a small machine; each partition of a stateful table is one
# RocksDB instance per table, so more partitions cost memory.
DEFAULT_PARTITIONS: Final = 4

_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 60 * _MINUTE_MS
_DAY_MS: Final = 24 * _HOUR_MS


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One public topic. `config` is read-only; pass `dict(spec.config)` to admin clients."""

    name: str
    key: str  # what the record key holds, for people
    key_field: str | None  # the value field whose id the key carries; None when keys are not ids
    partitions: int
    config: Mapping[str, str] = field(hash=False)  # a read-only mapping cannot be hashed
    doc: str = ""


def _config(*, retention_ms: int, segment_ms: int, max_message_bytes: int) -> Mapping[str, str]:
    # Retention only deletes closed segments, so short-lived topics need short segments too.
    return MappingProxyType(
        {
            "cleanup.policy": "delete",
            "retention.ms": str(retention_ms),
            "segment.ms": str(segment_ms),
            "max.message.bytes": str(max_message_bytes),
            "message.timestamp.type": "CreateTime",
        }
    )


_EVENTS_CONFIG: Final = _config(retention_ms=7 * _DAY_MS, segment_ms=_DAY_MS, max_message_bytes=TOPIC_MAX_MESSAGE_BYTES)
# Requests and answers are worthless after the client's timeout; an hour keeps them for debugging.
_REQUEST_REPLY_CONFIG: Final = _config(
    retention_ms=_HOUR_MS, segment_ms=10 * _MINUTE_MS, max_message_bytes=TOPIC_MAX_MESSAGE_BYTES
)
# Dead letters wait for a person; they hold the original value verbatim plus context headers.
_DEAD_LETTERS_CONFIG: Final = MappingProxyType(
    {
        **_config(retention_ms=30 * _DAY_MS, segment_ms=_DAY_MS, max_message_bytes=DEAD_LETTER_MAX_MESSAGE_BYTES),
        # Bounded in bytes too: a flood of bad records costs at most this much disk (oldest segments go first).
        "retention.bytes": str(DEAD_LETTER_RETENTION_BYTES),
        # Short segments, so that the byte bound is enforced in steps of at most this size.
        "segment.bytes": str(DEAD_LETTER_RETENTION_BYTES // 8),
    }
)

TWEET_EVENTS_SPEC: Final = TopicSpec(
    name=TWEET_EVENTS,
    key="post_id as decimal UTF-8",
    key_field="post_id",
    partitions=DEFAULT_PARTITIONS,
    config=_EVENTS_CONFIG,
    doc="Post creations and deletions.",
)
ENGAGEMENT_EVENTS_SPEC: Final = TopicSpec(
    name=ENGAGEMENT_EVENTS,
    key="user_id (the engaging user) as decimal UTF-8",
    key_field="user_id",
    partitions=DEFAULT_PARTITIONS,
    config=_EVENTS_CONFIG,
    doc="One action (one of topics.actions.ACTIONS: the 19 Phoenix heads, then the optional ones) of a user on a post.",
)
SOCIAL_GRAPH_EVENTS_SPEC: Final = TopicSpec(
    name=SOCIAL_GRAPH_EVENTS,
    key="user_id (the acting user) as decimal UTF-8",
    key_field="user_id",
    partitions=DEFAULT_PARTITIONS,
    config=_EVENTS_CONFIG,
    doc="Follows, blocks, mutes and muted keywords, and their reversals.",
)
FEED_REQUESTS_SPEC: Final = TopicSpec(
    name=FEED_REQUESTS,
    key="user_id (the requesting user) as decimal UTF-8",
    key_field="user_id",
    partitions=DEFAULT_PARTITIONS,
    config=_REQUEST_REPLY_CONFIG,
    doc="Requests for a user's For You feed; each is answered on ranked-feeds with the same request_id.",
)
RANKED_FEEDS_SPEC: Final = TopicSpec(
    name=RANKED_FEEDS,
    key="user_id as decimal UTF-8",
    key_field="user_id",
    partitions=DEFAULT_PARTITIONS,
    config=_REQUEST_REPLY_CONFIG,
    doc="The answer to each feed request: the ranked posts, or an error.",
)
IMPRESSIONS_SPEC: Final = TopicSpec(
    name=IMPRESSIONS,
    key="user_id (the viewer) as decimal UTF-8",
    key_field="user_id",
    partitions=DEFAULT_PARTITIONS,
    config=_EVENTS_CONFIG,
    doc="One record per post served in a ranked feed; training data for the ranker.",
)
DEAD_LETTERS_SPEC: Final = TopicSpec(
    name=DEAD_LETTERS,
    key="the original record's key, verbatim (may be null or any bytes)",
    key_field=None,
    # One partition: dead letters are rare and read in order by people and the CLI.
    partitions=1,
    config=_DEAD_LETTERS_CONFIG,
    doc="Records the app could not accept: original key and value verbatim, context in foryou.dlq.* headers.",
)

TOPICS: Final[tuple[TopicSpec, ...]] = (
    TWEET_EVENTS_SPEC,
    ENGAGEMENT_EVENTS_SPEC,
    SOCIAL_GRAPH_EVENTS_SPEC,
    FEED_REQUESTS_SPEC,
    RANKED_FEEDS_SPEC,
    IMPRESSIONS_SPEC,
    DEAD_LETTERS_SPEC,
)
TOPIC_BY_NAME: Final[Mapping[str, TopicSpec]] = MappingProxyType({spec.name: spec for spec in TOPICS})
