"""`foryou bench ingest`: how fast one worker ingests engagements and posts, measured from outside.

Engagements: N engagement events (default 100k, over U users) produced by a plain librdkafka producer with
its default partitioner, as an operator's own producer would. Timed from the first produce until the
worker's consumer group has committed every offset of `engagement-events` and of `<app>-user-events`: each
event forwarded, applied to its user's table (changelog record delivered) and acknowledged.

Posts: P tweet creates, timed until the worker's `/ready` post count shows them all: applied to the
post-store replica, their content embedded and stored, and added to the retrieval index.

The machine's load average and the worker's CPU time are recorded with the results: on a shared machine the
rates move with the load, events per CPU-second of the worker much less.
"""

import argparse
import os
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from foryou.benchmarks import RESULTS_DIR, merge_results, record
from foryou.kafka_local import LocalKafka
from foryou.processes import WorkerProcess
from foryou.settings import librdkafka_config, state_dir
from foryou.world.kafka_io import ensure_public_topics
from topics.actions import PHOENIX_ACTIONS
from topics.schemas import Engagement, TweetCreate
from topics.specs import ENGAGEMENT_EVENTS, TWEET_EVENTS

ENGAGEMENTS_TARGET = 30_000.0
POSTS_TARGET = 5_000.0
_WORDS = [
    "the", "a", "feed", "post", "ranking", "stream", "kafka", "table",
    "worker", "model", "user", "event", "batch", "home", "video", "news",
]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="engagement events to ingest")
    parser.add_argument("--users", type=int, default=20_000, help="users the engagements are spread over")
    parser.add_argument("--posts", type=int, default=20_000, help="tweet creates to ingest")
    parser.add_argument("--quick", action="store_true", help="10k engagements, 2k posts")
    parser.add_argument("--out", default=str(RESULTS_DIR / "ingest.json"))
    return parser.parse_args(argv)


def _engagements(count: int, users: int, rng: np.random.Generator) -> list[tuple[bytes, bytes]]:
    now = int(time.time() * 1000)
    user_ids = rng.integers(1, users + 1, count)
    post_ids = rng.integers(1, 1_000_000, count)
    actions = rng.integers(0, len(PHOENIX_ACTIONS), count)
    records = []
    for i in range(count):
        user_id, post_id = int(user_ids[i]), int(post_ids[i])
        event = Engagement(
            user_id, post_id, post_id % 5000 + 1, PHOENIX_ACTIONS[int(actions[i])], "home_for_you", now - count + i
        )
        records.append((str(user_id).encode(), orjson.dumps(event.to_dict())))
    return records


def _posts(count: int, rng: np.random.Generator) -> list[tuple[bytes, bytes]]:
    now = int(time.time() * 1000)
    records = []
    for i in range(count):
        post_id = 10_000_000 + i
        text = " ".join(rng.choice(_WORDS, 12))
        event = TweetCreate(post_id, i % 5000 + 1, now - count + i, text=text)
        records.append((str(post_id).encode(), orjson.dumps(event.to_dict())))
    return records


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    # librdkafka's default partitioner (consistent_random), as an operator's own producer would have.
    producer = Producer(librdkafka_config(bootstrap, config={"linger.ms": 5, "log_level": 3}))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) > 0:
        raise RuntimeError(f"records to {topic} still undelivered after 120 s")


def _end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    probe = Consumer(librdkafka_config(bootstrap, config={"group.id": "foryou-bench-probe", "log_level": 3}))
    try:
        offsets = {}
        for topic in topics:
            for partition in probe.list_topics(topic, timeout=10).topics[topic].partitions:
                offsets[(topic, partition)] = probe.get_watermark_offsets(TopicPartition(topic, partition), 10)[1]
        return offsets
    finally:
        probe.close()


