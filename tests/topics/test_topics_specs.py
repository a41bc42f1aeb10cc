"""Topic specs: the public names, keys and configs stay consistent with the payload bounds."""

import pytest

from topics.limits import (
    DEAD_LETTER_RETENTION_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_RANKED_FEED_BYTES,
    TOPIC_MAX_MESSAGE_BYTES,
)
from topics.specs import (
    DEAD_LETTERS,
    DEAD_LETTERS_SPEC,
    RANKED_FEEDS_SPEC,
    TOPIC_BY_NAME,
    TOPICS,
    TopicSpec,
)
from topics.validation import DECODER_BY_TOPIC

DAY_MS = 86_400_000


def test_the_seven_public_topics() -> None:
    assert [spec.name for spec in TOPICS] == [
        "tweet-events",
        "engagement-events",
        "social-graph-events",
        "feed-requests",
        "ranked-feeds",
        "impressions",
        "dead-letters",
    ]
    assert set(TOPIC_BY_NAME) == {spec.name for spec in TOPICS}


def test_every_topic_but_dead_letters_has_a_decoder() -> None:
    assert set(DECODER_BY_TOPIC) == set(TOPIC_BY_NAME) - {DEAD_LETTERS}


def test_keys_are_ids_of_the_values_except_for_dead_letters() -> None:
    fields = {spec.name: spec.key_field for spec in TOPICS}
    assert fields.pop("tweet-events") == "post_id"
    assert fields.pop("dead-letters") is None
    assert set(fields.values()) == {"user_id"}


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.name)
def test_configs_are_kafka_strings_with_bounded_retention(spec: TopicSpec) -> None:
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in spec.config.items())
    assert spec.config["cleanup.policy"] == "delete"
    retention = int(spec.config["retention.ms"])
    assert 0 < int(spec.config["segment.ms"]) <= retention
    assert retention <= 30 * DAY_MS
    assert spec.partitions >= 1
    assert spec.doc and spec.key


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.name)
def test_every_topic_accepts_records_beyond_its_decoder_bound(spec: TopicSpec) -> None:
    # Oversized records must reach the app (to be dead-lettered as too_large), not bounce off the broker.
    assert int(spec.config["max.message.bytes"]) >= TOPIC_MAX_MESSAGE_BYTES > MAX_PAYLOAD_BYTES
    assert int(RANKED_FEEDS_SPEC.config["max.message.bytes"]) > MAX_RANKED_FEED_BYTES


def test_dead_letters_hold_any_source_record_plus_headers_for_longer() -> None:
    largest_source = max(int(spec.config["max.message.bytes"]) for spec in TOPICS if spec is not DEAD_LETTERS_SPEC)
    assert int(DEAD_LETTERS_SPEC.config["max.message.bytes"]) > largest_source
    longest_source = max(int(spec.config["retention.ms"]) for spec in TOPICS if spec is not DEAD_LETTERS_SPEC)
    assert int(DEAD_LETTERS_SPEC.config["retention.ms"]) > longest_source


def test_dead_letters_are_bounded_in_bytes_as_well_as_time() -> None:
    # A flood of bad records must not fill the broker's disk through the dead-letter copies.
    retention_bytes = int(DEAD_LETTERS_SPEC.config["retention.bytes"])
    assert retention_bytes == DEAD_LETTER_RETENTION_BYTES
    segment_bytes = int(DEAD_LETTERS_SPEC.config["segment.bytes"])
    assert int(DEAD_LETTERS_SPEC.config["max.message.bytes"]) < segment_bytes < retention_bytes


def test_event_topics_keep_a_week_and_request_topics_an_hour() -> None:
    for name in ("tweet-events", "engagement-events", "social-graph-events", "impressions"):
        assert TOPIC_BY_NAME[name].config["retention.ms"] == str(7 * DAY_MS)
    for name in ("feed-requests", "ranked-feeds"):
        assert TOPIC_BY_NAME[name].config["retention.ms"] == str(3_600_000)


def test_configs_are_read_only() -> None:
    with pytest.raises(TypeError):
        TOPICS[0].config["retention.ms"] = "1"  # type: ignore[index]
