"""Every worker's own engagement counts: a group-less consumer of `impressions` and `engagement-events`.

Like the post replica (agents.post_replica): every worker reads every partition of both topics into its
local count store (stores.engagement_counts), applying each batch together with the offsets it reached in
one write batch, and resumes from those offsets after a restart. A fresh worker starts at the topics' ends
(counts are about recent posts; replaying days of impressions at start would only delay readiness) unless
it has offsets. Records that do not decode are skipped and counted (`foryou_engagement_counts_records_total`):
the ingest agent already dead-letters bad engagement events, and impressions are the workers' own output.
"""

import asyncio
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from agents import metrics
from foryou.settings import KafkaSecurity, aiokafka_config
from stores.engagement_counts import EngagementCounts, count_deltas
from topics.specs import ENGAGEMENT_EVENTS, IMPRESSIONS
from topics.validation import InvalidRecord, decode_engagement, decode_impression

log = logging.getLogger(__name__)


def decode_counted(topic: str, value: bytes | None) -> dict[str, Any] | None:
    """The record as a dict with post_id (and action), or None when it does not decode."""
    try:
        if topic == IMPRESSIONS:
            return decode_impression(value).to_dict()
        return decode_engagement(value).to_dict()
    except (InvalidRecord, orjson.JSONDecodeError):
        return None


class CountsReplica(Service):
    def __init__(
        self,
        *,
        bootstrap: str,
        partitions: dict[str, int],
        counts: EngagementCounts,
        security: KafkaSecurity | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.security = security
        self.partitions = partitions  # topic -> partition count
        self.counts = counts
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            **aiokafka_config(self.bootstrap, self.security), group_id=None, enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        assignment = [TopicPartition(t, p) for t, n in self.partitions.items() for p in range(n)]
        consumer.assign(assignment)
        ends = await consumer.end_offsets(assignment)
        for tp in assignment:
            stored = self.counts.offset(tp.topic, tp.partition)
            consumer.seek(tp, stored if stored is not None else ends[tp])
        self._consumer = consumer

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @Service.task
    async def _tail(self) -> None:
        while not self.should_stop:
            consumer = self._consumer
            if consumer is None:
                await asyncio.sleep(0.05)
                continue
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            records: dict[str, list[dict[str, Any]]] = {IMPRESSIONS: [], ENGAGEMENT_EVENTS: []}
            offsets: dict[tuple[str, int], int] = {}
            for tp, messages in batches.items():
                for message in messages:
                    record = decode_counted(tp.topic, message.value)
                    metrics.counted_records.labels(tp.topic, "skipped" if record is None else "counted").inc()
                    if record is not None:
                        records[tp.topic].append(record)
                    offsets[(tp.topic, tp.partition)] = message.offset + 1
            if offsets:
                deltas = count_deltas(records[IMPRESSIONS], records[ENGAGEMENT_EVENTS])
                await asyncio.to_thread(self.counts.apply, deltas, offsets)
