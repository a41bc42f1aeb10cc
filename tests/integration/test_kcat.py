"""The wire contract is language-neutral: kcat (librdkafka's command-line client, no foryou code) produces
a follow, a post and a feed request, and reads the answer off ranked-feeds."""

import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import IO

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import wait_for_posts
from topics.partitioning import partition_for_key
from topics.specs import FEED_REQUESTS, RANKED_FEEDS, SOCIAL_GRAPH_EVENTS, TWEET_EVENTS

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
pytestmark = pytest.mark.skipif(
    KCAT is None, reason="no `kcat` on PATH: `make debian-tools` installs it (apt-get install kcat)"
)


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> WorkerProcess:
    started = start_worker(FORYOU_POLICY="reverse-chron")
    started.wait_caught_up()
    return started


def kcat_produce(bootstrap: str, topic: str, key: str, value: dict) -> None:
    """One record, key and JSON value separated by a tab (kcat -K), with librdkafka's default partitioner."""
    line = key.encode() + b"\t" + orjson.dumps(value) + b"\n"
    subprocess.run([str(KCAT), "-P", "-b", bootstrap, "-t", topic, "-K", "\t"], input=line, check=True, timeout=30)


def end_offset(bootstrap: str, topic: str, partition: int) -> int:
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kcat-test-{uuid.uuid4().hex}"})
    try:
        return probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
    finally:
        probe.close()


def partitions_of(bootstrap: str, topic: str) -> int:
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kcat-test-{uuid.uuid4().hex}"})
    try:
        return len(probe.list_topics(topic, timeout=30).topics[topic].partitions)
    finally:
        probe.close()


def kcat_consume(bootstrap: str, topic: str, partition: int, offset: int) -> Iterator[dict]:
    """kcat -C -J from `offset` of one partition: each record as kcat's JSON envelope, as it arrives."""
    proc = subprocess.Popen(
        [str(KCAT), "-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", str(offset), "-J", "-u", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()

    def pump(stdout: IO[bytes]) -> None:  # a thread, so the reader can give up after a timeout
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, args=(proc.stdout,), daemon=True).start()
    try:
        while True:
            yield orjson.loads(lines.get(timeout=60))
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_feed_request_from_kcat_is_answered_on_ranked_feeds_read_by_kcat(
    worker: WorkerProcess, kafka_bootstrap: str, ids: Iterator[int]
) -> None:
    user, author, post = next(ids), next(ids), next(ids)
    now = int(time.time() * 1000)
    kcat_produce(kafka_bootstrap, SOCIAL_GRAPH_EVENTS, str(user), {
        "v": 1, "type": "follow", "user_id": user, "target_id": author, "keyword": None, "ts_ms": now,
    })
    kcat_produce(kafka_bootstrap, TWEET_EVENTS, str(post), {
        "v": 1, "type": "create", "post_id": post, "author_id": author, "created_at_ms": now, "text": "from kcat",
        "in_reply_to_post_id": None, "in_reply_to_user_id": None, "repost_of_post_id": None,
        "repost_of_user_id": None, "quote_of_post_id": None, "conversation_id": None, "media": "none",
        "video_duration_ms": None, "subscriber_only": False,
    })
    wait_for_posts(worker, [post])

    # The worker keys its answer by user id with Kafka's default (murmur2) partitioner: read that partition
    # from its end as of now, so only answers produced after this point are seen.
    partition = partition_for_key(str(user).encode(), partitions_of(kafka_bootstrap, RANKED_FEEDS))
    start = end_offset(kafka_bootstrap, RANKED_FEEDS, partition)
    request_id = f"kcat-{uuid.uuid4().hex}"
    kcat_produce(kafka_bootstrap, FEED_REQUESTS, str(user), {"v": 1, "request_id": request_id, "user_id": user})

    deadline = time.monotonic() + 60
    for envelope in kcat_consume(kafka_bootstrap, RANKED_FEEDS, partition, start):
        answer = orjson.loads(envelope["payload"])
        if answer["request_id"] == request_id:
            break
        assert time.monotonic() < deadline, "no answer to the kcat request within 60s"
    assert envelope["key"] == str(user)
    assert answer == {
        "v": 1, "request_id": request_id, "user_id": user, "status": "ok", "error": None,
        "posts": [{"post_id": post, "author_id": author, "rank": 1, "score": answer["posts"][0]["score"],
                   "in_network": True}],
        "model": "reverse-chron", "latency_ms": answer["latency_ms"],
    }
    assert isinstance(answer["posts"][0]["score"], float) and answer["latency_ms"] >= 0
