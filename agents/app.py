"""The foryou Faust app: the one module that wires topics to stores and the feed pipeline.

Flow (see README "How state is partitioned"):

    tweet-events ──validate──> <app>-post-log ──every worker──> post-store replica + post-embedding index
    engagement-events ─┐
    social-graph-events├validate, re-key by user──> <app>-user-events ──> user tables ─┐
    feed-requests ─────┘                                      └──> feed pipeline ──> ranked-feeds, impressions
    anything malformed ──> dead-letters (original key and bytes, reason in headers)

Delivery (README "Reliability"): an input event is acknowledged, so its offset can be committed, only once
the broker has every record produced from it; a feed request waits at ingest until the engagements and
graph changes acknowledged before it are forwarded (`agents.order_barrier`); its id is remembered as answered
only once the answer is delivered. No broker call blocks the event loop (`agents.forwarder`).

User events are processed a batch at a time (`agents.user_tables`): each user's state is written once per
batch, with one changelog record per key, and the batch is acknowledged once those and its outputs are
delivered. Feed requests run beside it (`agents.request_scheduler`): bounded, concurrent across users, in
order per user, each from a snapshot of its user's state at its place in the user's events.

Bad records (README "Bad records and bounds"): every consumer (the four ingest agents, the user-events
agent, the post replica, the tables' changelog recovery) dead-letters what it cannot decode or apply and
goes on.

Agents are thin: validation is `topics.validation`, state logic `stores`, ranking `streams`/`scoring`.
"""

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust
import orjson
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from agents import metrics
from agents.admin_clients import committed_reader
from agents.batching import event_batches
from agents.consumer import install as use_gap_safe_consumer
from agents.dead_letters import DeadLetters
from agents.envelope import UserEvent, UserEventKind, decode_user_event, encode_user_event
from agents.expiry import expired_users, forget_answered, users_without_state
from agents.feeds import FeedService, UserState, error_answer, merge_answered
from agents.follower_deltas import follower_delta
from agents.forwarder import Delivery
from agents.loop_lag import LoopLag
from agents.ops import Operations, post_snapshot, user_snapshot
from agents.order_barrier import BrokerOffsets, IngestProgress, OrderBarrier
from agents.request_scheduler import RequestScheduler
from agents.runtime import Runtime
from agents.simulate import Simulations, new_simulator, register_pages
from agents.tables import CheckedTable, CheckValue, check_answered_value, guarded_table
from agents.topology import (
    ANSWERED_TABLE,
    USER_TABLES,
    admin_client,
    changelog_topic,
    ensure_topics,
    partition_count,
    post_log_topic,
    user_events_topic,
)
from agents.user_tables import BatchedForwarder, Flush, UserTable, UserTables
from agents.watchdog import StallWatchdog
from foryou.settings import Settings, faust_broker_config
from stores import action_sequences as actions_store
from stores import served_history as served_store
from stores import social_graph as graph_store
from stores.action_sequences import UserActionSequences
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from streams.config import ConfigError, ForYouConfig, load_config
from topics.dead_letters import PROCESSING_ERROR
from topics.partitioning import partition_for_id
from topics.schemas import FeedRequest, Impression, RankedFeed, encode, key_bytes
from topics.specs import (
    ENGAGEMENT_EVENTS,
    FEED_REQUESTS,
    IMPRESSIONS,
    RANKED_FEEDS,
    SOCIAL_GRAPH_EVENTS,
    TWEET_EVENTS,
)
from topics.validation import (
    InvalidRecord,
    decode_engagement,
    decode_feed_request,
    decode_social_graph_event,
    decode_tweet_event,
)

log = logging.getLogger(__name__)
settings = Settings()


def _pipeline_config() -> ForYouConfig:
    """The pipeline's configuration; a bad one stops the worker before it starts, every problem listed."""
    try:
        return load_config()
    except ConfigError as error:
        raise SystemExit(str(error)) from error


config = _pipeline_config()

