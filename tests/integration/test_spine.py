"""The spine over the real broker: events in, state in RocksDB-backed tables, ranked feeds out."""

import time
import zlib

import orjson
import pytest
from confluent_kafka import Producer

from foryou.client import FeedClient
from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import TopicReader, eventually, metric_value, wait_for_posts
from topics.dead_letters import parse_dead_letter_headers
from topics.partitioning import partition_for_id
from topics.schemas import key_bytes
from topics.specs import DEAD_LETTERS, ENGAGEMENT_EVENTS, FEED_REQUESTS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS

# The January preset: these tests ask for a user's feed repeatedly and expect it again, as its served filter
# (bottom requests only) allows; production-2026-10 serves a post once (tests/integration/test_presets.py).
SEED = "seed-2026-01"


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> WorkerProcess:
    return start_worker(FORYOU_POLICY="reverse-chron", FORYOU_PRESET=SEED)


def now_ms() -> int:
    return int(time.time() * 1000)


def feed_ids(answer: dict) -> list[int]:
    assert answer["status"] == "ok", answer
    return [post["post_id"] for post in answer["posts"]]


def test_in_network_feed_newest_first_without_blocked_muted_or_old(
    worker: WorkerProcess, client: FeedClient, ids: iter
) -> None:
    user, a1, a2, blocked, muted, stranger = (next(ids) for _ in range(6))
    for author in (a1, a2, blocked, muted):
        client.follow(user, author)
    client.social("block", user, target_id=blocked)
    client.social("mute", user, target_id=muted)
    t = now_ms()
    posts = {
        "a1_old": (next(ids), a1, t - 3 * 86_400_000),  # past the 2-day retention: never stored
        "a1": (next(ids), a1, t - 3_000),
        "a2": (next(ids), a2, t - 2_000),
        "a1_new": (next(ids), a1, t - 1_000),
        "blocked": (next(ids), blocked, t - 500),
        "muted": (next(ids), muted, t - 400),
        "stranger": (next(ids), stranger, t - 300),
        "own": (next(ids), user, t - 200),
    }
    for post_id, author, created in posts.values():
        client.post(post_id, author, created_at_ms=created, text="hello")
    client.engage(user, posts["a1"][0], a1, "favorite")
    client.flush()
    wait_for_posts(worker, [p[0] for name, p in posts.items() if name != "a1_old"])

    answer = client.request(user, max_results=10)
    assert answer["model"] == "reverse-chron"
    assert answer["user_id"] == user
    # Newest first; the post the user already engaged with counts as seen and is not shown again.
    assert feed_ids(answer) == [posts["a1_new"][0], posts["a2"][0]]
    assert [p["rank"] for p in answer["posts"]] == [1, 2]
    assert all(p["in_network"] for p in answer["posts"])
    assert answer["latency_ms"] >= 0

    assert feed_ids(client.request(user, max_results=1)) == [posts["a1_new"][0]]


def test_delete_removes_a_post_and_a_delete_before_its_create_is_honoured(
    worker: WorkerProcess, client: FeedClient, ids: iter
) -> None:
    user, author = next(ids), next(ids)
    keep, deleted_later, deleted_first = next(ids), next(ids), next(ids)
    client.follow(user, author)
    t = now_ms()
    client.delete(deleted_first, author, deleted_at_ms=t)  # Kafka may deliver the delete first
    for offset, post_id in enumerate((keep, deleted_later, deleted_first)):
        client.post(post_id, author, created_at_ms=t - 1_000 + offset)
    client.flush()
    wait_for_posts(worker, [keep, deleted_later])
    assert feed_ids(client.request(user)) == [deleted_later, keep]

    client.delete(deleted_later, author)
    client.flush()
    wait_for_posts(worker, [deleted_later], deleted=True)
    assert feed_ids(client.request(user)) == [keep]


HOSTILE = [
    (TWEET_EVENTS, b"not json at all", "not_json"),
    (TWEET_EVENTS, b"\xff\xfe\x00garbage", "not_utf8"),
    (TWEET_EVENTS, orjson.dumps({"v": 2, "type": "create"}), "unknown_version"),
    (TWEET_EVENTS, b"[1, 2, 3]", "not_object"),
    (TWEET_EVENTS, b"", "empty"),
    (ENGAGEMENT_EVENTS, orjson.dumps({"v": 1, "user_id": "7", "post_id": 1, "author_id": 2, "action": "favorite",
                                      "surface": "x", "ts_ms": 1}), "wrong_type"),
    (ENGAGEMENT_EVENTS, orjson.dumps({"v": 1, "user_id": 2**63, "post_id": 1, "author_id": 2, "action": "favorite",
                                      "surface": "x", "ts_ms": 1}), "out_of_range"),
    (ENGAGEMENT_EVENTS, orjson.dumps({"v": 1, "user_id": 3, "post_id": 1, "author_id": 2, "action": "explode",
                                      "surface": "x", "ts_ms": 1}), "bad_value"),
    (SOCIAL_GRAPH_EVENTS, orjson.dumps({"v": 1, "type": "follow", "user_id": 3, "ts_ms": 1}), "missing_field"),
    (FEED_REQUESTS, b"{" + b" " * 300_000 + b"}", "too_large"),  # above the 256 KiB payload bound
]


