"""A Python client for foryou's topics: produce events and feed requests, receive ranked feeds.

    with FeedClient() as client:
        client.post(post_id=1, author_id=7, text="hello")
        client.follow(user_id=3, target_id=7)
        feed = client.request(3, max_results=20)   # waits for the answer with this request_id

Answers are matched to requests by `request_id` over `ranked-feeds`. The client reads that topic from its end
at the moment it first needs it, so it sees every answer to requests it sends afterwards.
"""

import itertools
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaException, Producer, TopicPartition

from foryou.settings import kafka_bootstrap
from topics.schemas import (
    Engagement,
    FeedRequest,
    Record,
    SocialGraphEvent,
    TweetCreate,
    TweetDelete,
    encode,
    record_key,
)
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS
from topics.validation import (
    decode_engagement,
    decode_feed_request,
    decode_ranked_feed,
    decode_social_graph_event,
    decode_tweet_event,
)

_TOPIC_OF = {
    TweetCreate: (TWEET_EVENTS, decode_tweet_event),
    TweetDelete: (TWEET_EVENTS, decode_tweet_event),
    Engagement: (ENGAGEMENT_EVENTS, decode_engagement),
    SocialGraphEvent: (SOCIAL_GRAPH_EVENTS, decode_social_graph_event),
    FeedRequest: (FEED_REQUESTS, decode_feed_request),
}


class FeedTimeout(TimeoutError):
    """No answer arrived on ranked-feeds for a request within the timeout."""


def _now_ms() -> int:
    return int(time.time() * 1000)


