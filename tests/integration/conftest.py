"""Fixtures for tests over the real broker: workers in subprocesses, a client, fresh ids."""

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from foryou.client import FeedClient, unique_ids
from foryou.processes import WorkerProcess
from foryou.world.kafka_io import commit_offsets, end_offsets, ensure_public_topics

StartWorker = Callable[..., WorkerProcess]


def _end_offsets_once_visible(bootstrap: str, attempts: int = 20) -> dict:
    """Topics just created may take a moment to appear in every broker's metadata."""
    for _ in range(attempts - 1):
        try:
            return end_offsets(bootstrap)
        except RuntimeError:
            time.sleep(0.5)
    return end_offsets(bootstrap)


@pytest.fixture(scope="module")
def start_worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartWorker]:
    """Start workers for this module; all are stopped at its end. Pass `app_id` to join an existing group."""
    started: list[WorkerProcess] = []
    groups: set[str] = set()
    base = tmp_path_factory.mktemp("workers")

    def start(app_id: str | None = None, data_dir: Path | None = None, ready: bool = True,
              **env: str) -> WorkerProcess:
        name = f"w{len(started)}"
        app_id = app_id or f"foryou-test-{uuid.uuid4().hex[:8]}"
        if app_id not in groups:
            # A new group would read every earlier test's records (the broker is shared by the session): start
            # it at the topics' current end, as the demo does, so each module sees only what it produces.
            groups.add(app_id)
            ensure_public_topics(kafka_bootstrap)
            commit_offsets(kafka_bootstrap, app_id, _end_offsets_once_visible(kafka_bootstrap))
        worker = WorkerProcess(
            bootstrap=kafka_bootstrap,
            app_id=app_id,
            data_dir=data_dir or base / name,
            log_path=base / f"{name}.log",
            env={"FORYOU_PARTITIONS": "4", **env},
        ).start()
        started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def client(kafka_bootstrap: str) -> Iterator[FeedClient]:
    with FeedClient(kafka_bootstrap) as feed_client:
        yield feed_client


@pytest.fixture
def ids() -> Iterator[int]:
    return unique_ids()
