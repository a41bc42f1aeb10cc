"""Operations on a running worker: background metrics (consumer lag, table sizes, rebalances), the
read-only `/inspect/user/{id}` page, routed to the worker that owns the user's partition, and the body of
the `/inspect/post/{id}` page (`post_snapshot`: every worker holds every post).

Everything here runs beside the agents, never on a feed request's path: lag and table sizes are collected
by the `Operations` service every few seconds, their blocking work (Kafka admin calls, RocksDB key scans)
in a thread so the event loop keeps serving.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp
import faust
import orjson
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from faust.types import TP
from mode import Service
from yarl import URL

from agents import metrics
from agents.admin_clients import RenewableClient, committed_offsets, committed_reader
from foryou.settings import KafkaSecurity, librdkafka_config
from stores.action_sequences import UserActionSequences
from stores.post_store import PostStore
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from topics.actions import mask_to_actions
from topics.limits import MAX_ID
from topics.partitioning import partition_for_id

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 10.0
TABLE_USERS_INTERVAL_S = 10.0
# Set on a forwarded /inspect request: the receiver answers itself instead of forwarding again, so two
# workers that briefly disagree about ownership during a rebalance cannot bounce a request between them.
ROUTED_HEADER = "X-Foryou-Routed-From"
# A forwarded /inspect request waits at most this long for the owning worker (connect included).
FORWARD_TIMEOUT_S = 5.0

Partition = tuple[str, int]


# -- consumer lag -------------------------------------------------------------------------------------------


def partition_lag(end: int, committed: int, start: int) -> int:
    """Records not yet consumed: end minus committed; the whole retained log when nothing is committed."""
    position = committed if committed >= 0 else start
    return max(0, end - position)


class GroupLagProbe:
    """End offsets (batched admin requests) and the group's committed offsets (a consumer's OffsetFetch, see
    agents/admin_clients.py) per measurement.

    The same clients measure until one fails (creating them per measurement costs connections and metadata
    round trips); then they are renewed."""

    def __init__(
        self, bootstrap: str, group: str, timeout_s: float = 10.0, security: KafkaSecurity | None = None
    ) -> None:
        self.group = group
        self.timeout_s = timeout_s
        config = {"log_level": 3, "client.id": f"{group}-ops"}
        self._admin = RenewableClient(lambda: AdminClient(librdkafka_config(bootstrap, security, config)))
        self._reader = RenewableClient(lambda: committed_reader(bootstrap, group, f"{group}-ops", security))

    def measure(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        try:
            return self._measure(partitions)
        except KafkaException:
            # After a broker pause this client kept failing (FENCED_LEADER_EPOCH on every ListOffsets, or
            # "transport failure" while a new client connected at once): the next measurement uses a new one.
            self._admin.renew()
            self._reader.renew()
            raise

    def _measure(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        if not partitions:
            return {}
        tps = [TopicPartition(topic, partition) for topic, partition in partitions]
        committed = committed_offsets(self._reader.client, list(partitions), self.timeout_s)
        ends = self._offsets(tps, OffsetSpec.latest())
        starts = self._offsets(tps, OffsetSpec.earliest())
        return {key: partition_lag(ends[key], committed.get(key, -1), starts[key]) for key in ends if key in starts}

    def _offsets(self, tps: Iterable[TopicPartition], spec: OffsetSpec) -> dict[Partition, int]:
        futures = self._admin.client.list_offsets({tp: spec for tp in tps}, request_timeout=self.timeout_s)
        return {(tp.topic, tp.partition): future.result(self.timeout_s).offset for tp, future in futures.items()}


# -- /inspect/user ------------------------------------------------------------------------------------------


def parse_user_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise ValueError(f"a user id is a positive 64-bit integer, not {raw!r}")
    return int(raw)


def post_snapshot(store: PostStore, post_id: int) -> dict[str, Any]:
    """What a post-store replica holds for one post, as plain JSON-able values (`post` is None when the
    store does not hold it: unknown, deleted, trimmed or pushed out by a timeline cap)."""
    post = store.get(post_id)
    (vector,) = store.content_vectors([post_id])
    return {
        "post_id": post_id,
        "deleted": store.is_deleted(post_id),
        "post": None if post is None else dataclasses.asdict(post),
        "follower_count_of_author": None if post is None else store.follower_count(post.author_id),
        "content_vector": None if vector is None else vector.tolist(),
    }


def user_snapshot(
    user_id: int,
    *,
    actions: UserActionSequences,
    graph: SocialGraph,
    served: ServedHistory,
    answered: Mapping[int, bytes],
) -> dict[str, Any]:
    """What the user tables hold for one user, as plain JSON-able values (newest engagement last)."""
    features = graph.features(user_id)
    raw_answered = answered.get(user_id)
    return {
        "user_id": user_id,
        "following": graph.following(user_id),
        "blocked": sorted(features.blocked),
        "muted": sorted(features.muted),
        "muted_keywords": list(features.muted_keywords),
        "actions": [
            {
                "post_id": entry.post_id,
                "author_id": entry.author_id,
                "actions": mask_to_actions(entry.action_mask),
                "surface": entry.surface,
                "ts_ms": entry.ts_ms,
                "dwell_ms": entry.dwell_ms,
            }
            for entry in actions.get(user_id)
        ],
        "served_ids": sorted(served.served_ids(user_id)),
        "answered_requests": orjson.loads(raw_answered) if raw_answered else [],
    }


def owner_url(distribution: Mapping[str, Mapping[str, Sequence[int]]], topic: str, partition: int) -> str | None:
    """The worker URL whose active assignment holds `partition` of `topic` (Faust's table metadata)."""
    for url, topics in distribution.items():
        if partition in topics.get(topic, ()):
            return url
    return None


def same_node(a: URL, b: URL) -> bool:
    return (a.host, a.port) == (b.host, b.port)


async def forward_get(
    session: aiohttp.ClientSession, url: URL, headers: Mapping[str, str], timeout_s: float = FORWARD_TIMEOUT_S
) -> tuple[int, str, str]:
    """GET `url` from another worker: (status, content type, body), or a 504 JSON error when it does not
    answer within `timeout_s` (a hung or partitioned worker must not hold the request forever)."""
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            return response.status, response.content_type, await response.text()
    except (TimeoutError, aiohttp.ClientError) as exc:
        error = f"the worker at {url.origin()} did not answer within {timeout_s}s: {exc!r}"
        return 504, "application/json", orjson.dumps({"error": error}).decode()


# -- the service --------------------------------------------------------------------------------------------


class Operations(Service):
    """Started with the app: counts rebalances, collects consumer lag and table sizes in the background,
    and answers `/inspect/user/{id}` (forwarding it to the owner of the user's partition)."""

    def __init__(
        self,
        app: faust.App,
        *,
        bootstrap: str,
        security: KafkaSecurity | None = None,
        partitions: int,
        consumed_topics: Sequence[str],
        user_tables: Mapping[str, faust.Table],
        snapshot: Callable[[int], dict[str, Any]],
        worker_name: str,
        on_lag: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.partitions = partitions
        self.consumed_topics = tuple(consumed_topics)
        self.user_tables = dict(user_tables)
        self.snapshot = snapshot
        self.worker_name = worker_name
        self.probe = GroupLagProbe(bootstrap, app.conf.id, security=security)
        self.on_lag = on_lag
        # Any user table locates a user: all are written while processing the same user-events partition.
        self._locator = next(iter(self.user_tables.values()))
        for topic in self.consumed_topics:
            metrics.assigned_partitions.labels(topic).set(0)
        for name in self.user_tables:
            metrics.table_users.labels(name).set(0)
        app.on_rebalance_complete.connect(self._on_rebalance_complete)
        app.task(self._start_with_app)

    async def _start_with_app(self) -> None:
        await self.app.add_runtime_dependency(self)

    async def _on_rebalance_complete(self, sender: object, **kwargs: object) -> None:
        metrics.rebalances.inc()
        consumed = self._consumed_partitions()
        for topic in self.consumed_topics:
            metrics.assigned_partitions.labels(topic).set(sum(1 for t, _ in consumed if t == topic))

    def _consumed_partitions(self) -> list[Partition]:
        return sorted(
            (tp.topic, tp.partition) for tp in self.app.assignor.assigned_actives() if tp.topic in self.consumed_topics
        )

    @Service.task
    async def _collect_lag(self) -> None:
        while not self.should_stop:
            await self.collect_lag()
            await self.sleep(LAG_INTERVAL_S)

    @Service.task
    async def _count_table_users(self) -> None:
        while not self.should_stop:
            await self.count_table_users()
            await self.sleep(TABLE_USERS_INTERVAL_S)

    async def collect_lag(self) -> None:
        partitions = self._consumed_partitions()
        try:
            lag = await asyncio.to_thread(self.probe.measure, partitions)
        except Exception as exc:  # a metric must never stop a worker: broker away, timeouts, rebalances
            metrics.ops_errors.labels("consumer_lag").inc()
            log.warning("consumer lag not collected: %r", exc)
            return
        # Replaced whole on the event loop, where /metrics is served: a scrape never sees half an update,
        # and partitions this worker gave up in a rebalance disappear.
        if self.on_lag is not None:
            self.on_lag(sum(lag.values()))
        metrics.consumer_lag.clear()
        for (topic, partition), records in lag.items():
            metrics.consumer_lag.labels(topic, str(partition)).set(records)

    async def count_table_users(self) -> None:
        for name, table in self.user_tables.items():
            try:
                # len() of a RocksDB-backed table counts the keys of its active partitions only.
                count = await asyncio.to_thread(len, table.data)
            except Exception as exc:  # e.g. a rebalance changed the open partitions mid-count: next time
                metrics.ops_errors.labels("table_users").inc()
                log.info("table %s not counted: %r", name, exc)
                continue
            metrics.table_users.labels(name).set(count)

    async def inspect_user(self, web: faust.web.View, request: faust.web.Request, raw_user_id: str) -> Any:
        try:
            user_id = parse_user_id(raw_user_id)
        except ValueError as exc:
            return web.json({"error": str(exc)}, status=400)
        topic = self._locator.changelog_topic.get_topic_name()
        partition = partition_for_id(user_id, self.partitions)
        owner = owner_url(self.app.router.table_metadata(self._locator.name), topic, partition)
        here = self.app.conf.canonical_url
        if owner is not None and not same_node(URL(owner), here) and ROUTED_HEADER not in request.headers:
            return await self._forward(web, request, URL(owner))
        if TP(topic, partition) not in self.app.assignor.assigned_actives():
            body = {
                "error": f"partition {partition} of user {user_id} is not active on any worker yet",
                "user_id": user_id,
                "partition": partition,
            }
            return web.json(body, status=503)
        body = {**self.snapshot(user_id), "partition": partition, "worker": self.worker_name}
        return web.json(body)

    async def _forward(self, web: faust.web.View, request: faust.web.Request, owner: URL) -> Any:
        url = owner.with_path(request.path)
        headers = {ROUTED_HEADER: str(self.app.conf.canonical_url)}
        status, content_type, text = await forward_get(self.app.http_client, url, headers)
        return web.text(text, content_type=content_type, status=status)
