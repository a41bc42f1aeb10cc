"""Every worker's full replica of the post log, applied to its local post store.

Why not a Faust GlobalTable: in faust-streaming a GlobalTable recovers through the same machinery as
partitioned tables and has long-standing open issues (recovery that loops or stalls after a rebalance,
instances that stop syncing); and a Thunder-like store needs secondary indexes (author timelines) that a
key-value table does not give. So each worker tails `<app>-post-log` with its own group-less consumer,
applies each batch to RocksDB in one write batch together with the offsets it reached, and on restart
resumes from those offsets: nothing is re-read, and a fresh worker rebuilds from the log.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from agents import metrics
from foryou.settings import KafkaSecurity, aiokafka_config
from stores.post_store import PostStore

log = logging.getLogger(__name__)

PostEventsHandler = Callable[[list[dict]], Awaitable[None]]


class PostReplica(Service):
    """Tails the post log into `post_store`; `caught_up` is set once it reached the log's end at start."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        partitions: int,
        post_store: PostStore,
        on_applied: PostEventsHandler,
        security: KafkaSecurity | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.security = security
        self.topic = topic
        self.partitions = partitions
        self.post_store = post_store
        self.on_applied = on_applied
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._start_ends: dict[TopicPartition, int] = {}

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            **aiokafka_config(self.bootstrap, self.security), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_bytes=16 * 1024 * 1024,
        )
        await consumer.start()
        assignment = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        consumer.assign(assignment)
        stored = self.post_store.offsets()
        for tp in assignment:
            if tp.partition in stored:
                consumer.seek(tp, stored[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        self._start_ends = await consumer.end_offsets(assignment)
        self._consumer = consumer
        await self._update_caught_up()

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
            events: list[dict] = []
            offsets: dict[int, int] = {}
            for tp, messages in batches.items():
                for message in messages:
                    try:
                        events.append(orjson.loads(message.value))
                    except orjson.JSONDecodeError:
                        # Only the worker's own agents write this log; a bad record there is a bug, not input.
                        log.error("unreadable post-log record at %s:%d", tp, message.offset)
                    offsets[tp.partition] = message.offset + 1
            if offsets:
                self.post_store.apply(events, offsets)
                await self.on_applied(events)
            await self._update_caught_up()

    async def _update_caught_up(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        positions = {tp: await consumer.position(tp) for tp in self._start_ends}
        if not self.caught_up.is_set() and all(positions[tp] >= end for tp, end in self._start_ends.items()):
            self.caught_up.set()
        lag = 0
        for tp, position in positions.items():
            end = consumer.highwater(tp)
            lag += max(0, (end if end is not None else self._start_ends[tp]) - position)
        metrics.post_replica_lag.set(lag)