app = faust.App(
    settings.app_id,
    **faust_broker_config(settings.bootstrap, settings.kafka_security),
    store="rocksdb://",
    datadir=str(settings.data_dir),
    web_host=settings.web_host,
    web_port=settings.web_port,
    # Only the endpoints README documents: Faust's own views would expose table data (/table), the cluster's
    # worker URLs (/router), sensor state and assignments (/stats, /assignment) and its service graph.
    web_router_enabled=False,
    web_tables_enabled=False,
    web_stats_enabled=False,
    web_graph_enabled=False,
    web_metrics_enabled=False,
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    # A worker that dies is noticed within this, and its partitions move to the others.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    # Offsets committed often: after a crash little input is processed twice, and a feed request waiting for
    # another worker's ingest (agents.order_barrier) sees its progress soon.
    broker_commit_interval=0.2,
    producer_linger=0.002,
    # Records are taken a few thousand at a time (agents batch them): fetch and buffer that many at once, so
    # the consumer's fixed cost per fetch is spread over many records.
    broker_max_poll_records=5000,
    stream_buffer_maxsize=20_000,
    # A dead letter carries the original record (up to the topics' 1 MiB bound) plus its headers.
    producer_max_request_size=2 * 1024 * 1024,
    table_cleanup_interval=60.0,
    stream_wait_empty=False,
    # Tables: user ids as JSON keys (b"42", the wire key too), values are the stores' own bytes.
    key_serializer="json",
    value_serializer="raw",
)
# Offsets never committed past a record no agent processed, across rebalances (see agents/consumer.py).
use_gap_safe_consumer(app)
# Faust's own metrics under one fixed prefix, whatever the app id, so one dashboard fits every deployment;
# off by default: its per-record work costs about a fifth of the worker's CPU per ingested event.
if settings.faust_sensors == "on":
    setup_prometheus_sensors(app, name_prefix=metrics.FAUST_METRICS_PREFIX)  # serves /metrics too
else:

    @app.page("/metrics")
    async def prometheus_metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _raw_topic(name: str, **kwargs: Any) -> faust.TopicT:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", **kwargs
    )


tweet_events = _raw_topic(TWEET_EVENTS)
engagement_events = _raw_topic(ENGAGEMENT_EVENTS)
social_graph_events = _raw_topic(SOCIAL_GRAPH_EVENTS)
feed_requests = _raw_topic(FEED_REQUESTS)
user_events = _raw_topic(user_events_topic(settings), partitions=settings.partitions)


forwarder = BatchedForwarder(
    settings.bootstrap, client_id=f"{settings.app_id}-worker", security=settings.kafka_security
)
dead_letters = DeadLetters(lambda topic, key, value, headers: forwarder.send(topic, key, value, headers=headers))
# How each user table's values are checked when they come back (changelog records, reads).
_CHECKS: dict[str, CheckValue] = dict(
    zip(
        USER_TABLES,
        (actions_store.check_value, graph_store.check_value, served_store.check_value, check_answered_value),
        strict=True,
    )
)


def _user_table(name: str) -> faust.Table:
    # Keyed by user id and written only while processing <app>-user-events, so each table partition lives
    # with the user-events partition of the same number (agents.user_tables writes by the user's partition).
    return guarded_table(
        app, name, partitions=settings.partitions, check_value=_CHECKS[name], dead_letters=dead_letters,
        merge_value=merge_answered if name == ANSWERED_TABLE else None,
    )


action_table, social_table, served_table, answered_table = (_user_table(name) for name in USER_TABLES)
_faust_tables = dict(zip(USER_TABLES, (action_table, social_table, served_table, answered_table), strict=True))


def _checked_reads(name: str, table: UserTable) -> Callable[[int], bytes | None]:
    checked = CheckedTable(
        table, name=name, changelog_topic=table.changelog_topic, partitions=settings.partitions,
        check_value=_CHECKS[name], dead_letters=dead_letters,
    )
    return checked.get


user_tables = UserTables(
    {
        name: UserTable(table, changelog_topic=changelog_topic(settings, name), partitions=settings.partitions)
        for name, table in _faust_tables.items()
    },
    read=_checked_reads,
    forwarder=forwarder,
)
user_actions = UserActionSequences(user_tables.caches["user-actions"])
social_graph = SocialGraph(user_tables.caches["social-graph"])
served_history = ServedHistory(user_tables.caches["served-history"])
answered_requests = user_tables.caches["answered-requests"]
scheduler = RequestScheduler(settings.max_in_flight, on_change=metrics.requests_in_flight.set)
runtime = Runtime(app, settings, dead_letters, config)
ingest_progress = IngestProgress()
watchdog = StallWatchdog(settings.stall_exit_s)
# Feed requests wait for the other user-keyed topics (see agents/order_barrier.py).
_user_topics_offsets = BrokerOffsets(
    lambda: admin_client(settings),
    lambda: committed_reader(
        settings.bootstrap, settings.app_id, f"{settings.app_id}-order-barrier", settings.kafka_security
    ),
    topics=(ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS),
)


