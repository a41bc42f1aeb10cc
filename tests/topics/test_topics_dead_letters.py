"""Dead-letter context headers: shape, round trip and malformed input."""

import time

import pytest

from topics.dead_letters import (
    DEAD_LETTER_REASONS,
    MAX_DETAIL_CHARS,
    PROCESSING_ERROR,
    DeadLetterContext,
    MalformedDeadLetter,
    dead_letter_headers,
    parse_dead_letter_headers,
)
from topics.validation import REASONS, InvalidRecord, decode_engagement

CONTEXT = DeadLetterContext(
    reason="wrong_type",
    detail="user_id: expected integer, got string",
    source_topic="engagement-events",
    source_partition=3,
    source_offset=123_456_789_012,
    failed_at_ms=1_700_000_000_000,
)


def headers_of(context: DeadLetterContext) -> list[tuple[str, bytes]]:
    return dead_letter_headers(
        reason=context.reason,
        detail=context.detail,
        source_topic=context.source_topic,
        source_partition=context.source_partition,
        source_offset=context.source_offset,
        failed_at_ms=context.failed_at_ms,
    )


def test_headers_are_the_six_foryou_dlq_names_with_utf8_values() -> None:
    assert headers_of(CONTEXT) == [
        ("foryou.dlq.reason", b"wrong_type"),
        ("foryou.dlq.detail", b"user_id: expected integer, got string"),
        ("foryou.dlq.source.topic", b"engagement-events"),
        ("foryou.dlq.source.partition", b"3"),
        ("foryou.dlq.source.offset", b"123456789012"),
        ("foryou.dlq.failed_at_ms", b"1700000000000"),
    ]


def test_headers_round_trip_as_a_list_and_as_a_mapping() -> None:
    headers = headers_of(CONTEXT)
    assert parse_dead_letter_headers(headers) == CONTEXT
    assert parse_dead_letter_headers(dict(headers)) == CONTEXT


def test_the_original_headers_are_kept_alongside_and_ignored() -> None:
    original = [("traceparent", b"00-abc-def-01"), ("content-type", None), ("foryou.dlq.unrelated", None)]
    assert parse_dead_letter_headers([*original, *headers_of(CONTEXT)]) == CONTEXT


def test_the_last_context_wins_when_a_record_is_dead_lettered_twice() -> None:
    first = headers_of(CONTEXT)
    second = headers_of(DeadLetterContext(PROCESSING_ERROR, "boom", "dead-letters", 0, 9, 1_700_000_000_001))
    assert parse_dead_letter_headers(first + second).reason == PROCESSING_ERROR
    assert parse_dead_letter_headers(first + second).source_offset == 9


def test_an_invalid_record_feeds_the_headers() -> None:
    with pytest.raises(InvalidRecord) as info:
        decode_engagement(b'{"v":1,"user_id":"42"}')
    headers = dead_letter_headers(
        reason=info.value.reason,
        detail=info.value.detail,
        source_topic="engagement-events",
        source_partition=0,
        source_offset=0,
        failed_at_ms=0,
    )
    context = parse_dead_letter_headers(headers)
    assert (context.reason, context.detail) == ("wrong_type", "user_id: expected integer, got string")


def test_failed_at_defaults_to_now() -> None:
    before = time.time_ns() // 1_000_000
    headers = dead_letter_headers(reason="empty", detail="", source_topic="t", source_partition=0, source_offset=0)
    after = time.time_ns() // 1_000_000
    assert before <= parse_dead_letter_headers(headers).failed_at_ms <= after


def test_reasons_are_the_validation_reasons_plus_processing_error() -> None:
    assert (*REASONS, "processing_error", "bad_key", "corrupt_state") == DEAD_LETTER_REASONS
    with pytest.raises(ValueError, match="unknown dead-letter reason"):
        headers_of(DeadLetterContext("oops", "", "t", 0, 0, 0))


def test_details_are_cut_and_kept_valid_utf8() -> None:
    long_detail = "é" * (MAX_DETAIL_CHARS + 50)
    context = parse_dead_letter_headers(headers_of(DeadLetterContext("bad_value", long_detail, "t", 0, 0, 0)))
    assert context.detail == "é" * MAX_DETAIL_CHARS
    surrogate = dict(headers_of(DeadLetterContext("bad_value", "bad \udcff byte", "t", 0, 0, 0)))
    assert surrogate["foryou.dlq.detail"].decode("utf-8") == "bad ? byte"


@pytest.mark.parametrize(
    "name",
    [
        "foryou.dlq.reason",
        "foryou.dlq.detail",
        "foryou.dlq.source.topic",
        "foryou.dlq.source.partition",
        "foryou.dlq.source.offset",
        "foryou.dlq.failed_at_ms",
    ],
)
def test_a_missing_header_is_malformed(name: str) -> None:
    headers = [(key, value) for key, value in headers_of(CONTEXT) if key != name]
    with pytest.raises(MalformedDeadLetter, match=name):
        parse_dead_letter_headers(headers)


def test_non_integer_positions_are_malformed() -> None:
    headers = dict(headers_of(CONTEXT))
    headers["foryou.dlq.source.offset"] = b"twelve"
    with pytest.raises(MalformedDeadLetter, match="not an integer"):
        parse_dead_letter_headers(headers)


def test_no_headers_at_all_are_malformed() -> None:
    with pytest.raises(MalformedDeadLetter):
        parse_dead_letter_headers(None)
