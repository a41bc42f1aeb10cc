"""Every worker's full replica of the post log, applied to its local post store.

Why not a Faust GlobalTable: in faust-streaming a GlobalTable recovers through the same machinery as
partitioned tables and has long-standing open issues (recovery that loops or stalls after a rebalance,
instances that stop syncing); and a Thunder-like store needs secondary indexes (author timelines) that a
key-value table does not give. So each worker tails `<app>-post-log` with its own group-less consumer,
applies each batch to RocksDB in one write batch together with the offsets it reached, and on restart
resumes from those offsets: nothing is re-read, and a fresh worker rebuilds from the log.

Anyone who can write the post log can put anything on it, so each record is decoded strictly
(`agents.envelope.decode_post_log_record`): what fails is dead-lettered with its offset and skipped, and a
batch the store still cannot apply is applied record by record, dead-lettering the records that raise.
The offsets move past every record either way: one bad record never stops the replica, nor comes back.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from mode import Service

from agents import metrics
from agents.dead_letters import DeadLetters
from agents.envelope import decode_post_log_record
from foryou.settings import KafkaSecurity, aiokafka_config
from stores.post_store import Applied, PostStore
from topics.dead_letters import PROCESSING_ERROR
from topics.validation import InvalidRecord

log = logging.getLogger(__name__)

AppliedHandler = Callable[[Applied], Awaitable[None]]
# A pause after an unexpected failure of a whole poll (the broker, not a record), before trying again.
RETRY_PAUSE_S = 1.0


class PostReplica(Service):
    """Tails the post log into `post_store`; `caught_up` is set once it reached the log's end at start."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        partitions: int,
        post_store: PostStore,
        on_applied: AppliedHandler,
        dead_letters: DeadLetters,
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
        self.dead_letters = dead_letters
        self.caught_up = asyncio.Event()
        self.records_read = 0  # post-log records applied or dead-lettered since start: the replica's progress
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
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                await self._apply([message for messages in batches.values() for message in messages])
                await self._update_caught_up()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker or the disk, not a record: those are handled in _apply
                log.exception("post replica: poll failed; retrying")
                await asyncio.sleep(RETRY_PAUSE_S)

    async def _apply(self, messages: list[ConsumerRecord]) -> None:
        if not messages:
            return
        self.records_read += len(messages)
        records: list[tuple[ConsumerRecord, dict[str, Any]]] = []
        for message in messages:
            try:
                records.append((message, decode_post_log_record(message.value)))
            except InvalidRecord as error:
                self._dead_letter(message, error.reason, error.detail)
        try:
            applied = self.post_store.apply([event for _, event in records], _next_offsets(messages))
        except Exception:  # some record the checks let through: find it, one at a time
            log.exception("post replica: a batch of %d records failed; applying them one by one", len(messages))
            for message, event in records:
                try:
                    applied = self.post_store.apply([event], _next_offsets([message]))
                except Exception as error:  # dead-lettered with what was raised
                    self._dead_letter(message, PROCESSING_ERROR, f"{type(error).__name__}: {error}")
                    continue
                await self.on_applied(applied)
            applied = self.post_store.apply([], _next_offsets(messages))  # past the dead-lettered ones too
        await self.on_applied(applied)

    def _dead_letter(self, message: ConsumerRecord, reason: str, detail: str) -> None:
        self.dead_letters(
            reason=reason, detail=detail, topic=message.topic, partition=message.partition,
            offset=message.offset, key=message.key, value=message.value, headers=message.headers,
        )

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


def _next_offsets(messages: list[ConsumerRecord]) -> dict[int, int]:
    """Partition -> the offset after the last of `messages` in it."""
    offsets: dict[int, int] = {}
    for message in messages:
        offsets[message.partition] = max(offsets.get(message.partition, 0), message.offset + 1)
    return offsets
