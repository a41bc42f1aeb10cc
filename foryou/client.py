"""Python clients for foryou's topics: produce events and feed requests, receive ranked feeds.

    with FeedClient() as client:
        client.post(post_id=1, author_id=7, text="hello")
        client.follow(user_id=3, target_id=7)
        feed = client.request(3, max_results=20)   # waits for the answer with this request_id

    async with AsyncFeedClient() as client:         # the same, for asyncio code
        await client.follow(3, 7)
        feed = await client.request(3)
        async with client.subscribe(user_id=3) as answers:
            async for answer in answers:
                ...

Answers are matched to requests by `request_id` over `ranked-feeds`. The client reads that topic from its end
at the moment it first needs it, so it sees every answer to requests it sends afterwards. Every record is
validated with the worker's own decoder before it is produced: what the worker would dead-letter is refused
here with `topics.validation.InvalidRecord`.

One implementation of the correlation (`AnswerRouter`), fed by one reader thread; the async client wraps the
sync one: its futures become asyncio futures, its subscribers asyncio queues, its flushes run in a thread.
"""

import abc
import asyncio
import itertools
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Generic, TypeVar

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from foryou.settings import KafkaSecurity, kafka_bootstrap, librdkafka_config
from topics.partitioning import LIBRDKAFKA_PARTITIONER
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

Answer = dict[str, Any]
# What a subscriber is handed: an answer, or the error that stopped the reader (then nothing more comes).
Delivery = Answer | BaseException
R = TypeVar("R")


class FeedTimeout(TimeoutError):
    """No answer arrived on ranked-feeds for a request within the timeout."""


class ReaderFailed(RuntimeError):
    """The thread reading ranked-feeds stopped; no answer can arrive any more."""


class BrokerRefused(ConnectionError):
    """The broker refused this client: missing or wrong credentials, an untrusted certificate, or an ACL."""


# Errors no retry can fix: the broker refused who this client is, or what it asked for.
_REFUSALS = frozenset({
    KafkaError._AUTHENTICATION,
    KafkaError._SSL,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
})


class BrokerErrors:
    """What librdkafka reported about the connection (its `error_cb`) and about deliveries, kept so that a
    failure can say why: a refusal fails at once, other errors are named when a wait times out."""

    def __init__(self, bootstrap: str, security: KafkaSecurity) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.refusal: KafkaError | None = None
        self.last: KafkaError | None = None
        self.undelivered: KafkaError | None = None

    def on_error(self, error: KafkaError) -> None:
        if self.last is None or error.code() != KafkaError._ALL_BROKERS_DOWN:  # keep the error that says why
            self.last = error
        if error.code() in _REFUSALS:
            self.refusal = error

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.undelivered = error
            self.on_error(error)

    def raise_if_refused(self) -> None:
        if self.refusal is not None:
            raise BrokerRefused(
                f"the broker at {self.bootstrap} refused this client ({self.security.summary()}): "
                f"{self.refusal.str()}"
            )

    def detail(self) -> str:
        """What to check, for a message about a wait that timed out."""
        last = "" if self.last is None else f"; last error: {self.last.str()}"
        return (f" ({self.security.summary()}{last}; is the broker reachable, and do the security settings "
                "match its listener?)")


def _now_ms() -> int:
    return int(time.time() * 1000)


class AnswerRouter:
    """Hands each answer read from ranked-feeds to the future of its request_id and to the subscribers of its
    user. Thread-safe: the reader thread delivers, any thread (or event loop) expects and subscribes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Answer]] = {}
        self._subscribers: dict[int, tuple[int | None, Callable[[Delivery], None]]] = {}
        self._tokens = itertools.count()
        self._failure: BaseException | None = None

    def expect(self, request_id: str) -> "Future[Answer]":
        """The future of `request_id`'s answer (the same one for repeated calls until `forget`)."""
        with self._lock:
            future = self._pending.get(request_id)
            if future is None:
                future = self._pending[request_id] = Future()
                if self._failure is not None:
                    future.set_exception(ReaderFailed(f"{RANKED_FEEDS} reader failed: {self._failure!r}"))
            return future

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def subscribe(self, user_id: int | None, deliver: Callable[[Delivery], None]) -> int:
        """Call `deliver` with every answer for `user_id` (every answer when None); returns a token."""
        with self._lock:
            token = next(self._tokens)
            self._subscribers[token] = (user_id, deliver)
            if self._failure is not None:
                deliver(self._failure)
            return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._subscribers.pop(token, None)

    def deliver(self, answer: Answer) -> None:
        with self._lock:
            # Kept until `forget`: a waiter may come for it after it arrived.
            future = self._pending.get(answer["request_id"])
            user = answer["user_id"]
            targets = [deliver for wanted, deliver in self._subscribers.values() if wanted in (None, user)]
        if future is not None and not future.done():  # done: an async waiter gave up and cancelled it
            future.set_result(answer)
        for deliver in targets:
            self._hand_over(deliver, answer)

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    def fail(self, error: BaseException) -> None:
        with self._lock:
            self._failure = error
            pending, self._pending = list(self._pending.values()), {}
            targets = [deliver for _, deliver in self._subscribers.values()]
        for future in pending:
            if not future.done():
                future.set_exception(ReaderFailed(f"{RANKED_FEEDS} reader failed: {error!r}"))
        for deliver in targets:
            self._hand_over(deliver, error)

    def _hand_over(self, deliver: Callable[[Delivery], None], delivery: Delivery) -> None:
        try:
            deliver(delivery)
        except Exception:  # e.g. an async subscriber whose event loop has closed: it can receive no more
            with self._lock:
                for token, (_, registered) in list(self._subscribers.items()):
                    if registered is deliver:
                        del self._subscribers[token]


