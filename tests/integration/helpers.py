"""Small helpers for the integration tests: waiting on a worker's view of the world, reading topics."""

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import TypeVar

import orjson
from confluent_kafka import Consumer, TopicPartition

from foryou.client import FeedClient
from foryou.processes import WorkerProcess

T = TypeVar("T")
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def eventually(
    check: Callable[[], T | None],
    timeout_s: float = 60.0,
    interval_s: float = 0.2,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll `check` until it returns something truthy; on timeout fail with what `explain` says."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f": {explain()}" if explain is not None else ""
            raise AssertionError(f"condition not met within {timeout_s}s{detail}")
        time.sleep(interval_s)


def worker_json(worker: WorkerProcess, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{worker.url}{path}", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def wait_for_posts(worker: WorkerProcess, post_ids: Iterable[int], *, deleted: bool = False) -> None:
    """Until the worker's post-store replica holds (or, with `deleted`, hides) every one of `post_ids`."""
    for post_id in post_ids:
        def seen(post_id: int = post_id) -> bool:
            status, body = worker_json(worker, f"/inspect/post/{post_id}")
            return body.get("deleted", False) if deleted else status == 200
        eventually(seen)


def metric_value(worker: WorkerProcess, name: str, **labels: str) -> float:
    """The sum of the samples of `name` on the worker's /metrics whose labels include `labels`."""
    total = 0.0
    for line in worker.metrics_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        if series.partition("{")[0] != name:
            continue
        if labels and not _labels_match(series, labels):
            continue
        total += float(value)
    return total


def wait_for_stable_split(workers: list[WorkerProcess], topic: str, partitions: int, settle_s: float = 3.0) -> None:
    """Until the group's assignment of `topic` is split over all `workers` (each owns some, together all)
    and stays the same for `settle_s`: a second rebalance can follow the first one after a worker joins."""

    def assignment() -> tuple[int, ...]:
        return tuple(int(metric_value(worker, "foryou_assigned_partitions", topic=topic)) for worker in workers)

    def split() -> tuple[int, ...] | None:
        owned = assignment()
        return owned if sum(owned) == partitions and min(owned) > 0 else None

    def stable() -> bool:
        before = eventually(split, timeout_s=120)
        time.sleep(settle_s)
        return assignment() == before

    eventually(stable, timeout_s=180, explain=lambda: f"assignment of {topic}: {assignment()}")


def _labels_match(series: str, labels: dict[str, str]) -> bool:
    body = series[series.index("{") + 1 : series.rindex("}")]
    present = dict(part.split("=", 1) for part in body.split(",") if "=" in part)
    return all(present.get(k, "").strip('"') == v for k, v in labels.items())


class TopicReader:
    """Reads a topic from its end as of construction: sees only what is produced afterwards."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False}
        )
        partitions = self.consumer.list_topics(topic, timeout=30).topics[topic].partitions
        assignment = []
        for p in partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            assignment.append(TopicPartition(topic, p, high))
        self.consumer.assign(assignment)

    def read_until(self, done: Callable[[list], bool], timeout_s: float = 60.0) -> list:
        messages: list = []
        deadline = time.monotonic() + timeout_s
        while not done(messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(messages)} messages within {timeout_s}s")
            message = self.consumer.poll(0.2)
            if message is not None and not message.error():
                messages.append(message)
        return messages

    def close(self) -> None:
        self.consumer.close()


def kcat_produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], partition: int | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Records as kcat sends them: key and value split at the first tab, one record per line (each with
    `headers`)."""
    lines = b"".join(key + b"\t" + value + b"\n" for key, value in records)
    argv = [str(KCAT), "-P", "-b", bootstrap, "-t", topic, "-K", "\t"]
    if partition is not None:
        argv += ["-p", str(partition)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}={value}"]
    subprocess.run(argv, input=lines, check=True, timeout=60)


def dead_letters_for(reader: TopicReader, keys: set[bytes], timeout_s: float = 120.0) -> dict[bytes, object]:
    """The dead letters whose (original) key is one of `keys`, by key; each must come exactly once."""
    messages = reader.read_until(lambda seen: keys <= {m.key() for m in seen}, timeout_s)
    deadline = time.monotonic() + 3.0  # a second copy, if any, would come right behind
    while time.monotonic() < deadline:
        message = reader.consumer.poll(0.2)
        if message is not None and not message.error():
            messages.append(message)
    ours = [m for m in messages if m.key() in keys]
    assert len(ours) == len(keys), sorted(m.key() for m in ours)
    return {m.key(): m for m in ours}


def assert_answers(client: FeedClient, user: int, expected: list[int], timeout_s: float = 60.0) -> None:
    answer = client.request(user, timeout_s=timeout_s)
    assert answer["status"] == "ok", answer
    assert [post["post_id"] for post in answer["posts"]] == expected
