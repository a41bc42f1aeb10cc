"""The offset rules of agents/consumer.py: a commit never passes a record no agent acknowledged."""

import faust
import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message

from agents.consumer import GapSafeConsumer, gap_between, install, last_read_before, next_commit

TOPIC = TP("feed-requests", 0)


def test_a_run_of_acknowledged_offsets_from_the_committed_one_is_committed() -> None:
    assert next_commit([10, 11, 12], [], committed=10) == 13
    assert next_commit([12, 10, 11, 11], [], committed=10) == 13  # order and repeats do not matter


def test_the_record_at_the_committed_offset_holds_the_commit_until_it_is_acknowledged() -> None:
    # Faust 0.15.3 committed 13 here (`min(acked) - committed > 1`): offset 10 was never processed.
    assert next_commit([11, 12], [], committed=10) is None
    assert next_commit([11, 12, 10], [], committed=10) == 13


def test_a_hole_stops_the_commit_unless_it_is_a_gap() -> None:
    assert next_commit([10, 12], [], committed=10) == 11
    assert next_commit([10, 12], [(11, 12)], committed=10) == 13
    assert next_commit([10, 13], [(11, 12)], committed=10) == 12


def test_a_gap_at_the_committed_offset_counts() -> None:
    # A transaction marker right at the committed offset, then a record.
    assert next_commit([11], [(10, 11)], committed=10) == 12


def test_nothing_acknowledged_or_nothing_new_commits_nothing() -> None:
    assert next_commit([], [(10, 20)], committed=10) is None
    assert next_commit([5, 6], [], committed=10) is None  # acknowledgements from before a seek


def test_without_a_committed_offset_the_run_starts_at_the_lowest_acknowledged() -> None:
    assert next_commit([3, 4, 6], [], committed=None) == 5


def test_a_gap_is_the_offsets_strictly_between_two_records_read() -> None:
    assert gap_between(9, 10, committed=None) is None
    assert gap_between(9, 12, committed=None) == (10, 12)  # 12 is the record being read: not in the gap
    assert gap_between(None, 12, committed=None) is None  # nothing read yet in this epoch
    assert gap_between(5, 12, committed=8) == (8, 12)  # never below the committed offset
    assert gap_between(5, 12, committed=12) is None


def test_after_a_seek_the_last_record_read_is_the_one_before_the_committed_offset() -> None:
    assert last_read_before(10) == 9
    assert last_read_before(0) is None
    assert last_read_before(None) is None


def _consumer() -> GapSafeConsumer:
    app = faust.App("consumer-offsets-test", broker="kafka://127.0.0.1:1")
    install(app)
    consumer = app.consumer  # created, not started: no broker needed
    assert isinstance(consumer, GapSafeConsumer)
    return consumer


def test_the_consumer_commits_by_these_rules_and_forgets_what_it_committed() -> None:
    consumer = _consumer()
    consumer._committed_offset[TOPIC] = 10
    consumer._acked[TOPIC].extend([11, 12])
    consumer._acked_index[TOPIC].update([11, 12])
    assert consumer._new_offset(TOPIC) is None  # 10 is not acknowledged
    consumer._acked[TOPIC].append(10)
    consumer._acked_index[TOPIC].add(10)
    consumer._gap[TOPIC].addi(13, 15)
    consumer._acked[TOPIC].append(16)
    consumer._acked_index[TOPIC].add(16)
    assert consumer._new_offset(TOPIC) == 15  # 10-12 acknowledged, 13-14 a gap
    consumer._committed_offset[TOPIC] = 15
    assert consumer._acked[TOPIC] == [16]
    assert consumer._acked_index[TOPIC] == {16}
    assert not consumer._gap[TOPIC]
    assert consumer._new_offset(TOPIC) is None  # 15 is neither acknowledged nor a gap


def test_install_refuses_an_app_that_already_has_its_consumer() -> None:
    app = faust.App("consumer-offsets-late", broker="kafka://127.0.0.1:1")
    assert app.consumer is not None
    with pytest.raises(RuntimeError):
        install(app)


def test_the_installed_faust_still_commits_over_an_unacknowledged_record() -> None:
    """Why the override exists: if this fails, Faust fixed its rule and agents/consumer.py can be revisited."""
    consumer = _consumer()
    consumer._committed_offset[TOPIC] = 10
    consumer._acked[TOPIC].extend([11, 12])
    consumer._acked_index[TOPIC].update([11, 12])
    assert aiokafka_driver.Consumer._new_offset(consumer, TOPIC) == 13


def _message(offset: int, generation_id: int) -> Message:
    return Message(TOPIC.topic, TOPIC.partition, offset, 0.0, 0, None, b"1", b"{}", None, tp=TOPIC,
                   generation_id=generation_id)


def test_acknowledgements_count_only_in_the_generation_that_delivered_and_once_sought() -> None:
    consumer = _consumer()
    consumer.app.consumer_generation_id = 3
    consumer.app.topics.acks_enabled_for = lambda topic: True  # as for a topic an agent reads
    assert consumer.ack(_message(10, generation_id=3))
    # Delivered before a rejoin (Faust's streams also acknowledge what they skip then): not counted, so
    # the record is read again from the committed offset.
    stale = _message(11, generation_id=2)
    assert not consumer.ack(stale) and stale.acked
    consumer._unsought.add(TOPIC)  # revoked, not yet sought
    assert not consumer.ack(_message(12, generation_id=3))
    assert consumer._new_offset(TOPIC) is None  # nor committed meanwhile
    assert consumer._acked[TOPIC] == [10]
