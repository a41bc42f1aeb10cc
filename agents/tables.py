"""The user tables: Faust RocksDB tables whose keys and values are checked whenever they come back.

A value its store cannot decode can reach a table two ways, and neither may stop the worker:
- a record on the table's changelog topic that the worker did not write (anyone who can write the topic
  can). Changelog records are checked as Faust applies them (recovery, standby replicas): one whose key is
  not a user id (`bad_key`) or whose value its store cannot decode (`corrupt_state`) is dead-lettered with
  its changelog topic, partition and offset, and not applied, so the table keeps that key's last good value;
- a damaged local value (RocksDB files). Every read checks the value (microseconds; the stores decode it
  anyway): one that fails is explained corruption, counted in `foryou_table_corrupt_values_total{table}`
  and dead-lettered (`corrupt_state`, the changelog topic, the user's partition, offset -1, the stored
  bytes), then read as absent: that user's state in that table starts again empty, and the user's next
  write replaces the value (tables are written a batch at a time, agents.user_tables, never by a read).

A table may also merge what its changelog brings back into what it holds (`merge_value`), for values that
only ever grow: the answered request ids. Faust's recovery of a partition this worker keeps across a
rebalance (a rejoin after a broker pause) replays the changelog from the last offset whose send was confirmed
up to the end, over a local value that can be newer: records the broker had but had not confirmed, older than
later writes still in the producer's buffer. Replayed as they are, they would set the value back, and the
request ids lost would be answered again when their requests are read again (input past the last commit
is); merged, nothing remembered is forgotten. (Found by reading Faust's recovery, not observed.)
"""

import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, Protocol

import faust
import orjson
from faust.types import TP, EventT

from agents import metrics
from agents.dead_letters import DeadLetters
from topics.dead_letters import BAD_KEY, CORRUPT_STATE
from topics.limits import MAX_ID
from topics.partitioning import partition_for_id

log = logging.getLogger(__name__)

CheckValue = Callable[[bytes], None]  # raises when the bytes are not a value the table's store wrote
MergeValue = Callable[[bytes, bytes], bytes]  # (the value held, the changelog's) -> the value to keep


def check_answered_value(value: bytes) -> None:
    """The answered-requests table (agents.feeds): an orjson list of request ids."""
    ids = orjson.loads(value)
    if type(ids) is not list or not all(type(request_id) is str for request_id in ids):
        raise ValueError("not a list of request ids")


def _user_id(key: bytes | None) -> int:
    """The user id a table key holds (Faust's JSON key serializer: b"42"); ValueError otherwise."""
    user_id = orjson.loads(key) if key else None
    if type(user_id) is not int or not 0 < user_id <= MAX_ID:
        raise ValueError(f"key {key[:40]!r} is not a user id" if key else "the key is null")
    return user_id


class GuardedTable(faust.Table):
    """A Faust table that dead-letters the changelog records it cannot apply instead of storing them."""

    check_value: CheckValue
    dead_letters: DeadLetters
    merge_value: MergeValue | None = None

    def _new_changelog_topic(self, **kwargs: Any) -> faust.TopicT:
        # Keys are read back raw: a record whose key is not JSON then reaches `apply_changelog_batch`, to be
        # dead-lettered, instead of failing in Faust's decoding (which logs it and reads it again at every
        # recovery). Writes still encode keys as JSON: `send_changelog` passes the table's key serializer.
        topic = super()._new_changelog_topic(**kwargs)
        raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        return topic.derive(schema=raw, key_type=bytes, value_type=bytes, key_serializer="raw")

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        good: list[EventT] = []
        applied: dict[TP, int] = {}
        skipped: dict[TP, int] = {}
        for event in batch:
            message = event.message
            problem = _changelog_problem(message.key, message.value, self.check_value)
            if problem is None:
                good.append(event)
                applied[message.tp] = max(applied.get(message.tp, -1), message.offset)
                continue
            reason, detail = problem
            self.dead_letters(
                reason=reason, detail=f"table {self.name}: {detail}", topic=message.topic,
                partition=message.partition, offset=message.offset, key=message.key, value=message.value,
                headers=message.headers,
            )
            skipped[message.tp] = max(skipped.get(message.tp, -1), message.offset)
        if self.merge_value is not None:
            self._merge_with_held(good, self.merge_value)
        super().apply_changelog_batch(good)
        for tp, offset in skipped.items():
            if offset > applied.get(tp, -1):  # recovery resumes after a skipped record too
                self.data.set_persisted_offset(tp, offset)


    def _merge_with_held(self, events: list[EventT], merge: MergeValue) -> None:
        """Each changelog value becomes its merge with the value held for its key (a deletion stays one)."""
        held: dict[tuple[int, bytes], bytes | None] = {}
        for event in events:
            message = event.message
            slot = (message.partition, message.key)
            if slot not in held:
                held[slot] = self.data._db_for_partition(message.partition).get(message.key)
            current = held[slot]
            if message.value is not None and current is not None:
                try:
                    message.value = merge(current, message.value)
                except Exception:  # a damaged value held: the changelog's replaces it (as without merging)
                    log.warning("table %s: held value of key %r not merged", self.name, message.key)
            held[slot] = message.value


