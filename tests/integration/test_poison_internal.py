"""Chaos on the worker's own topics, each test with its own worker group (no other group may answer its
requests): poison on the internal topics and a table changelog (read back by a restart's recovery), and a
restart that must not serve a post whose delete is already on the post log."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from foryou.client import FeedClient
from tests.integration.conftest import StartWorker
from tests.integration.helpers import (
    KCAT,
    TopicReader,
    assert_answers,
    dead_letters_for,
    eventually,
    kcat_produce,
    metric_value,
    wait_for_posts,
    worker_json,
)
from topics.dead_letters import parse_dead_letter_headers
from topics.partitioning import partition_for_id
from topics.specs import DEAD_LETTERS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(KCAT is None, reason="no `kcat` on PATH: `make debian-tools` installs it"),
]
PARTITIONS = 4  # the fixture's FORYOU_PARTITIONS


# These tests ask for the same feed again: the January preset serves a post more than once.
ENV = {"FORYOU_POLICY": "reverse-chron", "FORYOU_PRESET": "seed-2026-01"}

def _envelope(kind: str, event: dict) -> bytes:
    return orjson.dumps({"kind": kind, "event": event, "received_at_ms": time.time() * 1000})


def test_poison_on_each_internal_topic_is_dead_lettered_and_the_worker_keeps_answering(
    start_worker: StartWorker, client: FeedClient, kafka_bootstrap: str, ids: Iterator[int], tmp_path: Path
) -> None:
    app_id = f"foryou-poison-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "worker"
    worker = start_worker(app_id=app_id, data_dir=data_dir, **ENV)
    user, author, post = next(ids), next(ids), next(ids)
    client.follow(user, author)
    client.post(post, author)
    client.flush()
    wait_for_posts(worker, [post])
    assert_answers(client, user, [post])

    tag = uuid.uuid4().hex[:8]
    post_log, user_events = f"{app_id}-post-log", f"{app_id}-user-events"
    mine = partition_for_id(user, PARTITIONS)
    not_mine = (mine + 1) % PARTITIONS
    engagement = {"v": 1, "user_id": user, "post_id": post, "author_id": author, "action": "favorite",
                  "surface": "home", "ts_ms": int(time.time() * 1000)}
    cases = [  # (topic, partition, key suffix, value, reason)
        (post_log, 0, "array", b"[]", "not_object"),  # the record that took the whole cluster down
        (post_log, 1, "garbage", b"\x00\x01\x02", "not_json"),
        (post_log, 2, "type", orjson.dumps({"v": 1, "type": "delete", "post_id": str(post)}), "wrong_type"),
        (post_log, 3, "delta", orjson.dumps({"type": "follower_delta", "author_id": author, "delta": 10**6}),
         "bad_value"),
        (user_events, mine, "array", b"[]", "not_object"),
        (user_events, mine, "kind", orjson.dumps({"kind": "admin", "event": {}}), "bad_value"),
        (user_events, mine, "event", _envelope("engagement", {"v": 1, "user_id": user}), "missing_field"),
        (user_events, mine, "event-type", _envelope("social", {**engagement, "type": 5}), "wrong_type"),
        (user_events, not_mine, "partition", _envelope("engagement", engagement), "bad_value"),
    ]
    reader = TopicReader(kafka_bootstrap, DEAD_LETTERS)
    expected = {}
    for topic, partition, suffix, value, reason in cases:
        key = f"{tag}-{topic}-{suffix}".encode()
        kcat_produce(kafka_bootstrap, topic, [(key, value)], partition=partition)
        expected[key] = (topic, partition, value, reason)
    try:
        found = dead_letters_for(reader, set(expected))
        for key, message in found.items():
            topic, partition, value, reason = expected[key]
            context = parse_dead_letter_headers(message.headers())
            assert (context.source_topic, context.source_partition, context.reason, message.value()) == (
                topic, partition, reason, value), key
        assert worker.proc is not None and worker.proc.poll() is None
        assert_answers(client, user, [post])

        # A table changelog: what a restart's recovery reads back. A key that is not a user id, and a value
        # the served-history store cannot decode, on the partition of the user's state.
        changelog = f"{app_id}-served-history-changelog"
        bad_key, bad_value = b"[]", str(user).encode()
        before = metric_value(worker, "foryou_dead_letters_total")
        kcat_produce(kafka_bootstrap, changelog, [(bad_key, b"x"), (bad_value, b"\x01" * 15)], partition=mine)
        worker.stop()
        worker = start_worker(app_id=app_id, data_dir=data_dir, **ENV)
        messages = reader.read_until(
            lambda seen: {bad_key, bad_value} <= {m.key() for m in seen if m.key() not in expected}, 120
        )
        reasons = {m.key(): parse_dead_letter_headers(m.headers()) for m in messages if m.key() in (bad_key, bad_value)}
        assert {key: (c.reason, c.source_topic, c.source_partition) for key, c in reasons.items()} == {
            bad_key: ("bad_key", changelog, mine), bad_value: ("corrupt_state", changelog, mine)}
        # The post log is read on from where the replica was: its poison is not dead-lettered again.
        assert not [m for m in messages if m.key() in expected]
        assert before >= len(cases)
        assert_answers(client, user, [post])
    finally:
        reader.close()
        worker.stop()  # every group reads the public topics: a live one would answer the next test's requests


def test_a_restarted_worker_serves_no_post_whose_delete_is_already_on_the_post_log(
    start_worker: StartWorker, client: FeedClient, kafka_bootstrap: str, ids: Iterator[int], tmp_path: Path
) -> None:
    app_id = f"foryou-deletes-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "worker"
    worker = start_worker(app_id=app_id, data_dir=data_dir, **ENV)
    user, author, kept, deleted = next(ids), next(ids), next(ids), next(ids)
    client.follow(user, author)
    client.post(kept, author)
    client.post(deleted, author)
    client.flush()
    wait_for_posts(worker, [kept, deleted])
    assert_answers(client, user, [deleted, kept])
    worker.stop()

    # While the worker is down: a long post log to read back (follower-count deltas, as follows write), the
    # delete at its end, and a feed request waiting. The request must not be answered from a replica that
    # has not read the delete yet.
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "linger.ms": 50, "queue.buffering.max.messages": 1_000_000}
    )
    delta = orjson.dumps({"type": "follower_delta", "author_id": next(ids), "delta": 1})
    for _ in range(300_000):
        producer.produce(f"{app_id}-post-log", value=delta, partition=0)
        producer.poll(0)
    delete = {"v": 1, "type": "delete", "post_id": deleted, "author_id": author, "deleted_at_ms": 0}
    producer.produce(f"{app_id}-post-log", key=str(deleted).encode(), value=orjson.dumps(delete), partition=0)
    assert producer.flush(60) == 0
    request_id = client.send_request(user)
    worker = start_worker(app_id=app_id, data_dir=data_dir, **ENV, ready=False)
    answer = client.wait(request_id, timeout_s=180)
    assert answer["status"] == "ok", answer
    assert [post["post_id"] for post in answer["posts"]] == [kept]
    worker.wait_ready()
    worker.stop()


def test_idle_users_leave_the_user_tables(
    start_worker: StartWorker, client: FeedClient, ids: Iterator[int], tmp_path: Path
) -> None:
    # Idle after a second, swept every two seconds: a user whose last engagement is older loses it.
    worker = start_worker(
        app_id=f"foryou-idle-{uuid.uuid4().hex[:8]}", data_dir=tmp_path / "worker", **ENV,
        FORYOU_USER_IDLE_MS="1000", FORYOU_USER_SWEEP_INTERVAL_S="2",
        # Every request is past its deadline when it runs: answered "expired", remembered, nothing served.
        FORYOU_REQUEST_TTL_MS="1",
    )
    user, author, post, requester = next(ids), next(ids), next(ids), next(ids)
    client.engage(user, post, author, "favorite", ts_ms=int(time.time() * 1000) - 5_000)
    client.follow(user, author)
    client.flush()
    try:
        answer = client.request(requester, timeout_s=60)
        assert answer["status"] == "error" and answer["error"].startswith("expired"), answer
        eventually(lambda: metric_value(worker, "foryou_users_expired_total", table="user-actions") >= 1, 60)
        status, body = worker_json(worker, f"/inspect/user/{user}")
        assert status == 200 and body["actions"] == [], body
        assert body["following"] == [author]  # the social graph never expires
        # A user whose only state is answered ids (every answer an error) loses them too.
        eventually(lambda: metric_value(worker, "foryou_users_expired_total", table="answered-requests") >= 1, 60)
        status, body = worker_json(worker, f"/inspect/user/{requester}")
        assert body["answered_requests"] == [], body
    finally:
        worker.stop()