class FeedClient:
    def __init__(self, bootstrap: str | None = None, *, client_id: str = "foryou-client") -> None:
        self.bootstrap = bootstrap or kafka_bootstrap()
        self._producer = Producer(
            {"bootstrap.servers": self.bootstrap, "client.id": client_id, "linger.ms": 2, "acks": "all"}
        )
        self._client_id = client_id
        self._lock = threading.Condition()
        self._answers: dict[str, dict[str, Any]] = {}
        self._waiting: set[str] = set()
        self._subscribers: list[tuple[int | None, queue.Queue[dict[str, Any]]]] = []
        self._reader: threading.Thread | None = None
        self._reader_error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()

    # -- producing --------------------------------------------------------------------------------------

    def send(self, record: Record, *, flush: bool = False) -> None:
        """Validate `record` with the worker's own decoder, then produce it to its topic."""
        topic, decode = _TOPIC_OF[type(record)]
        value = encode(record)
        decode(value)  # raises topics.validation.InvalidRecord: the worker would dead-letter it
        self._producer.produce(topic, key=record_key(record), value=value)
        self._producer.poll(0)
        if flush:
            self.flush()

    def flush(self, timeout_s: float = 30.0) -> None:
        if self._producer.flush(timeout_s) > 0:
            raise KafkaException(f"messages still undelivered after {timeout_s}s to {self.bootstrap}")

    def post(self, post_id: int, author_id: int, *, created_at_ms: int | None = None, **fields: Any) -> None:
        self.send(TweetCreate(post_id, author_id, created_at_ms or _now_ms(), **fields))

    def delete(self, post_id: int, author_id: int, *, deleted_at_ms: int | None = None) -> None:
        self.send(TweetDelete(post_id, author_id, deleted_at_ms or _now_ms()))

    def engage(
        self, user_id: int, post_id: int, author_id: int, action: str, *,
        surface: str = "home_for_you", ts_ms: int | None = None, dwell_ms: int | None = None,
    ) -> None:
        self.send(Engagement(user_id, post_id, author_id, action, surface, ts_ms or _now_ms(), dwell_ms))

    def social(
        self, kind: str, user_id: int, *, target_id: int | None = None, keyword: str | None = None,
        ts_ms: int | None = None,
    ) -> None:
        self.send(SocialGraphEvent(kind, user_id, ts_ms or _now_ms(), target_id, keyword))

    def follow(self, user_id: int, target_id: int) -> None:
        self.social("follow", user_id, target_id=target_id)

    # -- feeds ------------------------------------------------------------------------------------------

    def expect(self, request_id: str) -> None:
        """Collect the answer to `request_id` (a request sent by any producer) for a later `wait`."""
        self._start_reader()
        with self._lock:
            self._waiting.add(request_id)

    def send_request(self, user_id: int, *, request_id: str | None = None, **options: Any) -> str:
        """Produce a feed request and return its request_id; `wait` collects the answer."""
        request = FeedRequest(request_id or uuid.uuid4().hex, user_id, **options)
        self.expect(request.request_id)
        self.send(request, flush=True)
        return request.request_id

    def wait(self, request_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while request_id not in self._answers:
                if self._reader_error is not None:
                    raise RuntimeError("ranked-feeds reader failed") from self._reader_error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._waiting.discard(request_id)
                    raise FeedTimeout(
                        f"no answer to request {request_id} on {RANKED_FEEDS} within {timeout_s:.1f}s "
                        f"(is a worker running against {self.bootstrap}?)"
                    )
                self._lock.wait(remaining)
            self._waiting.discard(request_id)
            return self._answers.pop(request_id)

    def request(self, user_id: int, *, timeout_s: float = 30.0, **options: Any) -> dict[str, Any]:
        """Request a user's feed and wait for its answer (a dict as on `ranked-feeds`)."""
        return self.wait(self.send_request(user_id, **options), timeout_s)

    def subscribe(
        self, user_id: int | None = None, timeout_s: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield answers on ranked-feeds as they arrive (one user's, or everyone's); stops after
        `timeout_s` without an answer when given."""
        self._start_reader()
        inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        entry = (user_id, inbox)
        with self._lock:
            self._subscribers.append(entry)
        try:
            while True:
                try:
                    yield inbox.get(timeout=timeout_s)
                except queue.Empty:
                    return
        finally:
            with self._lock:
                self._subscribers.remove(entry)

    def _start_reader(self) -> None:
        with self._lock:
            if self._reader is None:
                self._reader = threading.Thread(target=self._read_answers, name="ranked-feeds", daemon=True)
                self._reader.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"could not start reading {RANKED_FEEDS} from {self.bootstrap}")

    def _read_answers(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"{self._client_id}-{uuid.uuid4().hex}",  # never committed: offsets are assigned
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            metadata = consumer.list_topics(RANKED_FEEDS, timeout=30)
            partitions = metadata.topics[RANKED_FEEDS].partitions
            # Start from each partition's end as resolved now, so no answer to a later request is missed.
            assignment = []
            for p in partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(RANKED_FEEDS, p), timeout=30)
                assignment.append(TopicPartition(RANKED_FEEDS, p, high if high >= 0 else OFFSET_END))
            consumer.assign(assignment)
            self._ready.set()
            while not self._stop.is_set():
                message = consumer.poll(0.1)
                if message is None or message.error():
                    continue
                try:
                    answer = decode_ranked_feed(message.value()).to_dict()
                except ValueError:
                    continue  # not an answer this client can read; never this client's to fix
                self._deliver(answer)
        except BaseException as exc:
            with self._lock:
                self._reader_error = exc
                self._lock.notify_all()
            self._ready.set()
        finally:
            consumer.close()

    def _deliver(self, answer: dict[str, Any]) -> None:
        with self._lock:
            if answer["request_id"] in self._waiting:
                self._answers[answer["request_id"]] = answer
                self._lock.notify_all()
            for user_id, inbox in self._subscribers:
                if user_id is None or user_id == answer["user_id"]:
                    inbox.put(answer)

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(5)
        self._producer.flush(10)

    def __enter__(self) -> "FeedClient":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def unique_ids(start: int | None = None) -> Iterator[int]:
    """Fresh positive ids (time-based), for demos and tests that share a broker."""
    return itertools.count(start or (time.time_ns() // 1000) % (1 << 50) + 1)
