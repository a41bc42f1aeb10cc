"""The internal record on `<app>-user-events`: a validated event, its kind and when the worker first read it.

Only the worker writes this topic; the envelope keeps the public event as its validated dict, so the
stores see exactly the wire contract's fields.
"""

from dataclasses import dataclass
from typing import Any, Literal

import orjson

UserEventKind = Literal["engagement", "social", "request"]
_KINDS = ("engagement", "social", "request")


@dataclass(frozen=True, slots=True)
class UserEvent:
    kind: UserEventKind
    event: dict[str, Any]
    received_at_ms: float  # wall clock when the public record was read: the start of a request's latency


def encode_user_event(kind: UserEventKind, event: dict[str, Any], received_at_ms: float) -> bytes:
    return orjson.dumps({"kind": kind, "event": event, "received_at_ms": received_at_ms})


def decode_user_event(value: bytes) -> UserEvent:
    """Raises ValueError on anything the worker's own ingest agents would not have written."""
    obj = orjson.loads(value)
    if not isinstance(obj, dict) or obj.get("kind") not in _KINDS or not isinstance(obj.get("event"), dict):
        raise ValueError("not a foryou user-event envelope")
    return UserEvent(obj["kind"], obj["event"], float(obj.get("received_at_ms", 0.0)))
