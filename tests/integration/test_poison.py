"""Chaos: poison and hostile records against a real worker over the real broker, produced from outside the
Python client with kcat (librdkafka's command-line client). Every record the worker cannot decode or apply
is dead-lettered with the right reason, its source and its original bytes, and the worker keeps answering.
"""

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from foryou.client import FeedClient
from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import (
    KCAT,
    TopicReader,
    assert_answers,
    dead_letters_for,
    kcat_produce,
    metric_value,
    wait_for_posts,
)
from topics.dead_letters import parse_dead_letter_headers
from topics.specs import DEAD_LETTERS, ENGAGEMENT_EVENTS, FEED_REQUESTS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(KCAT is None, reason="no `kcat` on PATH: `make debian-tools` installs it"),
]


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker, tmp_path_factory: pytest.TempPathFactory) -> WorkerProcess:
    # A data directory whose parents do not exist yet: `foryou worker` in a new directory used to exit with
    # FileNotFoundError (Faust creates only the last directory of the path).
    fresh = tmp_path_factory.mktemp("fresh") / "not" / "yet" / "there"
    return start_worker(data_dir=fresh, FORYOU_POLICY="reverse-chron")


def test_malformed_records_on_every_public_topic_are_dead_lettered_with_their_reason(
    worker: WorkerProcess, client: FeedClient, kafka_bootstrap: str, ids: Iterator[int]
) -> None:
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    create = {"v": 1, "type": "create", "post_id": 9, "author_id": 7, "created_at_ms": now, "text": "",
              "media": "none", "subscriber_only": False}
    engagement = {"v": 1, "user_id": 3, "post_id": 9, "author_id": 7, "action": "favorite", "surface": "home",
                  "ts_ms": now}
    social = {"v": 1, "type": "follow", "user_id": 3, "target_id": 7, "ts_ms": now}
    request = {"v": 1, "request_id": f"r-{tag}", "user_id": 3}
    base = {TWEET_EVENTS: create, ENGAGEMENT_EVENTS: engagement, SOCIAL_GRAPH_EVENTS: social, FEED_REQUESTS: request}
    id_field = {TWEET_EVENTS: "post_id", ENGAGEMENT_EVENTS: "post_id", SOCIAL_GRAPH_EVENTS: "target_id",
                FEED_REQUESTS: "user_id"}
    expected: dict[bytes, tuple[str, str, bytes]] = {}
    reader = TopicReader(kafka_bootstrap, DEAD_LETTERS)
    for topic, valid in base.items():
        field = id_field[topic]
        missing = {k: v for k, v in valid.items() if k != field}
        cases = {
            "empty": b"",
            "not_json": b"{not json",
            "not_object": b"[]",
            "wrong_type": orjson.dumps({**valid, field: str(valid[field])}),
            "out_of_range": orjson.dumps({**valid, field: 2**63}),  # one past the largest id
            "missing_field": orjson.dumps(missing),
            "unknown_version": orjson.dumps({**valid, "v": 2}),
        }
        # Integers wider than 64 bits: orjson reads 2^64 as a float (not an id), and a 400-digit one overflows.
        name = field.encode()
        wide = orjson.dumps({**valid, field: 0}).replace(b'"%s":0' % name, b'"%s":WIDE' % name)
        cases["wrong_type "] = wide.replace(b"WIDE", b"18446744073709551616")
        cases["not_json "] = wide.replace(b"WIDE", b"1" + b"0" * 400)
        records = []
        for reason, value in cases.items():
            key = f"{tag}-{topic}-{reason.strip()}-{len(records)}".encode()
            records.append((key, value))
            expected[key] = (topic, reason.strip(), value)
        kcat_produce(kafka_bootstrap, topic, records, headers={"trace": tag})
    try:
        found = dead_letters_for(reader, set(expected))
    finally:
        reader.close()
    for key, message in found.items():
        topic, reason, value = expected[key]
        context = parse_dead_letter_headers(message.headers())
        assert ("trace", tag.encode()) in message.headers()  # the original headers are kept
        assert (context.source_topic, context.reason, message.value() or b"") == (topic, reason, value), key
        assert context.source_offset >= 0
    assert metric_value(worker, "foryou_dead_letters_total", topic=TWEET_EVENTS, reason="not_object") >= 1
    # ... and the worker still answers.
    user, author, post = next(ids), next(ids), next(ids)
    client.follow(user, author)
    client.post(post, author)
    client.flush()
    wait_for_posts(worker, [post])
    assert_answers(client, user, [post])


def test_crafted_muted_keywords_against_long_posts_are_answered_within_a_bounded_time(
    worker: WorkerProcess, client: FeedClient, kafka_bootstrap: str, ids: Iterator[int]
) -> None:
    # 200 keywords sharing a 90-character prefix, and posts of 10,000 characters repeating it with near
    # misses: the former regex took about half a second per post on this machine, so 20 such posts held the
    # event loop for ten seconds, past the session timeout.
    user, authors = next(ids), [next(ids) for _ in range(3)]  # at most 10 posts per author are served
    now = int(time.time() * 1000)
    keywords = [("a " * 45) + f"b{i}" for i in range(200)]
    social = [{"v": 1, "type": "follow", "user_id": user, "target_id": author, "ts_ms": now} for author in authors]
    social += [{"v": 1, "type": "mute_keyword", "user_id": user, "keyword": k, "ts_ms": now} for k in keywords]
    kcat_produce(kafka_bootstrap, SOCIAL_GRAPH_EVENTS, [(str(user).encode(), orjson.dumps(e)) for e in social])
    near_misses = (("a " * 45 + "b7x ") * 107)[:10_000]
    muted_text = near_misses[: 10_000 - 100] + " " + keywords[199]
    post_ids = [next(ids) for _ in range(21)]
    posts = [
        {"v": 1, "type": "create", "post_id": post_id, "author_id": authors[i % 3], "created_at_ms": now - i,
         "media": "none", "text": muted_text if i == 0 else near_misses, "subscriber_only": False}
        for i, post_id in enumerate(post_ids)
    ]
    kcat_produce(kafka_bootstrap, TWEET_EVENTS, [(str(p["post_id"]).encode(), orjson.dumps(p)) for p in posts])
    wait_for_posts(worker, post_ids)
    started = time.monotonic()
    answer = client.request(user, max_results=50, timeout_s=60)
    elapsed_s = time.monotonic() - started
    assert answer["status"] == "ok", answer
    assert [post["post_id"] for post in answer["posts"]] == post_ids[1:]  # newest first; the muted one is gone
    assert elapsed_s < 20, f"answered in {elapsed_s:.1f}s"  # bounded: the speed itself is a benchmark record
