"""The feed request as the pipeline sees it, before and after query hydration."""

from dataclasses import dataclass, fields

from stores.records import ActionEntry, UserFeatures
from topics.schemas import FeedRequest


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


def feed_query(request: FeedRequest, *, now_ms: int, default_size: int) -> FeedQuery:
    """The pipeline's query for a request the wire contract's decoder accepted (`topics.validation` checked
    every field and its bounds, so nothing is parsed again here). A request without max_results gets the
    preset's `default_size`."""
    return FeedQuery(
        user_id=request.user_id,
        request_id=request.request_id,
        max_results=default_size if request.max_results is None else request.max_results,
        now_ms=now_ms,
        seen_ids=frozenset(request.seen_ids),
        served_ids=frozenset(request.served_ids),
        in_network_only=request.in_network_only,
        is_bottom_request=request.is_bottom_request,
        country=request.country,
        language=request.language,
        explain=request.explain,
    )
