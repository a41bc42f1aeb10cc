"""The broker a test session starts for itself."""

import os

from foryou.kafka_local import LocalKafka
from foryou.settings import state_dir


def kafka_for_tests() -> LocalKafka:
    """A test session's own broker, beside the development one and any other session's (by process id)."""
    return LocalKafka(state_dir() / "kafka-test" / str(os.getpid()))
