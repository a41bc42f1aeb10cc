"""Workers that restart or share the load: state comes back from RocksDB and changelogs, not from input."""

import time
import uuid
from pathlib import Path

import orjson
import pytest

from agents.topology import consumer_lag
from foryou.client import FeedClient
from tests.integration.conftest import StartWorker
from tests.integration.helpers import TopicReader, eventually, metric_value, wait_for_posts
from topics.partitioning import partition_for_id
from topics.specs import ENGAGEMENT_EVENTS, FEED_REQUESTS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS

# The January preset: these tests ask for a user's feed repeatedly and expect it again, as its served filter
# (bottom requests only) allows; production-2026-10 serves a post once (tests/integration/test_presets.py).
SEED = "seed-2026-01"

pytestmark = pytest.mark.slow


def feed_ids(answer: dict) -> list[int]:
    assert answer["status"] == "ok", answer
    return [post["post_id"] for post in answer["posts"]]


def ingested(worker: object) -> float:
    return metric_value(worker, "foryou_records_ingested_total")


def test_a_restarted_worker_answers_from_recovered_state_without_rereading_input(
    start_worker: StartWorker, client: FeedClient, ids: iter, tmp_path: Path
) -> None:
    app_id = f"foryou-restart-{uuid.uuid4().hex[:8]}"
    user, author, other = next(ids), next(ids), next(ids)
    liked, fresh, older = next(ids), next(ids), next(ids)
    now = int(time.time() * 1000)

    first = start_worker(
        app_id=app_id, data_dir=tmp_path / "a", FORYOU_POLICY="reverse-chron", FORYOU_PRESET=SEED
    )
    client.follow(user, author)
    client.follow(user, other)
    client.social("unfollow", user, target_id=other)
    client.post(older, author, created_at_ms=now - 3_000)
    client.post(liked, author, created_at_ms=now - 2_000)
    client.post(fresh, author, created_at_ms=now - 1_000)
    client.engage(user, liked, author, "favorite")
    client.flush()
    wait_for_posts(first, [older, liked, fresh])
    expected = [fresh, older]  # newest first; the engaged post counts as seen
    assert feed_ids(client.request(user)) == expected
    assert ingested(first) >= 7
    # Stop once every input record is committed: what a restart must not read again.
    inputs = [TWEET_EVENTS, ENGAGEMENT_EVENTS, SOCIAL_GRAPH_EVENTS, FEED_REQUESTS]
    eventually(lambda: not any(consumer_lag(first.bootstrap, app_id, inputs).values()))
    first.stop()

    # Same data dir: local RocksDB plus the changelog tail. Fresh data dir: the changelogs and post log alone.
    for data_dir in (tmp_path / "a", tmp_path / "b"):
        worker = start_worker(
            app_id=app_id, data_dir=data_dir, FORYOU_POLICY="reverse-chron", FORYOU_PRESET=SEED
        )
        wait_for_posts(worker, [older, liked, fresh])
        assert feed_ids(client.request(user)) == expected  # follows, unfollow and engagement all recovered
        assert ingested(worker) == 1, "the input topics were read again (only the new request is new)"
        assert metric_value(worker, "foryou_records_ingested_total", topic=FEED_REQUESTS) == 1
        worker.stop()


def test_two_workers_split_the_partitions_and_both_serve(
    start_worker: StartWorker, client: FeedClient, ids: iter, tmp_path: Path
) -> None:
    app_id = f"foryou-pair-{uuid.uuid4().hex[:8]}"
    workers = [
        start_worker(app_id=app_id, data_dir=tmp_path / name, FORYOU_POLICY="reverse-chron", FORYOU_PRESET=SEED)
        for name in "ab"
    ]
    for worker in workers:
        worker.wait_ready()
    # One user for each of the 4 user-event partitions, so both workers own some of them.
    users: dict[int, int] = {}
    while len(users) < 4:
        candidate = next(ids)
        users.setdefault(partition_for_id(candidate, 4), candidate)
    now = int(time.time() * 1000)
    expected: dict[int, int] = {}
    for user in users.values():
        author, post = next(ids), next(ids)
        client.follow(user, author)
        client.post(post, author, created_at_ms=now)
        expected[user] = post
    client.flush()
    for worker in workers:
        wait_for_posts(worker, expected.values())  # every worker holds every post
    reader = TopicReader(client.bootstrap, RANKED_FEEDS)
    try:
        request_ids = {client.send_request(user): user for user in expected}
        for request_id, user in request_ids.items():
            assert feed_ids(client.wait(request_id)) == [expected[user]]
        time.sleep(2)  # room for a duplicate answer to show up, if one were sent
        answers = reader.read_until(lambda ms: len(ours(ms, request_ids)) >= len(request_ids))
    finally:
        reader.close()
    mine = ours(answers, request_ids)
    assert sorted(orjson.loads(m.value())["request_id"] for m in mine) == sorted(request_ids)  # one answer each
    answered_by = {dict(m.headers())["foryou.worker"] for m in mine}
    assert len(answered_by) == 2, answered_by  # both workers served some of the users


def ours(messages: list, request_ids: dict[str, int]) -> list:
    return [m for m in messages if orjson.loads(m.value())["request_id"] in request_ids]
