"""Broker clients for the worker's background queries (order barrier, lag), robust to broker pauses.

- After a broker restart or a long pause, librdkafka's admin ListOffsets can keep failing with
  FENCED_LEADER_EPOCH on a client's stale metadata (confluentinc/librdkafka#4620 describes the loop; we saw
  it persist after a 40 s broker pause), or with "transport failure" while a new client connects at once.
  `RenewableClient` replaces such a client, keeping the old one alive for a while rather than freeing it with
  requests pending.
- Committed offsets are read with a group-less-joined `Consumer.committed()`, never with the admin client's
  ListConsumerGroupOffsets: an admin OffsetFetch answered NOT_COORDINATOR (as after that broker pause)
  crashes librdkafka (SIGSEGV in rd_kafka_handle_OffsetFetch, a NULL consumer group: the admin client has
  none; reported as confluentinc/confluent-kafka-javascript#374 and confluent-kafka-python#1982). The
  worker died of it twice in our broker-pause test.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from foryou.settings import KafkaSecurity, librdkafka_config

RETIRED_KEEP_S = 120.0  # far longer than any request timeout used with these clients


class RenewableClient:
    def __init__(self, new_client: Callable[[], Any]) -> None:
        self._new_client = new_client
        self._client = new_client()
        self._retired: list[tuple[float, Any]] = []
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self._client

    def renew(self) -> None:
        """Use a new client from now on; the old one is freed only after `RETIRED_KEEP_S`."""
        with self._lock:
            now = time.monotonic()
            self._retired = [(at, c) for at, c in self._retired if now - at < RETIRED_KEEP_S]
            self._retired.append((now, self._client))
            self._client = self._new_client()


def stale_metadata(exc: BaseException) -> bool:
    """True for the errors a new client's fresh metadata cures (not for timeouts: the broker is away)."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(error, KafkaError) and error.code() in _STALE_METADATA


_STALE_METADATA = {
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
}


def committed_reader(bootstrap: str, group: str, client_id: str, security: KafkaSecurity | None = None) -> Consumer:
    """A consumer of `group` that never subscribes (so never joins the group): it only reads commits."""
    config = {"group.id": group, "client.id": client_id, "enable.auto.commit": False, "log_level": 3}
    return Consumer(librdkafka_config(bootstrap, security, config))


def committed_offsets(reader: Consumer, tps: list[tuple[str, int]], timeout_s: float) -> dict[tuple[str, int], int]:
    """The group's committed offset per partition (-1 where none)."""
    found = reader.committed([TopicPartition(topic, p) for topic, p in tps], timeout=timeout_s)
    return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else -1 for tp in found}
