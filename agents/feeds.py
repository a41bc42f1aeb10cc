"""Answering a feed request: run the configured pipeline, send exactly one answer, then the side effects.

Exactly one answer across crashes: a request id is remembered as answered only once the broker has the
answer (`send_answer` returns when it is delivered), so a request redelivered after a crash before that is
answered then; a request forwarded twice (its ingest crashed after forwarding, before committing) is
recognised by its id and not answered again.

What a request sees (README "Reliability"): the engagements and graph changes of its user that came
before it on the user's partition, exactly: `snapshot` reads them when the request is dispatched, and the
request ranks from that snapshot while the worker goes on applying later events (which the next request
sees). Served history is read when the request runs: one user's requests run one after another
(agents.request_scheduler), so each sees what the previous ones served.

Plain logic over injected senders and stores, so it is tested without Kafka; the app provides the Faust
tables and topic senders.
"""

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass

import orjson

from agents import metrics
from foryou.settings import Settings
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.records import ActionEntry, UserFeatures
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import ForYouConfig
from streams.for_you import for_you_pipeline, reverse_chron_pipeline
from streams.ports import EngagementCountsStore, RankerPort
from streams.query import feed_query
from topics.limits import MAX_ERROR_CHARS
from topics.schemas import FeedRequest, Impression, RankedFeed

log = logging.getLogger(__name__)

# Returns once the broker has the answer (and raises only if it never will: the request is then not answered).
AnswerSender = Callable[[int, RankedFeed], Awaitable[None]]
ImpressionSender = Callable[[int, list[Impression]], Awaitable[None] | None]

# Request ids remembered per user to recognise a redelivered request (after a crash between answering and
# committing): enough for any client's in-flight requests.
REMEMBERED_REQUESTS = 64


def merge_answered(held: bytes, incoming: bytes) -> bytes:
    """The answered-requests value that forgets neither side's ids (agents/tables.py: a changelog replaying an
    older value over a newer held one), in order of first appearance, the last `REMEMBERED_REQUESTS` of them."""
    ids = list(dict.fromkeys(orjson.loads(incoming) + orjson.loads(held)))
    return orjson.dumps(ids[-REMEMBERED_REQUESTS:])


def error_answer(request_id: str, user_id: int | None, error: str, received_ms: float) -> RankedFeed:
    """The answer to a request that gets no feed; `user_id` None when the request held no readable one."""
    return RankedFeed(
        request_id=request_id,
        user_id=user_id,
        status="error",
        error=error[:MAX_ERROR_CHARS],
        latency_ms=max(0.0, time.time() * 1000 - received_ms),
    )


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    """A user's engagements and graph as of a request's place in the user's events."""

    user_id: int
    actions: list[ActionEntry]
    features: UserFeatures


# The snapshot of the request the current task answers (each request runs in a task of its own).
_snapshot: contextvars.ContextVar[UserSnapshot | None] = contextvars.ContextVar("user_snapshot", default=None)


class UserState:
    """The pipeline's view of one user's partitioned state (the `UserStateStore` port): the request's
    snapshot when it has one (agents.app's requests), the tables otherwise (simulations, tests)."""

    def __init__(self, actions: UserActionSequences, graph: SocialGraph, served: ServedHistory) -> None:
        self.actions = actions
        self.graph = graph
        self.served = served

    def snapshot(self, user_id: int) -> UserSnapshot:
        return UserSnapshot(user_id, self.actions.get(user_id), self.graph.features(user_id))

    def action_sequence(self, user_id: int) -> list[ActionEntry]:
        snapshot = _snapshot.get()
        if snapshot is not None and snapshot.user_id == user_id:
            return snapshot.actions
        return self.actions.get(user_id)

    def user_features(self, user_id: int) -> UserFeatures:
        snapshot = _snapshot.get()
        if snapshot is not None and snapshot.user_id == user_id:
            return snapshot.features
        return self.graph.features(user_id)

    def served_ids(self, user_id: int) -> set[int]:
        return self.served.served_ids(user_id)


class FeedSideEffects:
    """The `FeedSink` port: served history into the user's table, impressions onto their topic."""

    def __init__(self, served: ServedHistory, send_impressions: ImpressionSender) -> None:
        self.served = served
        self.send_impressions = send_impressions

    def record_served(self, user_id: int, post_ids: Sequence[int], ts_ms: int) -> None:
        self.served.record(user_id, post_ids, ts_ms)

    def publish_impressions(self, impressions: list[Impression]) -> Awaitable[None] | None:
        if impressions:
            return self.send_impressions(impressions[0].user_id, impressions)
        return None


