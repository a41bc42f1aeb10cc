"""The records of the worker's two internal topics, and their strict decoding.

`<app>-user-events`: a validated user event, its kind and when the worker first read it. The envelope keeps
the public event as its validated dict, so the stores see exactly the wire contract's fields. One kind is the
worker's own: "expire" (`{"v": 1, "user_id"}`), sent by the idle-user sweep (agents.expiry) so that the
user's partition, the only place its tables may be written, drops what has gone idle.

`<app>-post-log`: a validated tweet event (the `tweet-events` object), or a follower-count delta
`{"type": "follower_delta", "author_id", "delta": +1|-1, "follower_id"}` written by the user-events agent
(follower_id optional: older deltas lack it).

Only the worker writes these topics, but anyone who can reach the broker can too: each record is checked
as strictly as a public one (the same decoders), and what fails raises `InvalidRecord` with a reason, so
the consumer dead-letters it and goes on. A record that decodes is safe to apply: the stores never see a
missing field or a wrong type.
"""

from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from topics.schemas import Engagement, FeedRequest, SocialGraphEvent
from topics.validation import (
    InvalidRecord,
    engagement_from_object,
    feed_request_from_object,
    social_graph_event_from_object,
    tweet_event_from_object,
)

UserEventKind = Literal["engagement", "social", "request", "expire"]


def _expiry_from_object(event: dict[str, Any]) -> None:
    """`{"v": 1, "user_id"}`: the worker's own sweep asks the user's partition to drop idle state."""
    user_id = event.get("user_id")
    if type(user_id) is not int or not 0 < user_id < 2**63:
        raise InvalidRecord("wrong_type", "user_id: expected an id")


_DECODERS: Final = {
    "engagement": engagement_from_object,
    "social": social_graph_event_from_object,
    "request": feed_request_from_object,
    "expire": _expiry_from_object,
}
# Bigger than any envelope the ingest agents write: the largest public record plus a few fields.
MAX_ENVELOPE_BYTES: Final = 512 * 1024
FOLLOWER_DELTA: Final = "follower_delta"


@dataclass(frozen=True, slots=True)
class UserEvent:
    kind: UserEventKind
    event: dict[str, Any]
    received_at_ms: float  # wall clock when the public record was read: the start of a request's latency
    # The event as its decoder returned it (None for "expire"): a request is parsed once, here.
    record: Engagement | SocialGraphEvent | FeedRequest | None = None
    # A request's public record timestamp (when the client sent it): its TTL counts from here. Envelopes
    # written before this field existed carry none: received_at_ms stands in.
    requested_at_ms: float | None = None


def encode_user_event(
    kind: UserEventKind, event: dict[str, Any], received_at_ms: float, requested_at_ms: float | None = None
) -> bytes:
    envelope: dict[str, Any] = {"kind": kind, "event": event, "received_at_ms": received_at_ms}
    if requested_at_ms is not None:
        envelope["requested_at_ms"] = requested_at_ms
    return orjson.dumps(envelope)


def _parse(value: bytes | None) -> dict[str, Any]:
    if not value:
        raise InvalidRecord("empty", "the value is null or empty")
    if len(value) > MAX_ENVELOPE_BYTES:
        raise InvalidRecord("too_large", f"{len(value)} bytes, more than the bound of {MAX_ENVELOPE_BYTES}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord("not_json", str(exc)[:200]) from None
    if type(obj) is not dict:
        raise InvalidRecord("not_object", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def decode_user_event(value: bytes | None) -> UserEvent:
    """The envelope, its event checked by the public topic's decoder; raises InvalidRecord."""
    obj = _parse(value)
    kind = obj.get("kind")
    decoder = _DECODERS.get(kind) if type(kind) is str else None
    if decoder is None:
        raise InvalidRecord("bad_value", f"kind: expected one of {sorted(_DECODERS)}")
    received_at_ms = obj.get("received_at_ms", 0.0)
    if type(received_at_ms) not in (int, float) or not 0 <= received_at_ms < 2**53:
        raise InvalidRecord("wrong_type", "received_at_ms: expected a non-negative number")
    requested_at_ms = obj.get("requested_at_ms")
    if requested_at_ms is not None and (type(requested_at_ms) not in (int, float) or not 0 <= requested_at_ms < 2**53):
        raise InvalidRecord("wrong_type", "requested_at_ms: expected a non-negative number")
    event = obj.get("event")
    if type(event) is not dict:
        raise InvalidRecord("wrong_type", "event: expected an object")
    record = decoder(event)  # raises InvalidRecord; the dict goes on too (it is what the stores read)
    requested = None if requested_at_ms is None else float(requested_at_ms)
    return UserEvent(kind, event, float(received_at_ms), record, requested)


def encode_follower_delta(author_id: int, delta: int, follower_id: int | None = None) -> bytes:
    """The delta, and who followed or unfollowed (each worker's post store keeps the follow edges)."""
    record: dict[str, Any] = {"type": FOLLOWER_DELTA, "author_id": author_id, "delta": delta}
    if follower_id is not None:
        record["follower_id"] = follower_id
    return orjson.dumps(record)


def decode_post_log_record(value: bytes | None) -> dict[str, Any]:
    """A post-log record as the post store applies it (a tweet event or a follower delta)."""
    obj = _parse(value)
    if obj.get("type") == FOLLOWER_DELTA:
        author_id, delta = obj.get("author_id"), obj.get("delta")
        if type(author_id) is not int or not 0 < author_id < 2**63:
            raise InvalidRecord("wrong_type", "author_id: expected an id")
        if type(delta) is not int or delta not in (-1, 1):
            raise InvalidRecord("bad_value", "delta: expected 1 or -1")
        follower_id = obj.get("follower_id")  # absent in deltas written before follow edges were kept
        if follower_id is not None and (type(follower_id) is not int or not 0 < follower_id < 2**63):
            raise InvalidRecord("wrong_type", "follower_id: expected an id")
        return obj
    # Re-encoded from the validated record: exactly the fields the store reads, nothing else.
    return tweet_event_from_object(obj).to_dict()