def _committed(admin: AdminClient, group: str, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in tps])
    result = admin.list_consumer_group_offsets([request])[group].result(30)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def _wait_committed(bootstrap: str, group: str, topics: list[str], timeout_s: float) -> None:
    """Until the group has committed every partition of `topics` up to its end offset."""
    admin = AdminClient(librdkafka_config(bootstrap, config={"log_level": 3}))
    deadline = time.monotonic() + timeout_s
    ends: dict[tuple[str, int], int] = {}
    while time.monotonic() < deadline:
        # The end of <app>-user-events grows while engagement-events is forwarded: read it again each time.
        ends = _end_offsets(bootstrap, topics)
        committed = _committed(admin, group, list(ends))
        if all(committed.get(tp, -1) >= end for tp, end in ends.items()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"group {group} not drained after {timeout_s:.0f}s: ends {ends}")


def _wait_posts(worker: WorkerProcess, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = worker.status() or {}
        if status.get("posts", 0) >= count:
            return
        time.sleep(0.1)
    raise TimeoutError(f"worker holds {worker.status()} after {timeout_s:.0f}s, expected {count} posts")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.quick:
        args.events, args.posts = 10_000, 2_000
    rng = np.random.default_rng(0)
    engagements = _engagements(args.events, args.users, rng)
    posts = _posts(args.posts, rng)
    broker = LocalKafka(state_dir() / "kafka-bench")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    started_broker = not bootstrap
    if not bootstrap:
        bootstrap = broker.start(fresh=True)
    ensure_public_topics(bootstrap)
    app_id = f"foryou-bench-{uuid.uuid4().hex[:8]}"
    run = state_dir() / "bench" / f"ingest-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        bootstrap=bootstrap, app_id=app_id, data_dir=run / "data", log_path=run / "worker.log",
        env={"FORYOU_POLICY": "phoenix"},
    )
    try:
        worker.start()
        worker.wait_ready(timeout_s=300)
        load_before = os.getloadavg()
        assert worker.proc is not None
        cpu_start = cpu_seconds(worker.proc.pid)
        started = time.monotonic()
        _produce(bootstrap, ENGAGEMENT_EVENTS, engagements)
        produced_s = time.monotonic() - started
        _wait_committed(bootstrap, app_id, [ENGAGEMENT_EVENTS, f"{app_id}-user-events"], timeout_s=900)
        engagement_s = time.monotonic() - started
        engagement_cpu_s = cpu_seconds(worker.proc.pid) - cpu_start
        print(f"{args.events} engagements drained in {engagement_s:.2f}s (produced in {produced_s:.2f}s), "
              f"worker CPU {engagement_cpu_s:.2f}s")
        posts_before = (worker.status() or {}).get("posts", 0)
        cpu_start = cpu_seconds(worker.proc.pid)
        started = time.monotonic()
        _produce(bootstrap, TWEET_EVENTS, posts)
        _wait_posts(worker, posts_before + args.posts, timeout_s=900)
        posts_s = time.monotonic() - started
        posts_cpu_s = cpu_seconds(worker.proc.pid) - cpu_start
        print(f"{args.posts} posts applied and indexed in {posts_s:.2f}s, worker CPU {posts_cpu_s:.2f}s")
        load_after = os.getloadavg()
    finally:
        worker.stop()
        if started_broker:
            broker.stop()
    params = {
        "cores": os.cpu_count(), "load_avg_1m_before": round(load_before[0], 2),
        "load_avg_1m_after": round(load_after[0], 2),
        "note": "broker, producer and worker on one shared 2-core machine (other sessions running)",
    }
    records = [
        record("ingest.engagements.events_per_s", "events_per_s", args.events / engagement_s, "events/s",
               ENGAGEMENTS_TARGET, events=args.events, users=args.users, seconds=round(engagement_s, 2),
               worker_cpu_s=round(engagement_cpu_s, 2),
               events_per_worker_cpu_s=round(args.events / max(engagement_cpu_s, 1e-9)), **params),
        record("ingest.posts.events_per_s", "events_per_s", args.posts / posts_s, "events/s", POSTS_TARGET,
               posts=args.posts, content="on", seconds=round(posts_s, 2), worker_cpu_s=round(posts_cpu_s, 2),
               events_per_worker_cpu_s=round(args.posts / max(posts_cpu_s, 1e-9)), **params),
    ]
    path = merge_results(args.out, records)
    for r in records:
        print(f"{r['name']:34} {r['value']:10.0f} {r['unit']:9} target {r['target']}")
    print(f"results in {path}")
    return 0
