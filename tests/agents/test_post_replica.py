"""The post replica applies what it can and dead-letters the rest, and its offsets always move on.

Its Kafka consumer is not involved: records are handed to `_apply` as the consumer would, so a real post
store (RocksDB) and the real dead-letter path (down to the headers) are exercised without a broker.
"""

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord

from agents import metrics
from agents.dead_letters import DeadLetters
from agents.envelope import encode_follower_delta
from agents.post_replica import PostReplica
from stores.post_store import Applied, PostStore
from topics.dead_letters import parse_dead_letter_headers
from topics.specs import DEAD_LETTERS

TOPIC = "app-post-log"


def record(partition: int, offset: int, value: bytes | None, key: bytes | None = b"1") -> ConsumerRecord:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, key, value, None, 0, 0, [])


def create(post_id: int, author_id: int = 7, **fields: object) -> bytes:
    now = int(time.time() * 1000)
    return orjson.dumps({"v": 1, "type": "create", "post_id": post_id, "author_id": author_id,
                         "created_at_ms": now, "text": "", "media": "none", "subscriber_only": False, **fields})


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list]] = []
        self.applied: list[Applied] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: list) -> None:
        self.sent.append((topic, key, value, headers))

    async def on_applied(self, applied: Applied) -> None:
        self.applied.append(applied)


@pytest.fixture
def replica(tmp_path: Path) -> tuple[PostReplica, Sink]:
    sink = Sink()
    store = PostStore(str(tmp_path / "posts"))
    replica = PostReplica(
        bootstrap="unused:9092", topic=TOPIC, partitions=2, post_store=store, on_applied=sink.on_applied,
        dead_letters=DeadLetters(sink.send),
    )
    yield replica, sink
    store.close()


def dead_letter_reasons(sink: Sink) -> list[tuple[str, int, int, bytes | None]]:
    found = []
    for topic, _, value, headers in sink.sent:
        assert topic == DEAD_LETTERS
        context = parse_dead_letter_headers(headers)
        assert context.source_topic == TOPIC
        found.append((context.reason, context.source_partition, context.source_offset, value))
    return found


def test_poison_records_are_dead_lettered_and_the_rest_applied(replica: tuple[PostReplica, Sink]) -> None:
    post_replica, sink = replica
    before = metrics.dead_letters.labels(TOPIC, "not_object")._value.get()
    messages = [
        record(0, 10, create(1)),
        record(0, 11, b"[]"),  # the record that used to crash the replica and the worker on every restart
        record(1, 5, b"\x00garbage"),
        record(1, 6, orjson.dumps({"v": 1, "type": "create", "post_id": "2"})),
        record(1, 7, None, key=None),
        record(1, 8, encode_follower_delta(7, 1)),
        record(0, 12, create(3)),
    ]
    asyncio.run(post_replica._apply(messages))
    assert dead_letter_reasons(sink) == [
        ("not_object", 0, 11, b"[]"),
        ("not_json", 1, 5, b"\x00garbage"),
        ("wrong_type", 1, 6, messages[3].value),
        ("empty", 1, 7, None),
    ]
    assert metrics.dead_letters.labels(TOPIC, "not_object")._value.get() == before + 1
    store = post_replica.post_store
    assert store.get(1) is not None and store.get(3) is not None
    assert store.follower_count(7) == 1
    assert store.offsets() == {0: 13, 1: 9}  # past every record, the dead-lettered ones too
    assert [a.added for a in sink.applied] == [{1: 7, 3: 7}]


def test_a_record_the_checks_let_through_but_the_store_cannot_apply_is_found_one_by_one(
    replica: tuple[PostReplica, Sink], monkeypatch: pytest.MonkeyPatch
) -> None:
    post_replica, sink = replica
    store = post_replica.post_store
    real_apply = store.apply

    def apply_failing_on_post_2(events: list[dict], offsets: dict[int, int] | None = None) -> Applied:
        if any(event.get("post_id") == 2 for event in events):
            raise KeyError("a bug in the store, say")
        return real_apply(events, offsets)

    monkeypatch.setattr(store, "apply", apply_failing_on_post_2)
    asyncio.run(post_replica._apply([record(0, 0, create(1)), record(0, 1, create(2)), record(0, 2, create(3))]))
    assert [(reason, offset) for reason, _, offset, _ in dead_letter_reasons(sink)] == [("processing_error", 1)]
    assert store.get(1) is not None and store.get(2) is None and store.get(3) is not None
    assert store.offsets() == {0: 3}
    assert sorted(post_id for applied in sink.applied for post_id in applied.added) == [1, 3]