def _changelog_problem(key: bytes | None, value: bytes | None, check_value: CheckValue) -> tuple[str, str] | None:
    try:
        _user_id(key)
    except ValueError as error:
        return BAD_KEY, str(error)
    if value is None:
        return None  # a deletion
    try:
        check_value(value)
    except Exception as error:  # any failure to decode means the value is not ours
        return CORRUPT_STATE, f"{type(error).__name__}: {error}"
    return None


def guarded_table(
    app: faust.App, name: str, *, partitions: int, check_value: CheckValue, dead_letters: DeadLetters,
    merge_value: MergeValue | None = None,
) -> GuardedTable:
    """Like `app.Table(name, key_type=int, value_type=bytes, partitions=...)`, with checked changelogs (and
    `merge_value` applied to what they bring back)."""
    table = GuardedTable(
        app, name=name, key_type=int, value_type=bytes, partitions=partitions, beacon=app.tables.beacon
    )
    table.check_value = check_value
    table.dead_letters = dead_letters
    table.merge_value = merge_value
    app.tables.add(table)
    return table


class ReadByKey(Protocol):
    def get(self, key: int, /) -> bytes | None: ...


class CheckedTable(MutableMapping[int, bytes]):
    """What the stores read and write: the table, each value read back checked (see the module docstring)."""

    # Corrupt values reported while no event could delete them (e.g. /inspect): reported once each.
    MAX_REPORTED = 10_000

    def __init__(
        self, table: MutableMapping[int, bytes] | ReadByKey, *, name: str, changelog_topic: str, partitions: int,
        check_value: CheckValue, dead_letters: DeadLetters,
    ) -> None:
        self._table = table
        self._name = name
        self._changelog_topic = changelog_topic
        self._partitions = partitions
        self._check_value = check_value
        self._dead_letters = dead_letters
        self._reported: dict[int, int] = {}

    def get(self, key: int, default: Any = None) -> Any:
        value = self._table.get(key)
        if value is None:
            return default
        try:
            self._check_value(value)
        except Exception as error:  # any failure to decode means the value is not ours
            self._corrupt(key, value, error)
            return default
        return value

    def _corrupt(self, key: int, value: bytes, error: Exception) -> None:
        if self._reported.get(key) != hash(value):
            metrics.table_corrupt_values.labels(self._name).inc()
            self._dead_letters(
                reason=CORRUPT_STATE, detail=f"stored value of user {key}: {type(error).__name__}: {error}",
                topic=self._changelog_topic, partition=partition_for_id(key, self._partitions), offset=-1,
                key=orjson.dumps(key), value=value,
            )
            if len(self._reported) >= self.MAX_REPORTED:
                self._reported.clear()
            self._reported[key] = hash(value)

    def __getitem__(self, key: int) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and self.get(key) is not None

    def __setitem__(self, key: int, value: bytes) -> None:
        self._table[key] = value

    def __delitem__(self, key: int) -> None:
        del self._table[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)
