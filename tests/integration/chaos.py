"""Load for the chaos tests: engagements, graph changes and feed requests from a plain librdkafka producer,
every delivered record kept for an oracle replay; and the reading of all answers from the start."""

import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from agents.ops import user_snapshot
from foryou.benchmarks import RESULTS_DIR, record, write_results
from stores.action_sequences import UserActionSequences
from stores.served_history import ServedHistory
from stores.social_graph import SocialGraph
from topics.schemas import key_bytes
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS

GRAPH_CHANGES = ("follow", "unfollow", "block", "unblock", "mute", "unmute")
ACTIONS = ("favorite", "reply", "repost", "click", "dwell", "share")
# What the oracle compares: the user tables' view of everything the user did (served history depends on
# the answers, which the crashes legitimately change).
COMPARED = ("following", "blocked", "muted", "muted_keywords", "actions")


@dataclass
class Load:
    """Produces a mix of user events at about `rate_per_s` from a background thread until `stop`."""

    bootstrap: str
    users: list[int]
    authors: list[int]
    rate_per_s: float = 60.0
    partitioner: str = "murmur2_random"
    seed: int = 0
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    delivered: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "Load":
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(120)

    @property
    def request_ids(self) -> list[str]:
        return [r["request_id"] for r in self.delivered[FEED_REQUESTS]]

    def _run(self) -> None:
        rng = random.Random(self.seed)
        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5, "partitioner": self.partitioner,
             "enable.idempotence": True, "message.timeout.ms": 300_000, "log_level": 3}
        )
        n = 0
        while not self._stop.is_set():
            n += 1
            user = rng.choice(self.users)
            ts = int(time.time() * 1000)
            roll = rng.random()
            if roll < 0.6:
                topic, value = ENGAGEMENT_EVENTS, {
                    "v": 1, "user_id": user, "post_id": rng.randrange(1, 10**9),
                    "author_id": rng.choice(self.authors), "action": rng.choice(ACTIONS), "surface": "home_for_you",
                    "ts_ms": ts, "dwell_ms": rng.randrange(0, 5000),
                }
            elif roll < 0.8:
                topic, value = SOCIAL_GRAPH_EVENTS, {
                    "v": 1, "type": rng.choice(GRAPH_CHANGES), "user_id": user, "target_id": rng.choice(self.authors),
                    "keyword": None, "ts_ms": ts,
                }
            else:
                topic, value = FEED_REQUESTS, {"v": 1, "request_id": f"chaos-{self.tag}-{n}", "user_id": user}
            producer.produce(topic, key=key_bytes(user), value=orjson.dumps(value),
                             on_delivery=lambda err, msg, t=topic, v=value: self._on_delivery(err, t, v))
            producer.poll(0)
            time.sleep(1.0 / self.rate_per_s)
        producer.flush(300)

    def _on_delivery(self, error: object, topic: str, value: dict[str, Any]) -> None:
        if error is None:
            self.delivered[topic].append(value)
        else:
            self.failed += 1

    def counts(self) -> dict[str, int]:
        return {topic: len(values) for topic, values in self.delivered.items()}

    def oracle(self, user_id: int) -> dict[str, Any]:
        """The user tables' content for `user_id` after applying its delivered events in order."""
        actions, graph = UserActionSequences({}), SocialGraph({})
        for value in self.delivered[ENGAGEMENT_EVENTS]:
            if value["user_id"] == user_id:
                actions.record(value)
        for value in self.delivered[SOCIAL_GRAPH_EVENTS]:
            if value["user_id"] == user_id:
                graph.apply(value)
        snapshot = user_snapshot(user_id, actions=actions, graph=graph, served=ServedHistory({}), answered={})
        return {key: snapshot[key] for key in COMPARED}


@dataclass
class Answers:
    per_request: Counter  # request id -> answers on ranked-feeds
    statuses: Counter  # status -> answers

    def missing(self, request_ids: list[str]) -> list[str]:
        return [r for r in request_ids if self.per_request[r] == 0]

    def duplicated(self) -> dict[str, int]:
        return {r: n for r, n in self.per_request.items() if n > 1}


def read_answers(bootstrap: str, request_ids: set[str], app_id: str, timeout_s: float) -> Answers:
    """The answers `ranked-feeds` holds, from its start, for `request_ids` from the workers of `app_id` (their
    `foryou.worker` header; any other deployment on the broker answers public requests too): reads until every
    one has an answer (or `timeout_s`), then on until the topic stays quiet, so late duplicates count too."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "log_level": 3})
    counts: Counter = Counter()
    statuses: Counter = Counter()
    try:
        partitions = consumer.list_topics(RANKED_FEEDS, timeout=30).topics[RANKED_FEEDS].partitions
        consumer.assign([TopicPartition(RANKED_FEEDS, p, 0) for p in partitions])
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                if request_ids <= set(counts):
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 3.0:
                        break
                continue
            quiet_since = None
            worker = dict(message.headers() or []).get("foryou.worker", b"")
            answer = orjson.loads(message.value())
            if answer.get("request_id") in request_ids and worker.startswith(f"{app_id}@".encode()):
                counts[answer["request_id"]] += 1
                statuses[answer["status"]] += 1
    finally:
        consumer.close()
    return Answers(counts, statuses)


def record_outcome(fault: str, units: dict[str, str] | None = None, **values: float) -> None:
    """Replace this fault's records in bench/results/chaos.json (the README's fault table comes from it)."""
    path = RESULTS_DIR / "chaos.json"
    kept = [r for r in orjson.loads(path.read_bytes()) if not r["name"].startswith(f"chaos.{fault}.")] if (
        path.exists()) else []
    params = {"machine": "2 cores shared with other jobs (noisy)", "loadavg_1m": os.getloadavg()[0]}
    fresh = [
        record(f"chaos.{fault}.{name}", name, value, (units or {}).get(name, "count"), **params)
        for name, value in values.items()
    ]
    write_results("chaos", kept + fresh)
