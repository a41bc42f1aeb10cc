"""JSON Schema (draft 2020-12) of every public topic's value, derived from the record types of `topics.schemas`.

The published files under topics/json-schemas/ are this module's output (`foryou json-schemas` writes them,
a test checks they are current), so non-Python producers and consumers can validate against the same
contract. A schema states each field's JSON type, its bounds (the `Bounds` metadata), which fields may be
omitted (nullable ones and those with a wire default) and `"v": 1`; unknown fields are allowed, as the
decoders ignore them. The rules between fields (a social-graph event's target_id or keyword by its type,
an error message exactly when status is "error") are stated in each field's description only: the
decoders in `topics.validation` remain the full check.
"""

import dataclasses
import inspect
import json
import types
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin, get_type_hints

from topics.limits import SCHEMA_VERSION
from topics.schemas import (
    Bounds,
    Engagement,
    FeedRequest,
    Impression,
    RankedFeed,
    SocialGraphEvent,
    TweetCreate,
    TweetDelete,
    WireDefault,
    WireName,
)
from topics.specs import (
    ENGAGEMENT_EVENTS,
    FEED_REQUESTS,
    IMPRESSIONS,
    RANKED_FEEDS,
    SOCIAL_GRAPH_EVENTS,
    TOPIC_BY_NAME,
    TWEET_EVENTS,
)

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
# The record types of each public topic with a JSON value (dead-letters carry the original bytes verbatim).
RECORD_TYPES: Final[Mapping[str, tuple[type, ...]]] = {
    TWEET_EVENTS: (TweetCreate, TweetDelete),
    ENGAGEMENT_EVENTS: (Engagement,),
    SOCIAL_GRAPH_EVENTS: (SocialGraphEvent,),
    FEED_REQUESTS: (FeedRequest,),
    RANKED_FEEDS: (RankedFeed,),
    IMPRESSIONS: (Impression,),
}
_SCALARS: Final[Mapping[type, str]] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _bounds(schema: dict[str, Any], bounds: Bounds) -> None:
    is_string = schema.get("type") == "string"
    for key, value in (
        ("minimum", bounds.minimum),
        ("maximum", bounds.maximum),
        ("minLength" if is_string else "minItems", bounds.min_length),
        ("maxLength" if is_string else "maxItems", bounds.max_length),
    ):
        if value is not None:
            schema[key] = value
    if bounds.choices is not None:
        schema["enum"] = list(bounds.choices)


def _is_optional(hint: Any) -> bool:
    """A field producers may omit: nullable, or annotated with a wire default."""
    if get_origin(hint) is Annotated:
        return any(isinstance(meta, WireDefault) for meta in hint.__metadata__) or _is_optional(get_args(hint)[0])
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _wire_name(field: dataclasses.Field[Any], hint: Any) -> str:
    if get_origin(hint) is Annotated:
        for meta in hint.__metadata__:
            if isinstance(meta, WireName):
                return meta.key
    return field.name


class _Builder:
    """Schemas of types, collecting nested record types (explain objects, ranked posts) under $defs."""

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of(self, hint: Any) -> dict[str, Any]:
        origin = get_origin(hint)
        if origin is Annotated:
            base, *metadata = get_args(hint)
            schema = self.of(base)
            for meta in metadata:
                if isinstance(meta, Bounds):
                    _bounds(schema, meta)
            return schema
        if origin in (Union, types.UnionType):
            members = [arg for arg in get_args(hint) if arg is not type(None)]
            if len(members) != 1:
                raise TypeError(f"only X | None unions are on the wire, got {hint!r}")
            return {"anyOf": [self.of(members[0]), {"type": "null"}]}
        if origin is Literal:
            return {"type": "string", "enum": list(get_args(hint))}
        if origin is tuple:
            item, ellipsis = get_args(hint)
            assert ellipsis is Ellipsis, f"only tuple[X, ...] is on the wire, got {hint!r}"
            return {"type": "array", "items": self.of(item)}
        if origin is dict:
            key, value = get_args(hint)
            assert key is str, f"JSON object keys are strings, got {hint!r}"
            return {"type": "object", "additionalProperties": self.of(value)}
        if hint in _SCALARS:
            return {"type": _SCALARS[hint]}
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            name = hint.__name__
            if name not in self.defs:
                self.defs[name] = {}  # reserved first: a record type may be reached again while building it
                self.defs[name] = self.record(hint)
            return {"$ref": f"#/$defs/{name}"}
        raise TypeError(f"no JSON Schema for {hint!r}")

    def record(self, record_type: type, *, top_level: bool = False) -> dict[str, Any]:
        hints = get_type_hints(record_type, include_extras=True)
        properties: dict[str, Any] = {}
        required: list[str] = []
        if top_level:
            properties["v"] = {"const": SCHEMA_VERSION}
            required.append("v")
        wire_type = getattr(record_type, "wire_type", None)
        if wire_type is not None:
            properties["type"] = {"const": wire_type}
            required.append("type")
        for field in dataclasses.fields(record_type):
            hint = hints[field.name]
            name = _wire_name(field, hint)
            properties[name] = self.of(hint)
            if not _is_optional(hint):
                required.append(name)
        return {
            "type": "object",
            "description": inspect.cleandoc(record_type.__doc__ or ""),
            "properties": properties,
            "required": required,
            "additionalProperties": True,
        }


def topic_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of one public topic's values."""
    builder = _Builder()
    records = [builder.record(record_type, top_level=True) for record_type in RECORD_TYPES[topic]]
    body: dict[str, Any] = records[0] if len(records) == 1 else {"oneOf": records}
    schema: dict[str, Any] = {"$schema": DIALECT, "title": f"{topic} value, v{SCHEMA_VERSION}", **body}
    schema["description"] = "\n\n".join(filter(None, (TOPIC_BY_NAME[topic].doc, body.get("description"))))
    if builder.defs:
        schema["$defs"] = dict(sorted(builder.defs.items()))
    return schema


def schema_files() -> dict[str, bytes]:
    """File name -> its text (indented JSON, one trailing newline), for every public topic with a JSON value."""
    return {
        f"{topic}.json": json.dumps(topic_schema(topic), indent=2, ensure_ascii=False).encode() + b"\n"
        for topic in RECORD_TYPES
    }