class Subscription:
    """A subscriber's answers (see `FeedClient.subscribe`): an iterator, closed when done."""

    def __init__(self, router: AnswerRouter, user_id: int | None, timeout_s: float | None) -> None:
        self._router = router
        self._timeout_s = timeout_s
        self._inbox: queue.Queue[Delivery] = queue.Queue()
        self._token: int | None = router.subscribe(user_id, self._inbox.put)

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> Answer:
        if self._token is None:
            raise StopIteration
        try:
            delivery = self._inbox.get(timeout=self._timeout_s)
        except queue.Empty:
            self.close()
            raise StopIteration from None
        if isinstance(delivery, BaseException):
            self.close()
            raise ReaderFailed(f"{RANKED_FEEDS} reader failed") from delivery
        return delivery

    def close(self) -> None:
        if self._token is not None:
            self._router.unsubscribe(self._token)
            self._token = None

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncSubscription:
    """A subscriber's answers for asyncio (see `AsyncFeedClient.subscribe`): fed from the reader thread
    through the event loop into an asyncio queue."""

    def __init__(self, client: "AsyncFeedClient", user_id: int | None, timeout_s: float | None) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def deliver(delivery: Delivery) -> None:  # called on the reader thread
            loop.call_soon_threadsafe(self._inbox.put_nowait, delivery)

        self._token: int | None = client.sync.answers.subscribe(user_id, deliver)

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> Answer:
        if self._token is None:
            raise StopAsyncIteration
        if not self._client.sync.reading:
            await self._client.start_reading()
        try:
            delivery = await asyncio.wait_for(self._inbox.get(), self._timeout_s)
        except TimeoutError:
            await self.aclose()
            raise StopAsyncIteration from None
        if isinstance(delivery, BaseException):
            await self.aclose()
            raise ReaderFailed(f"{RANKED_FEEDS} reader failed") from delivery
        return delivery

    async def aclose(self) -> None:
        if self._token is not None:
            self._client.sync.answers.unsubscribe(self._token)
            self._token = None

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _EventProducers(abc.ABC, Generic[R]):
    """The validated producers, shared by both clients; `send` is what makes them sync or async."""

    @abc.abstractmethod
    def send(self, record: Record, *, flush: bool = False) -> R: ...

    def post(self, post_id: int, author_id: int, *, created_at_ms: int | None = None, **fields: Any) -> R:
        """A new post; `fields` as in `topics.schemas.TweetCreate` (text, media, in_reply_to_post_id, ...)."""
        return self.send(TweetCreate(post_id, author_id, created_at_ms or _now_ms(), **fields))

    def delete(self, post_id: int, author_id: int, *, deleted_at_ms: int | None = None) -> R:
        return self.send(TweetDelete(post_id, author_id, deleted_at_ms or _now_ms()))

    def engage(
        self, user_id: int, post_id: int, author_id: int, action: str, *,
        surface: str = "home_for_you", ts_ms: int | None = None, dwell_ms: int | None = None,
    ) -> R:
        return self.send(Engagement(user_id, post_id, author_id, action, surface, ts_ms or _now_ms(), dwell_ms))

    def social(
        self, kind: str, user_id: int, *, target_id: int | None = None, keyword: str | None = None,
        ts_ms: int | None = None,
    ) -> R:
        """Any social-graph event: follow, unfollow, block, unblock, mute, unmute, mute_keyword, unmute_keyword."""
        return self.send(SocialGraphEvent(kind, user_id, ts_ms or _now_ms(), target_id, keyword))

    def follow(self, user_id: int, target_id: int) -> R:
        return self.social("follow", user_id, target_id=target_id)

    def unfollow(self, user_id: int, target_id: int) -> R:
        return self.social("unfollow", user_id, target_id=target_id)

    def block(self, user_id: int, target_id: int) -> R:
        return self.social("block", user_id, target_id=target_id)

    def mute(self, user_id: int, target_id: int) -> R:
        return self.social("mute", user_id, target_id=target_id)

    def mute_keyword(self, user_id: int, keyword: str) -> R:
        return self.social("mute_keyword", user_id, keyword=keyword)


