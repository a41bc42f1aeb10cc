"""Shared fixtures. Integration tests (marked `kafka`) run against a real broker: the one named by
KAFKA_BOOTSTRAP, or a fresh local single-node Kafka that this session starts and stops."""

import os
import shutil
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
    from tests.local_broker import kafka_for_tests

    # A fresh, empty cluster each session: tests start new consumer groups, which read the public topics from
    # the beginning, so history left by earlier runs (or benchmarks) would only slow them down.
    broker = kafka_for_tests()
    address = broker.start(fresh=True)
    os.environ["KAFKA_BOOTSTRAP"] = address  # for everything the tests start: clients, workers, CLI
    yield address
    broker.stop()
    shutil.rmtree(broker.home, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the broker: mark it `kafka` (and so selectable)."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.kafka)
