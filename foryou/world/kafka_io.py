"""The world's Kafka plumbing: produce wire values at a chosen rate, pin where a new worker starts reading,
and collect the answers to a batch of requests from ranked-feeds.

Where a new worker starts: a worker with a new app id is a new consumer group, and a new group reads the
public topics from their earliest offset, so it would ingest every earlier replay and loop on the broker
(and a re-created post is ignored by the post store, so an earlier replay's timestamps would win). Before
starting the worker, `commit_offsets(group, end_offsets(...))` commits the current end of each public topic
for the new group; the worker then starts there and sees exactly what is produced afterwards.
"""

import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from tqdm import tqdm

from foryou.settings import KafkaSecurity, librdkafka_config
from foryou.world.wire import WireValue, WorldEvent
from topics.partitioning import LIBRDKAFKA_PARTITIONER
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS
from topics.validation import decode_ranked_feed

# The public topics a worker consumes.
WORKER_INPUTS = (TWEET_EVENTS, ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, FEED_REQUESTS)
_PACE_EVERY = 200  # events between rate checks and progress updates

Offsets = dict[tuple[str, int], int]


class EventProducer:
    """Produces wire values (orjson, keys as given) as fast as the broker takes them, or at `rate`/s."""

    def __init__(self, bootstrap: str, client_id: str = "foryou-world") -> None:
        self._producer = Producer(librdkafka_config(bootstrap, config={
            "client.id": client_id,
            "linger.ms": 5,
            "acks": "all",
            "enable.idempotence": True,  # a retry never reorders nor duplicates a user's events
            "queue.buffering.max.messages": 500_000,
            "partitioner": LIBRDKAFKA_PARTITIONER,
        }))

    def send(self, topic: str, key: bytes, value: WireValue) -> None:
        payload = orjson.dumps(value)
        while True:
            try:
                self._producer.produce(topic, key=key, value=payload)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                self._producer.poll(0.05)
        self._producer.poll(0)

    def send_events(
        self, events: Iterable[WorldEvent], *, rate: float | None = None, progress: tqdm | None = None
    ) -> dict[str, int]:
        """Produce every event (in order); returns counts per topic. `rate` caps events per second."""
        counts: dict[str, int] = {}
        started = time.monotonic()
        for sent, event in enumerate(events, start=1):
            self.send(event.topic, event.key, event.value)
            counts[event.topic] = counts.get(event.topic, 0) + 1
            if sent % _PACE_EVERY == 0:
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                if progress is not None:
                    progress.update(_PACE_EVERY)
        if progress is not None:
            progress.update(sum(counts.values()) - progress.n)
        self.flush()
        return counts

    def flush(self, timeout_s: float = 60.0) -> None:
        if self._producer.flush(timeout_s) > 0:
            raise RuntimeError(f"records still undelivered after {timeout_s}s")


def ensure_public_topics(
    bootstrap: str, timeout_s: float = 30.0, security: KafkaSecurity | None = None
) -> list[str]:
    """Create the public topics that are missing (as `topics.specs` declares them); returns those created."""
    from confluent_kafka.admin import NewTopic

    from topics.specs import TOPICS

    admin = AdminClient(librdkafka_config(bootstrap, security, {"log_level": 3}))
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [spec for spec in TOPICS if spec.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(spec.name, num_partitions=spec.partitions, replication_factor=-1, config=dict(spec.config))
         for spec in missing],
        operation_timeout=timeout_s,
    )
    for future in futures.values():
        try:
            future.result()
        except Exception as exc:  # created meanwhile by a worker: fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return [spec.name for spec in missing]


def end_offsets(bootstrap: str, topics: Iterable[str] = WORKER_INPUTS, timeout_s: float = 10.0) -> Offsets:
    """The current end offset of every partition of `topics` (which must exist)."""
    probe = Consumer(librdkafka_config(bootstrap, config={"group.id": "foryou-world-probe", "log_level": 3}))
    try:
        offsets: Offsets = {}
        for topic in topics:
            metadata = probe.list_topics(topic, timeout=timeout_s).topics[topic]
            if metadata.error is not None or not metadata.partitions:
                raise RuntimeError(f"topic {topic} does not exist on {bootstrap}")
            for partition in metadata.partitions:
                offsets[(topic, partition)] = _high_watermark(probe, TopicPartition(topic, partition), timeout_s)
        return offsets
    finally:
        probe.close()


def _high_watermark(probe: Consumer, partition: TopicPartition, timeout_s: float) -> int:
    """The partition's end offset, retried while the broker is still electing its leader (a new topic)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return probe.get_watermark_offsets(partition, timeout=timeout_s)[1]
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def commit_offsets(bootstrap: str, group: str, offsets: Offsets, timeout_s: float = 120.0) -> None:
    """Commit `offsets` for a consumer group that has no running member (e.g. before its worker starts).
    The first commit on a fresh broker creates the offsets topic and loads its coordinator, which took
    over 30 s on this shared machine under load: hence the generous timeout."""
    admin = AdminClient(librdkafka_config(bootstrap, config={"log_level": 3}))
    partitions = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, partitions)])
    futures[group].result(timeout_s)


class AnswerReader:
    """Reads ranked-feeds from its end as of construction, decoded with the wire contract, and collects the
    answers to a whole batch of requests in one polling loop on the caller's thread (`FeedClient` waits
    for one request at a time)."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(librdkafka_config(bootstrap, config={
            "group.id": f"foryou-world-answers-{uuid.uuid4().hex}",  # never committed: offsets are assigned
            "enable.auto.commit": False,
            "log_level": 3,
        }))
        partitions = self._consumer.list_topics(RANKED_FEEDS, timeout=30).topics[RANKED_FEEDS].partitions
        assignment = []
        for partition in partitions:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(RANKED_FEEDS, partition), timeout=30)
            assignment.append(TopicPartition(RANKED_FEEDS, partition, high))
        self._consumer.assign(assignment)

    def collect(self, request_ids: Iterable[str], timeout_s: float = 30.0) -> dict[str, dict[str, Any]]:
        """The answers to `request_ids` that arrive within `timeout_s` (missing ones are left out), each
        with "received_at" (time.time() when read) added."""
        wanted = set(request_ids)
        answers: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while wanted and time.monotonic() < deadline:
            message = self._consumer.poll(0.05)
            if message is None or message.error():
                continue
            try:
                record = decode_ranked_feed(message.value())
            except ValueError:
                continue  # not an answer this reader can use; never its to fix
            if record.request_id in wanted:
                wanted.discard(record.request_id)
                answers[record.request_id] = record.to_dict() | {"received_at": time.time()}
        return answers

    def wait(self, request_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        answer = self.collect([request_id], timeout_s).get(request_id)
        if answer is None:
            raise TimeoutError(f"no answer to {request_id} on {RANKED_FEEDS} within {timeout_s:.0f}s")
        return answer

    def close(self) -> None:
        self._consumer.close()