def test_malformed_records_go_to_dead_letters_and_the_worker_keeps_answering(
    worker: WorkerProcess, client: FeedClient, kafka_bootstrap: str, ids: iter
) -> None:
    before = metric_value(worker, "foryou_dead_letters_total")
    reader = TopicReader(kafka_bootstrap, DEAD_LETTERS)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    marker = str(next(ids)).encode()
    for index, (topic, value, _) in enumerate(HOSTILE):
        producer.produce(topic, key=marker + b"-%d" % index, value=value)
    producer.flush(30)
    try:
        letters = reader.read_until(
            lambda ms: sum(1 for m in ms if (m.key() or b"").startswith(marker)) >= len(HOSTILE)
        )
    finally:
        reader.close()
    by_key = {m.key(): m for m in letters if (m.key() or b"").startswith(marker)}
    for index, (topic, value, reason) in enumerate(HOSTILE):
        letter = by_key[marker + b"-%d" % index]
        context = parse_dead_letter_headers(letter.headers())
        assert (context.reason, context.source_topic) == (reason, topic), context
        assert (letter.value() or b"") == value  # the original bytes, verbatim
    eventually(lambda: metric_value(worker, "foryou_dead_letters_total") >= before + len(HOSTILE))
    assert metric_value(worker, "foryou_dead_letters_total", topic=TWEET_EVENTS, reason="not_utf8") >= 1

    user = next(ids)
    request_id = f"bad-{user}"
    bad_request = {"v": 1, "request_id": request_id, "user_id": user, "max_results": "ten"}
    client.expect(request_id)
    producer.produce(FEED_REQUESTS, key=key_bytes(user), value=orjson.dumps(bad_request))
    producer.flush(30)
    answer = client.wait(request_id)
    assert answer["status"] == "error" and "max_results" in answer["error"], answer
    assert answer["posts"] == []
    assert client.request(user)["status"] == "ok"


def test_requests_from_a_librdkafka_default_partitioner_find_their_user_state(
    worker: WorkerProcess, client: FeedClient, kafka_bootstrap: str, ids: iter
) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "consistent_random"})
    users = [next(ids) for _ in range(8)]
    # librdkafka's default partitioner hashes keys with CRC32, Kafka's Java client with murmur2: for some of
    # these users the public topic's partition differs from the one that holds their state.
    assert any(zlib.crc32(key_bytes(u)) % 4 != partition_for_id(u, 4) for u in users)
    t = now_ms()
    expected = {}
    for user in users:
        author, post = next(ids), next(ids)
        expected[user] = post
        for topic, value in [
            (SOCIAL_GRAPH_EVENTS, {"v": 1, "type": "follow", "user_id": user, "target_id": author,
                                   "keyword": None, "ts_ms": t}),
            (TWEET_EVENTS, {"v": 1, "type": "create", "post_id": post, "author_id": author, "created_at_ms": t,
                            "text": "x", "in_reply_to_post_id": None, "in_reply_to_user_id": None,
                            "repost_of_post_id": None, "repost_of_user_id": None, "quote_of_post_id": None,
                            "conversation_id": None, "media": "none", "video_duration_ms": None,
                            "subscriber_only": False}),
        ]:
            key = key_bytes(user if topic == SOCIAL_GRAPH_EVENTS else post)
            producer.produce(topic, key=key, value=orjson.dumps(value))
    producer.flush(30)
    wait_for_posts(worker, expected.values())
    request_ids = {}
    for user in users:
        request_ids[user] = f"rdk-{user}"
        request = {"v": 1, "request_id": request_ids[user], "user_id": user}
        client.expect(request_ids[user])
        producer.produce(FEED_REQUESTS, key=key_bytes(user), value=orjson.dumps(request))
    producer.flush(30)
    for user in users:
        assert feed_ids(client.wait(request_ids[user])) == [expected[user]]
