"""Shared fixtures. Integration tests (marked `kafka`) run against a real broker: the one named by
KAFKA_BOOTSTRAP, or a local single-node Kafka that this session starts (and stops if it started it)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    explicit = os.environ.get("KAFKA_BOOTSTRAP")
    if explicit:
        yield explicit
        return
    from foryou.kafka_local import local_kafka

    broker = local_kafka()
    was_running = broker.running_pid() is not None
    address = broker.start()
    yield address
    if not was_running:
        broker.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the broker: mark it `kafka` (and so selectable)."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.kafka)
