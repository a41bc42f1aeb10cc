"""The user tables written a batch at a time: per key, one RocksDB write and one changelog record per batch.

Faust writes a table inside an agent one `table[k] = v` at a time, each with its own changelog record, and
takes the record's partition (and where its RocksDB write goes) from the "current event", which inside
`take()` is whichever event of the batch came last (faust-streaming #497, #300). Here the worker does that
bookkeeping itself, by the user's own partition:

- the stores write into a `stores.write_back.WriteBackCache` per table (reads see the pending values);
- `flush()` takes each table's pending values and, per user partition, writes them to that partition's
  RocksDB database in one write batch (Faust's own store files, so Faust's reads, recovery and standbys
  find them), then sends one changelog record per key to the changelog partition of the same number, with
  the key and value bytes Faust's recovery reads (the JSON user id, the store's raw value; None deletes);
- once those records are delivered, `persisted()` records the changelog offsets reached in each RocksDB
  database (what Faust's recovery resumes from), and only then may the events be acknowledged.

Crash safety: the local write comes before the changelog record and the events are acknowledged after it
is delivered. After a crash, events not acknowledged are read again and applied again over a state that may
hold them already; the stores are idempotent under that (re-applying an engagement changes nothing; graph
changes are set operations), so the recovered state equals applying every event once, in order (tested
with a worker killed mid-batch, tests/integration/test_batched_user_events.py).
"""

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust
import orjson
from confluent_kafka import KafkaError, KafkaException, Message
from faust.types import TP

from agents import metrics
from agents.forwarder import Delivery, Forwarder
from stores.write_back import WriteBackCache
from topics.partitioning import partition_for_id

Send = Callable[..., Delivery]


class BatchedForwarder(Forwarder):
    """The forwarder, handing delivery reports to the event loop in bursts (one wake-up per poll, not one
    per record: at tens of thousands of records a second the per-record wake-ups were a core's worth of
    work) and keeping the highest delivered offset per partition (for the tables' persisted offsets)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reports: list[tuple[Delivery, KafkaError | None]] = []
        self._reports_lock = threading.Lock()
        self._settle_scheduled = False
        self.delivered_offsets: dict[tuple[str, int], int] = {}

    def _on_delivery(self, delivery: Delivery, error: KafkaError | None, message: Message) -> None:
        # Runs on the poll thread.
        if error is None:
            key = (message.topic(), message.partition())
            offset = message.offset()
            if offset > self.delivered_offsets.get(key, -1):
                self.delivered_offsets[key] = offset
        with self._reports_lock:
            self._reports.append((delivery, error))
            if self._settle_scheduled:
                return
            self._settle_scheduled = True
        assert self._loop is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._settle_reports)

    def _settle_reports(self) -> None:
        with self._reports_lock:
            reports, self._reports = self._reports, []
            self._settle_scheduled = False
        delivered: Counter[str] = Counter()
        for delivery, error in reports:
            if delivery.future.done():
                continue
            if error is None:
                delivery.future.set_result(None)
                delivered[delivery.topic] += 1
            else:
                delivery.future.set_exception(KafkaException(error))
        for topic, count in delivered.items():
            metrics.records_produced.labels(topic).inc(count)


def _key(user_id: int) -> bytes:
    return orjson.dumps(user_id)  # what Faust's "json" key serializer writes for an int key


class UserTable:
    """One user table: its Faust RocksDB store read and written by the user's partition."""

    def __init__(self, table: faust.Table, *, changelog_topic: str, partitions: int) -> None:
        self.table = table
        self.changelog_topic = changelog_topic
        self.partitions = partitions

    def _db(self, partition: int) -> Any:
        return self.table.data._db_for_partition(partition)

    def get(self, user_id: int) -> bytes | None:
        return self._db(partition_for_id(user_id, self.partitions)).get(_key(user_id))

    def write(self, values: Mapping[int, bytes | None], send: Send) -> list[Delivery]:
        """One RocksDB write batch per partition, then one changelog record per key; their deliveries."""
        import rocksdict  # Faust's own RocksDB binding

        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for user_id, value in values.items():
            by_partition.setdefault(partition_for_id(user_id, self.partitions), []).append((_key(user_id), value))
        deliveries = []
        key_index = self.table.data._key_index
        for partition, items in by_partition.items():
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in items:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            self._db(partition).write(batch)
            for key, value in items:
                key_index[key] = partition  # where Faust's own reads (outside an event) look first
                deliveries.append(send(self.changelog_topic, key, value, partition=partition))
        return deliveries

    def persisted(self, partitions: Iterable[int], delivered_offsets: Mapping[tuple[str, int], int]) -> None:
        """Record the changelog offsets reached: Faust's recovery resumes after them. An offset past this
        batch's own records is safe too: every changelog record is written locally before it is sent."""
        for partition in partitions:
            offset = delivered_offsets.get((self.changelog_topic, partition))
            if offset is not None:
                self.table.data.set_persisted_offset(TP(self.changelog_topic, partition), offset)


class UserTables:
    """The worker's user tables behind write-back caches, flushed together once per batch."""

    def __init__(
        self, tables: Mapping[str, UserTable], *, read: Callable[[str, UserTable], Callable[[int], bytes | None]],
        forwarder: BatchedForwarder,
    ) -> None:
        self.tables = dict(tables)
        self.forwarder = forwarder
        self.caches = {name: WriteBackCache(read(name, table)) for name, table in self.tables.items()}

    def flush(self) -> "Flush":
        """Write every pending value (synchronously: nothing else runs meanwhile) and send its changelog."""
        deliveries: list[Delivery] = []
        touched: dict[str, set[int]] = {}
        for name, cache in self.caches.items():
            pending = cache.take_pending()
            if not pending:
                continue
            table = self.tables[name]
            deliveries.extend(table.write(pending, self.forwarder.send))
            touched[name] = {partition_for_id(user_id, table.partitions) for user_id in pending}
        return Flush(self, deliveries, touched)


class Flush:
    """A flush's changelog records: `deliveries` to await, then `persisted()`."""

    def __init__(self, tables: UserTables, deliveries: list[Delivery], touched: dict[str, set[int]]) -> None:
        self.tables = tables
        self.deliveries = deliveries
        self.touched = touched

    def persisted(self) -> None:
        offsets = self.tables.forwarder.delivered_offsets
        for name, partitions in self.touched.items():
            self.tables.tables[name].persisted(partitions, offsets)