class FeedService:
    def __init__(
        self,
        *,
        settings: Settings,
        config: ForYouConfig,
        post_store: PostStore,
        counts: EngagementCountsStore,
        ranker: RankerPort | None,
        user_actions: UserActionSequences,
        social_graph: SocialGraph,
        served_history: ServedHistory,
        answered: MutableMapping[int, bytes],
        send_answer: AnswerSender,
        send_impressions: ImpressionSender,
    ) -> None:
        self.config = config
        self.settings = settings
        self.state = state = UserState(user_actions, social_graph, served_history)
        sink = FeedSideEffects(served_history, send_impressions)
        if settings.policy == "phoenix":
            assert ranker is not None, "the phoenix policy needs a ranker"
            self.pipeline = for_you_pipeline(
                config=self.config, post_store=post_store, user_state=state, counts=counts, ranker=ranker, sink=sink
            )
        else:
            self.pipeline = reverse_chron_pipeline(
                config=self.config, post_store=post_store, user_state=state, sink=sink
            )
        self.answered = answered
        self.send_answer = send_answer

    def already_answered(self, user_id: int, request_id: str) -> bool:
        raw = self.answered.get(user_id)
        return raw is not None and request_id in orjson.loads(raw)

    def _remember(self, user_id: int, request_id: str) -> None:
        raw = self.answered.get(user_id)
        recent = orjson.loads(raw) if raw is not None else []
        recent.append(request_id)
        self.answered[user_id] = orjson.dumps(recent[-REMEMBERED_REQUESTS:])

    def expired(self, requested_at_ms: float, now_ms: float) -> str | None:
        """The reason a request is too old to run (its client has stopped waiting), or None."""
        waited_ms = now_ms - requested_at_ms
        if waited_ms <= self.settings.request_ttl_ms:
            return None
        return f"expired: the request waited {waited_ms / 1000:.1f}s, more than {self.settings.request_ttl_ms}ms"

    async def reject(self, request: FeedRequest, received_ms: float, reason: str, error: str) -> None:
        """Answer at once with an error (`reason`: overloaded, expired), unless the id was answered before."""
        user_id, request_id = request.user_id, request.request_id
        if self.already_answered(user_id, request_id):
            metrics.duplicate_requests.inc()
            return
        metrics.shed_requests.labels(reason).inc()
        if reason == "expired":
            metrics.expired_requests.inc()
        await self.send_answer(user_id, error_answer(request_id, user_id, error, received_ms))
        self._remember(user_id, request_id)

    async def answer(
        self, request: FeedRequest, received_ms: float, *, requested_at_ms: float | None = None,
        snapshot: UserSnapshot | None = None,
    ) -> None:
        """Exactly one answer per request id: a ranked feed, or an error with its reason. The TTL is checked
        now, as the request is about to run (after the duplicate check: an answered request stays answered)."""
        user_id, request_id = request.user_id, request.request_id
        if self.already_answered(user_id, request_id):
            metrics.duplicate_requests.inc()
            return
        expired = self.expired(requested_at_ms if requested_at_ms is not None else received_ms, time.time() * 1000)
        if expired is not None:
            await self.reject(request, received_ms, "expired", expired)
            return
        if snapshot is not None:
            _snapshot.set(snapshot)  # this task's own context: other requests keep theirs
        result = None
        try:
            query = feed_query(request, now_ms=int(time.time() * 1000), default_size=self.config.results.default_size)
            result = await self.pipeline.execute(query)
            latency_ms = max(0.0, time.time() * 1000 - received_ms)
            answer = result.to_record(request_id, user_id, latency_ms)
        except Exception as exc:  # the requester is owed an answer whatever went wrong
            log.exception("feed request %s for user %d failed", request_id, user_id)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            answer = error_answer(request_id, user_id, reason, received_ms)
            result = None
        await self.send_answer(user_id, answer)
        # Only now: a crash before this line leaves the request unanswered in the table, so it is redelivered
        # and answered; a crash after it (before the offset commit) finds it answered.
        self._remember(user_id, request_id)
        metrics.feed_latency.observe(answer.latency_ms / 1000)
        if result is not None:
            await result.side_effects()
