"""The feed request as the pipeline sees it, before and after query hydration."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from stores.records import ActionEntry, UserFeatures
from streams.config import ResultsConfig


@dataclass(frozen=True, slots=True)
class FeedQuery:
    user_id: int
    request_id: str
    max_results: int
    now_ms: int
    seen_ids: frozenset[int] = frozenset()
    served_ids: frozenset[int] = frozenset()  # the request's, merged with the store's by a query hydrator
    in_network_only: bool = False
    is_bottom_request: bool = False
    country: str | None = None
    language: str | None = None
    explain: bool = False

    # Query hydrators. `user_features` stays None when it could not be read, and the safety filters then
    # fail closed (see streams.filters.author_socialgraph).
    action_sequence: tuple[ActionEntry, ...] = ()
    user_features: UserFeatures | None = None

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"feed request: {name} must be an integer, got {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"feed request: {name} must be a boolean, got {value!r}")
    return value


def _opt_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"feed request: {name} must be a string or null, got {value!r}")
    return value


def _ids(value: Any, name: str) -> frozenset[int]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"feed request: {name} must be a list of integers")
    return frozenset(_int(v, name) for v in value)


def parse_feed_request(value: Mapping[str, Any], *, now_ms: int, results: ResultsConfig) -> FeedQuery:
    """A `feed-requests` value (already JSON-decoded) as a FeedQuery.

    Only v, request_id and user_id are required. A missing max_results takes the configured default; one
    above the configured maximum is clamped to it (a client asking for too much still gets a feed).
    Raises ValueError with the offending field on malformed input.
    """
    if value.get("v") != 1:
        raise ValueError(f"feed request: unsupported version v={value.get('v')!r}")
    request_id = value.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("feed request: request_id must be a non-empty string")
    max_results = value.get("max_results")
    if max_results is None:
        max_results = results.default_size
    elif _int(max_results, "max_results") < 1:
        raise ValueError(f"feed request: max_results must be >= 1, got {max_results}")
    return FeedQuery(
        user_id=_int(value.get("user_id"), "user_id"),
        request_id=request_id,
        max_results=min(max_results, results.max_size),
        now_ms=now_ms,
        seen_ids=_ids(value.get("seen_ids"), "seen_ids"),
        served_ids=_ids(value.get("served_ids"), "served_ids"),
        in_network_only=_bool(value.get("in_network_only", False), "in_network_only"),
        is_bottom_request=_bool(value.get("is_bottom_request", False), "is_bottom_request"),
        country=_opt_str(value.get("country"), "country"),
        language=_opt_str(value.get("language"), "language"),
        explain=_bool(value.get("explain", False), "explain"),
    )
