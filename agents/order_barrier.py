"""Per-user order across the user-keyed public topics, whatever partitioner or key their producers used.

A user's engagement, graph change and feed request may sit in different partitions of different topics,
read by different workers. The promise: an engagement or graph change that the broker acknowledged before
a feed request was produced is applied to the user's state before that request runs. The request ingest
keeps it with a barrier: after reading a batch of requests it notes the end offsets of every partition of
engagement-events and social-graph-events (everything acknowledged before the requests were produced lies
below them) and forwards the requests to `<app>-user-events` only once every such partition has been
forwarded past its noted end, by this worker (`IngestProgress`, updated once a batch is delivered) or by
another (the group's committed offset, which the ingest commits only after delivery). Both land in the
user's one user-events partition, so the request comes after them there and is processed after them.
"""

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from confluent_kafka import TopicPartition as KafkaTP
from confluent_kafka.admin import OffsetSpec

from agents import metrics
from agents.admin_clients import RenewableClient, committed_offsets, stale_metadata

log = logging.getLogger(__name__)
T = TypeVar("T")

TopicPartition = tuple[str, int]
OffsetsQuery = Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, int]]]
RENEW_EVERY_S = 10.0
PARTITIONS_REFRESH_S = 30.0  # a topic's partitions are re-read this often (they can be added)
EndsQuery = Callable[[], Awaitable[dict[TopicPartition, tuple[int, int]]]]


class IngestProgress:
    """Per source partition, the offset after the last record this worker's ingest delivered onward."""

    def __init__(self) -> None:
        self.forwarded: dict[TopicPartition, int] = {}

    def advance(self, records: Iterable[tuple[str, int, int]]) -> None:
        """`records`: (topic, partition, offset) of input records whose output the broker has."""
        for topic, partition, offset in records:
            key = (topic, partition)
            if offset + 1 > self.forwarded.get(key, -1):
                self.forwarded[key] = offset + 1


class OrderBarrier:
    """Waits until the ingest of the watched partitions has forwarded everything present when it started."""

    def __init__(
        self, *, watermarks: EndsQuery, committed: OffsetsQuery, progress: IngestProgress, poll_s: float = 0.02
    ) -> None:
        self.watermarks = watermarks  # (low, high) per watched partition
        self.committed = committed  # the group's committed offset per partition (-1 when none)
        self.progress = progress
        self.poll_s = poll_s

    async def wait(self) -> float:
        """Seconds waited. Never gives up: the requests behind it expire by their TTL when it runs."""
        started = time.monotonic()
        ends = await self.watermarks()
        behind = self._behind(ends, {})
        while behind:
            committed = await self.committed(sorted(behind))
            behind = self._behind({tp: ends[tp] for tp in behind}, committed)
            if behind:
                await asyncio.sleep(self.poll_s)
        return time.monotonic() - started

    def _behind(
        self, ends: dict[TopicPartition, tuple[int, int]], committed: dict[TopicPartition, int]
    ) -> set[TopicPartition]:
        return {
            tp for tp, (low, high) in ends.items()
            if max(low, self.progress.forwarded.get(tp, -1), committed.get(tp, -1)) < high
        }


class BrokerOffsets:
    """The barrier's two broker queries, run off the event loop: watermarks of the watched topics and the
    group's committed offsets. They never raise: a failed query is retried with backoff on a renewed admin
    client (`agents.admin_clients`)."""

    def __init__(
        self, new_admin: Callable[[], Any], new_committed_reader: Callable[[], Any], *, topics: tuple[str, ...],
        timeout_s: float = 10.0,
    ) -> None:
        self.admin = RenewableClient(new_admin)
        self.reader = RenewableClient(new_committed_reader)
        self.topics = topics
        self.timeout_s = timeout_s
        self._partitions: list[TopicPartition] = []
        self._partitions_read_at = -1e9
        self._renewed_at = time.monotonic()

    def _watched(self) -> list[TopicPartition]:
        if time.monotonic() - self._partitions_read_at > PARTITIONS_REFRESH_S:
            metadata = self.admin.client.list_topics(timeout=self.timeout_s).topics
            self._partitions = [
                (topic, p) for topic in self.topics if topic in metadata for p in metadata[topic].partitions
            ]
            self._partitions_read_at = time.monotonic()
        return self._partitions

    def _watermarks(self) -> dict[TopicPartition, tuple[int, int]]:
        watched = [KafkaTP(topic, p) for topic, p in self._watched()]
        if not watched:
            return {}
        admin, timeout_s = self.admin.client, self.timeout_s
        low = admin.list_offsets({tp: OffsetSpec.earliest() for tp in watched}, request_timeout=timeout_s)
        high = admin.list_offsets({tp: OffsetSpec.latest() for tp in watched}, request_timeout=timeout_s)
        return {
            (tp.topic, tp.partition): (low[tp].result().offset, high[tp].result().offset) for tp in watched
        }

    def _committed(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return committed_offsets(self.reader.client, tps, self.timeout_s)

    async def _until_answered(self, query: Callable[[], T]) -> T:
        for attempt in itertools.count():
            try:
                return await asyncio.to_thread(query)
            except Exception as exc:  # broker away, timeouts, stale metadata: wait and ask again
                metrics.order_barrier_errors.inc()
                log.warning("order barrier: broker query failed (attempt %d): %r", attempt + 1, exc)
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
                # A client can stay broken after a broker pause (stale leader epochs, or "transport failure"
                # forever while a new client connects at once): ask with a new one now and then.
                if stale_metadata(exc) or time.monotonic() - self._renewed_at > RENEW_EVERY_S:
                    self.admin.renew()
                    self.reader.renew()
                    self._renewed_at = time.monotonic()
                self._partitions_read_at = -1e9
        raise AssertionError("unreachable")

    async def watermarks(self) -> dict[TopicPartition, tuple[int, int]]:
        return await self._until_answered(self._watermarks)

    async def committed(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._until_answered(lambda: self._committed(tps))