def new_feed_request(user_id: int, request_id: str | None = None, **options: Any) -> FeedRequest:
    """A feed request with a fresh request_id unless given; `options` as in `topics.schemas.FeedRequest`."""
    return FeedRequest(request_id or uuid.uuid4().hex, user_id, **options)


class FeedClient(_EventProducers[None]):
    """`security`: how to authenticate and encrypt (README "Security"); the FORYOU_KAFKA_* settings if None."""

    def __init__(
        self, bootstrap: str | None = None, *, client_id: str = "foryou-client", security: KafkaSecurity | None = None
    ) -> None:
        self.bootstrap = bootstrap or kafka_bootstrap()
        self.security = security or KafkaSecurity()
        self.errors = BrokerErrors(self.bootstrap, self.security)
        self._producer = Producer(
            librdkafka_config(self.bootstrap, self.security, {
                "error_cb": self.errors.on_error,
                "client.id": client_id,
                "linger.ms": 2,
                "acks": "all",
                # librdkafka retries a failed request with up to a million requests in flight: without this,
                # a retry lands a user's events after later ones (and twice), and the stores' result depends
                # on order where a full sequence lets posts go.
                "enable.idempotence": True,
                "partitioner": LIBRDKAFKA_PARTITIONER,
            })
        )
        self._client_id = client_id
        self.answers = AnswerRouter()
        self._reader_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()

    # -- producing --------------------------------------------------------------------------------------

    def send(self, record: Record, *, flush: bool = False) -> None:
        """Validate `record` with the worker's own decoder, then produce it to its topic."""
        topic, decode = _TOPIC_OF[type(record)]
        value = encode(record)
        decode(value)  # raises topics.validation.InvalidRecord: the worker would dead-letter it
        self._producer.produce(topic, key=record_key(record), value=value, on_delivery=self.errors.on_delivery)
        self._producer.poll(0)
        if flush:
            self.flush()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every record sent is on the broker; raise if one was refused or is still queued."""
        deadline = time.monotonic() + timeout_s
        while self._producer.flush(min(0.5, max(0.0, deadline - time.monotonic()))) > 0:
            self.errors.raise_if_refused()
            if time.monotonic() >= deadline:
                raise KafkaException(
                    f"messages still undelivered after {timeout_s}s to {self.bootstrap}{self.errors.detail()}"
                )
        self.errors.raise_if_refused()
        failed, self.errors.undelivered = self.errors.undelivered, None
        if failed is not None:
            raise KafkaException(f"a record could not be delivered to {self.bootstrap}: {failed.str()}")

    # -- feeds ------------------------------------------------------------------------------------------

    def expect(self, request_id: str) -> "Future[Answer]":
        """Collect the answer to `request_id` (a request sent by any producer) for a later `wait`."""
        self.start_reading()
        return self.answers.expect(request_id)

    def send_request(self, user_id: int, *, request_id: str | None = None, **options: Any) -> str:
        """Produce a feed request and return its request_id; `wait` collects the answer."""
        request = new_feed_request(user_id, request_id, **options)
        self.expect(request.request_id)
        self.send(request, flush=True)
        return request.request_id

    def wait(self, request_id: str, timeout_s: float = 30.0) -> Answer:
        """The answer to `request_id` (expected before it could arrive); `FeedTimeout` after `timeout_s`."""
        future = self.expect(request_id)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            raise FeedTimeout(self.timeout_message(request_id, timeout_s)) from None
        finally:
            self.answers.forget(request_id)

    def request(self, user_id: int, *, timeout_s: float = 30.0, **options: Any) -> Answer:
        """Request a user's feed and wait for its answer (a dict as on `ranked-feeds`, with any "explain")."""
        return self.wait(self.send_request(user_id, **options), timeout_s)

    def subscribe(self, user_id: int | None = None, timeout_s: float | None = None) -> "Subscription":
        """Answers on ranked-feeds from now on, as they arrive (one user's, or everyone's); iteration ends after
        `timeout_s` without an answer when given. Close it (or use `with`) to stop receiving."""
        self.start_reading()
        return Subscription(self.answers, user_id, timeout_s)

    def timeout_message(self, request_id: str, timeout_s: float) -> str:
        return (
            f"no answer to request {request_id} on {RANKED_FEEDS} within {timeout_s:.1f}s "
            f"(is a worker running against {self.bootstrap}, and has it caught up?)"
        )

    @property
    def reading(self) -> bool:
        return self._ready.is_set()

    def start_reading(self, timeout_s: float = 30.0) -> None:
        """Start reading ranked-feeds from its current end (done on first need; idempotent, blocking)."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = threading.Thread(target=self._read_answers, name="ranked-feeds", daemon=True)
                self._reader.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.2):
            self._producer.poll(0)  # serves the error callback: the producer connects with the same settings
            self.errors.raise_if_refused()
            if time.monotonic() >= deadline:
                raise ReaderFailed(
                    f"could not start reading {RANKED_FEEDS} from {self.bootstrap} within {timeout_s:.0f}s"
                    f"{self.errors.detail()}"
                )
        self._producer.poll(0)
        self.errors.raise_if_refused()
        if self.answers.failure is not None:
            raise ReaderFailed(
                f"could not read {RANKED_FEEDS} from {self.bootstrap}: {self.answers.failure}{self.errors.detail()}"
            )

    def _read_answers(self) -> None:
        consumer = Consumer(
            librdkafka_config(self.bootstrap, self.security, {
                "error_cb": self.errors.on_error,
                "group.id": f"{self._client_id}-{uuid.uuid4().hex}",  # never committed: offsets are assigned
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            })
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
                    answer = decode_ranked_feed(message.value())
                except ValueError:
                    continue  # not an answer this client can read; never this client's to fix
                # The decoded record as its wire object: typed explain included, unknown keys left out.
                self.answers.deliver(answer.to_dict())
        except BaseException as exc:
            self.answers.fail(exc)
            self._ready.set()
        finally:
            consumer.close()

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(5)
        if self.errors.refusal is not None:
            self._producer.purge()  # nothing queued can be delivered: do not wait for it
        self._producer.flush(10)

    def __enter__(self) -> "FeedClient":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncFeedClient(_EventProducers[Awaitable[None]]):
    """The asyncio form of `FeedClient`, over one: nothing here blocks the event loop (producing only
    buffers; flushing and starting the reader run in a thread) and answers arrive as awaitables."""

    def __init__(
        self, bootstrap: str | None = None, *, client_id: str = "foryou-client", security: KafkaSecurity | None = None
    ) -> None:
        self.sync = FeedClient(bootstrap, client_id=client_id, security=security)

    @property
    def bootstrap(self) -> str:
        return self.sync.bootstrap

    async def send(self, record: Record, *, flush: bool = False) -> None:
        self.sync.send(record)
        if flush:
            await self.flush()

    async def flush(self, timeout_s: float = 30.0) -> None:
        await asyncio.to_thread(self.sync.flush, timeout_s)

    async def start_reading(self) -> None:
        await asyncio.to_thread(self.sync.start_reading)

    async def expect(self, request_id: str) -> None:
        await self.start_reading()
        self.sync.answers.expect(request_id)

    async def send_request(self, user_id: int, *, request_id: str | None = None, **options: Any) -> str:
        request = new_feed_request(user_id, request_id, **options)
        await self.expect(request.request_id)
        await self.send(request, flush=True)
        return request.request_id

    async def wait(self, request_id: str, timeout_s: float = 30.0) -> Answer:
        await self.start_reading()
        future = self.sync.answers.expect(request_id)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            raise FeedTimeout(self.sync.timeout_message(request_id, timeout_s)) from None
        finally:
            self.sync.answers.forget(request_id)

    async def request(self, user_id: int, *, timeout_s: float = 30.0, **options: Any) -> Answer:
        return await self.wait(await self.send_request(user_id, **options), timeout_s)

    def subscribe(self, user_id: int | None = None, timeout_s: float | None = None) -> "AsyncSubscription":
        """Answers on ranked-feeds as they arrive (one user's, or everyone's), for `async for`; iteration ends
        after `timeout_s` without an answer when given. Registered at once: `await start_reading()` first to
        receive from this moment (otherwise from the first iteration)."""
        return AsyncSubscription(self, user_id, timeout_s)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> "AsyncFeedClient":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def unique_ids(start: int | None = None) -> Iterator[int]:
    """Fresh positive ids (time-based), for demos and tests that share a broker."""
    return itertools.count(start or (time.time_ns() // 1000) % (1 << 50) + 1)