async def _committed_offsets(tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    offsets = await _user_topics_offsets.committed(tps)
    watchdog.moved()  # waiting on another worker's ingest, with the broker answering, is not a stall
    return offsets


order_barrier = OrderBarrier(
    watermarks=_user_topics_offsets.watermarks, committed=_committed_offsets, progress=ingest_progress
)
loop_lag = LoopLag(metrics.event_loop_lag.set)
# Names the worker in a header on each answer (for operators and tests; not part of the JSON contract).
WORKER_NAME = f"{settings.app_id}@{socket.gethostname()}:{settings.web_port}".encode()
operations = Operations(
    app,
    bootstrap=settings.bootstrap,
    security=settings.kafka_security,
    partitions=settings.partitions,
    consumed_topics=(TWEET_EVENTS, ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, FEED_REQUESTS, user_events_topic(settings)),
    user_tables=_faust_tables,
    snapshot=lambda user_id: user_snapshot(
        user_id, actions=user_actions, graph=social_graph, served=served_history, answered=answered_requests
    ),
    worker_name=WORKER_NAME.decode(),
    on_lag=lambda records_behind: watchdog.observe_lag(records_behind),
)


# Ingest agents read their topic in batches of at most this many records (what arrived while the last batch
# was forwarded: agents.batching) and flush what they produced before the batch is acknowledged.
INGEST_BATCH = 5000


def _dead_letter(event: faust.EventT, reason: str, detail: str) -> Delivery:
    message = event.message
    return dead_letters(
        reason=reason, detail=detail, topic=message.topic, partition=message.partition, offset=message.offset,
        key=message.key, value=message.value, headers=message.headers,
    )


def _processing_error(event: faust.EventT, error: Exception) -> Delivery:
    """A record that decoded but whose processing raised: dead-lettered with the error, and the agent goes on."""
    log.exception("processing a record of %s failed", event.message.topic)
    return _dead_letter(event, PROCESSING_ERROR, f"{type(error).__name__}: {error}")


def _to_user_events(
    kind: UserEventKind, user_id: int, event: dict[str, Any], received_ms: float, requested_ms: float | None = None
) -> Delivery:
    value = encode_user_event(kind, event, received_ms, requested_ms)
    partition = partition_for_id(user_id, settings.partitions)
    return forwarder.send(user_events_topic(settings), key_bytes(user_id), value, partition=partition)


Forward = Callable[[faust.EventT, float], Iterable[Delivery]]


async def _ingest(stream: faust.StreamT, handle: Forward, *, requests: bool = False) -> None:
    """Validate and forward a public topic: each record goes on (or to dead-letters), none is dropped.

    A batch is acknowledged only once the broker has everything produced from it (a failed record is sent
    again until it is taken), so no offset is committed past a record that is not durable downstream. A batch
    of feed `requests` first waits for the order barrier, and an invalid request with an id is answered."""
    await runtime.serving.wait()
    async for events in event_batches(stream, INGEST_BATCH):
        received_ms = time.time() * 1000
        await forwarder.room()
        if requests:
            metrics.order_barrier_wait.observe(await order_barrier.wait())
        deliveries: list[Delivery] = []
        for event in events:
            try:
                deliveries.extend(handle(event, received_ms))
            except InvalidRecord as error:
                deliveries.append(_dead_letter(event, error.reason, error.detail))
                if requests and error.request_id is not None:
                    # The requester can be told: answer now, keyed by user when the record held one.
                    answer = error_answer(error.request_id, error.user_id, f"invalid request: {error}", received_ms)
                    deliveries.append(_send_answer(error.user_id, answer, fallback_key=event.message.key))
                continue
            except Exception as error:  # whatever it was, it is explained and the agent goes on
                deliveries.append(_processing_error(event, error))
                continue
            metrics.records_ingested.labels(event.message.topic).inc()
        await forwarder.deliver(deliveries)
        ingest_progress.advance((e.message.topic, e.message.partition, e.message.offset) for e in events)
        metrics.events_processed.labels(events[0].message.topic).inc(len(events))
        for event in events:
            await stream.ack(event)
        watchdog.moved(len(events))


def _forward_tweet_event(event: faust.EventT, received_ms: float) -> list[Delivery]:
    record = decode_tweet_event(event.value)
    return [forwarder.send(post_log_topic(settings), key_bytes(record.post_id), orjson.dumps(record.to_dict()))]


def _forward_engagement(event: faust.EventT, received_ms: float) -> list[Delivery]:
    record = decode_engagement(event.value)
    return [_to_user_events("engagement", record.user_id, record.to_dict(), received_ms)]


def _forward_social_graph_event(event: faust.EventT, received_ms: float) -> list[Delivery]:
    record = decode_social_graph_event(event.value)
    return [_to_user_events("social", record.user_id, record.to_dict(), received_ms)]


def _forward_feed_request(event: faust.EventT, received_ms: float) -> list[Delivery]:
    record = decode_feed_request(event.value)
    # The TTL counts from the record's timestamp and is checked where the request would run (after the
    # answered-duplicate check): process_user_events.
    requested_ms = event.message.timestamp * 1000
    return [_to_user_events("request", record.user_id, record.to_dict(), received_ms, requested_ms)]


@app.agent(tweet_events)
async def ingest_tweet_events(stream: faust.StreamT) -> None:
    await _ingest(stream, _forward_tweet_event)


@app.agent(engagement_events)
async def ingest_engagements(stream: faust.StreamT) -> None:
    await _ingest(stream, _forward_engagement)


@app.agent(social_graph_events)
async def ingest_social_graph(stream: faust.StreamT) -> None:
    await _ingest(stream, _forward_social_graph_event)


@app.agent(feed_requests)
async def ingest_feed_requests(stream: faust.StreamT) -> None:
    await _ingest(stream, _forward_feed_request, requests=True)


def _apply_user_event(user_event: UserEvent) -> list[Delivery]:
    """A state update; the records it produced (a follower-count change for the post log)."""
    payload = user_event.event
    if user_event.kind == "engagement":
        user_actions.record(payload)
    elif user_event.kind == "social":
        changed = social_graph.apply(payload)
        if changed and (delta := follower_delta(payload)) is not None:
            author_id, record = delta
            return [forwarder.send(post_log_topic(settings), key_bytes(author_id), record)]
    elif user_event.kind == "expire":  # from the idle-user sweep: checked again here, in the user's order
        _expire_user(payload["user_id"], int(time.time() * 1000))
    return []


def _expire_user(user_id: int, now_ms: int) -> None:
    if settings.user_idle_ms > 0 and user_actions.expire_if_idle(user_id, now_ms, settings.user_idle_ms):
        metrics.users_expired.labels("user-actions").inc()
    if served_history.expire_if_stale(user_id, now_ms):
        metrics.users_expired.labels("served-history").inc()
    if forget_answered(user_id, answered_requests, _holds_state):
        metrics.users_expired.labels("answered-requests").inc()


def _holds_state(user_id: int) -> bool:
    """Whether the user has engagements or a feed served within the served history's TTL (read in its order)."""
    return bool(user_actions.get(user_id)) or bool(served_history.served_ids(user_id))


@app.timer(interval=float(settings.user_sweep_interval_s))
async def sweep_idle_users() -> None:
    """Find idle users in the partitions this worker owns and ask their partitions to expire them."""
    if not runtime.serving.is_set():
        return
    now_ms = int(time.time() * 1000)

    def scan() -> set[int]:
        users = set(expired_users(served_table.data.items(), lambda value: served_store.is_stale(value, now_ms)))
        if settings.user_idle_ms > 0:
            idle_ms = settings.user_idle_ms
            users.update(expired_users(action_table.data.items(), lambda v: actions_store.is_idle(v, now_ms, idle_ms)))
        # Users with answered ids and nothing else stored (every answer an error, say).
        users.update(users_without_state(
            answered_table.data.keys(), lambda user_id: user_id in served_table.data or user_id in action_table.data
        ))
        return users

    try:
        users = await asyncio.to_thread(scan)
    except Exception:  # a table rebalanced away mid-scan, say: the next sweep tries again
        metrics.ops_errors.labels("user_expiry").inc()
        log.exception("idle-user sweep failed")
        return
    expiries = [_to_user_events("expire", user_id, {"v": 1, "user_id": user_id}, now_ms) for user_id in users]
    await forwarder.deliver(expiries)
    if users:
        log.info("idle-user sweep: %d users to expire", len(users))


# User events are read at most this many at a time (whatever has arrived: agents.batching); at most this many
# batches wait for their deliveries at once (then the agent waits: backpressure, not an unbounded queue).
USER_EVENTS_BATCH = 5000
BATCHES_IN_DELIVERY = 8
_batch_slots = asyncio.Semaphore(BATCHES_IN_DELIVERY)
_background: set[asyncio.Task] = set()
# Requests being answered (ranked, or shed with an error) and not yet remembered as answered: a copy of one
# forwarded twice is recognised while the first is in flight, too.
_answering: set[tuple[int, str]] = set()


def _in_background(awaitable: Awaitable[None]) -> None:
    task = asyncio.ensure_future(awaitable)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _finish_batch(
    stream: faust.StreamT, events: list[faust.EventT], deliveries: list[Delivery], flush: Flush
) -> None:
    """Acknowledge a batch's events once its outputs and its tables' changelog records are delivered."""
    try:
        await forwarder.deliver([*deliveries, *flush.deliveries])
        flush.persisted()
        for event in events:
            await stream.ack(event)
    finally:
        _batch_slots.release()


async def _finish_request(
    stream: faust.StreamT, event: faust.EventT, user_event: UserEvent, request: FeedRequest, answering: Awaitable[None]
) -> None:
    """A request is acknowledged once its answer is delivered and its id, remembered, is in the changelog."""
    deliveries: list[Delivery] = []
    try:
        try:
            await answering
        except Exception as error:  # every request gets its answer, a failure one too
            deliveries.append(_processing_error(event, error))
            reason = f"internal error: {type(error).__name__}"
            answer = error_answer(request.request_id, request.user_id, reason, user_event.received_at_ms)
            deliveries.append(_send_answer(request.user_id, answer))
        flush = user_tables.flush()
        await forwarder.deliver([*deliveries, *flush.deliveries])
        flush.persisted()
    finally:
        _answering.discard((request.user_id, request.request_id))
    await stream.ack(event)


def _dispatch_request(stream: faust.StreamT, event: faust.EventT, user_event: UserEvent, request: FeedRequest) -> bool:
    """Start answering a request, or shed it; False when it is a duplicate (nothing to do)."""
    user_id, request_id = request.user_id, request.request_id
    feeds = runtime.feeds
    if (user_id, request_id) in _answering or feeds.already_answered(user_id, request_id):
        metrics.duplicate_requests.inc()
        return False
    _answering.add((user_id, request_id))
    received_ms = user_event.received_at_ms
    requested_ms = user_event.requested_at_ms if user_event.requested_at_ms is not None else received_ms
    expired = feeds.expired(requested_ms, time.time() * 1000)
    answering: Awaitable[None] | None = None
    if expired is not None:  # a backlog of old requests is answered at ingest speed, without the pipeline
        answering = feeds.reject(request, received_ms, "expired", expired)
    else:
        snapshot = feeds.state.snapshot(user_id)  # exactly the user's events before this request
        answering = scheduler.submit(
            user_id,
            lambda: feeds.answer(request, received_ms, requested_at_ms=requested_ms, snapshot=snapshot),
        )
        if answering is None:
            error = f"overloaded: {scheduler.max_in_flight} requests in flight (FORYOU_MAX_IN_FLIGHT)"
            answering = feeds.reject(request, received_ms, "overloaded", error)
    _in_background(_finish_request(stream, event, user_event, request, answering))
    return True


@app.agent(user_events)
async def process_user_events(stream: faust.StreamT) -> None:
    """Each user's events in order, a batch at a time: state updates are applied to the write-back caches
    and written once per key per batch; feed requests are handed to the scheduler as they come, each with a
    snapshot of its user's state at that point, and the batch goes on without waiting for them."""
    await runtime.wait_posts_caught_up(on_progress=watchdog.moved)
    async for events in event_batches(stream, USER_EVENTS_BATCH):
        watchdog.moved(len(events))
        metrics.events_processed.labels(events[0].message.topic).inc(len(events))
        await forwarder.room()
        await _batch_slots.acquire()
        deliveries: list[Delivery] = []
        done: list[faust.EventT] = []  # acknowledged with the batch (requests are, once answered)
        for event in events:
            try:
                user_event = decode_user_event(event.value)
                user_id = user_event.event["user_id"]
                if partition_for_id(user_id, settings.partitions) != event.message.partition:
                    # Its state would land in a table partition that does not own the user.
                    raise InvalidRecord("bad_value", f"user {user_id} does not belong to this partition")
            except InvalidRecord as error:
                deliveries.append(_dead_letter(event, error.reason, error.detail))
                done.append(event)
                continue
            try:
                if isinstance(user_event.record, FeedRequest):
                    if _dispatch_request(stream, event, user_event, user_event.record):
                        continue
                else:
                    deliveries.extend(_apply_user_event(user_event))
            except Exception as error:  # explained, and the user's later events still apply
                deliveries.append(_processing_error(event, error))
            done.append(event)
        _in_background(_finish_batch(stream, done, deliveries, user_tables.flush()))


@app.task
async def measure_event_loop_lag() -> None:
    await loop_lag.run()


@app.timer(interval=5.0)
async def exit_when_stalled() -> None:
    reason = watchdog.stalled()
    if reason is not None:
        log.error("worker stalled, exiting for its supervisor to restart it: %s", reason)
        logging.shutdown()
        os._exit(70)  # a stop could hang on the very clients that are stuck; the state is crash-safe


@app.on_before_shutdown.connect
async def deliver_before_shutdown(app: faust.App, **kwargs: object) -> None:
    await asyncio.to_thread(forwarder.close)


@app.timer(interval=60.0)
async def trim_post_store() -> None:
    if runtime.post_store is not None:
        removed = await asyncio.to_thread(runtime.post_store.trim, int(time.time() * 1000))
        if removed:
            runtime.forget_posts(removed)
            log.info("post store: trimmed %d posts past retention", len(removed))


@app.timer(interval=10.0)
async def reload_model() -> None:
    await runtime.maybe_reload_model()


@app.page("/ready")
async def ready(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    status = runtime.readiness()
    return web.json(status, status=200 if status["ready"] else 503)


@app.page("/inspect/post/{post_id}")
async def inspect_post(web: faust.web.View, request: faust.web.Request, post_id: str) -> faust.web.Response:
    """What this worker's post-store replica holds for a post (every worker holds every post)."""
    store = runtime.post_store
    if store is None or not post_id.isdigit():
        return web.json({"error": "not ready" if store is None else "post id must be a number"}, status=400)
    body = post_snapshot(store, int(post_id))
    return web.json(body, status=200 if body["post"] is not None else 404)


@app.page("/inspect/user/{user_id}")
async def inspect_user(web: faust.web.View, request: faust.web.Request, user_id: str) -> faust.web.Response:
    """What the user tables hold for a user, answered by (or forwarded to) the worker owning its partition."""
    return await operations.inspect_user(web, request, user_id)


def _send_answer(user_id: int | None, answer: RankedFeed, fallback_key: bytes | None = None) -> Delivery:
    """Every answer leaves through here: keyed by user, tagged with the worker that produced it."""
    key = key_bytes(user_id) if user_id else fallback_key
    metrics.feed_answers.labels(answer.status).inc()
    return forwarder.send(RANKED_FEEDS, key, encode(answer), headers=[("foryou.worker", WORKER_NAME)])


async def _deliver_answer(user_id: int, answer: RankedFeed) -> None:
    await forwarder.deliver([_send_answer(user_id, answer)])


async def _send_impressions(user_id: int, records: list[Impression]) -> None:
    key = key_bytes(user_id)
    await forwarder.deliver([forwarder.send(IMPRESSIONS, key, encode(record)) for record in records])


runtime.bind_feeds(
    lambda ranker, post_store, counts: FeedService(
        settings=settings,
        config=config,
        post_store=post_store,
        counts=counts,
        ranker=ranker,
        user_actions=user_actions,
        social_graph=social_graph,
        served_history=served_history,
        answered=answered_requests,
        send_answer=_deliver_answer,
        send_impressions=_send_impressions,
    )
)

# The draft simulator and feed preview (/simulate/...), built once the runtime has its model and stores.
register_pages(app, Simulations(
    app,
    partitions=settings.partitions,
    locator=action_table,
    user_tables={"user-actions": action_table, "social-graph": social_table},
    following=lambda user_id: social_graph.features(user_id).following,
    build=lambda: new_simulator(runtime.feeds.config, runtime.post_store,
                                UserState(user_actions, social_graph, served_history), runtime.ranker,
                                runtime.counts),
    worker_name=WORKER_NAME.decode(),
))


def run_worker() -> int:
    """`foryou worker`: create missing topics, then run this app until SIGTERM or Ctrl-C."""
    import sys

    for line in ensure_topics(settings):
        log.info("topic %s", line)
    current = partition_count(settings, user_events_topic(settings))
    if current != settings.partitions:
        raise SystemExit(
            f"{user_events_topic(settings)} has {current} partitions, FORYOU_PARTITIONS={settings.partitions}"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last directory of the path
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level]
    app.main()
    return 0

