"""Dead letters, in the Kafka Connect style: the original record verbatim, the context in headers.

A dead letter's key and value are the original record's key and value bytes, untouched (nothing is lost,
not even bytes that are not UTF-8), and the original headers are kept. The context is appended as
`foryou.dlq.*` headers with UTF-8 values. When a record is dead-lettered twice, the last occurrence of
each context header wins.
"""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from topics.validation import REASONS

HEADER_PREFIX: Final = "foryou.dlq."
REASON_HEADER: Final = "foryou.dlq.reason"
DETAIL_HEADER: Final = "foryou.dlq.detail"
SOURCE_TOPIC_HEADER: Final = "foryou.dlq.source.topic"
SOURCE_PARTITION_HEADER: Final = "foryou.dlq.source.partition"
SOURCE_OFFSET_HEADER: Final = "foryou.dlq.source.offset"
FAILED_AT_MS_HEADER: Final = "foryou.dlq.failed_at_ms"

# The validation reasons, plus those of records the worker reads from its own internal topics and tables.
PROCESSING_ERROR: Final = "processing_error"  # a valid record whose processing raised
BAD_KEY: Final = "bad_key"  # a key an internal topic or table changelog cannot hold (not a user id)
CORRUPT_STATE: Final = "corrupt_state"  # a table value (changelog or local RocksDB) its store cannot decode
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = (*REASONS, PROCESSING_ERROR, BAD_KEY, CORRUPT_STATE)
_REASON_SET: Final = frozenset(DEAD_LETTER_REASONS)

# Keeps the headers far below the dead-letters topic's headroom whatever an exception message holds.
MAX_DETAIL_CHARS: Final = 1_000

Headers = Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None]


class MalformedDeadLetter(ValueError):
    """Headers that do not hold a complete, well-formed dead-letter context."""


@dataclass(frozen=True, slots=True)
class DeadLetterContext:
    reason: str
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at_ms: int


def dead_letter_headers(
    *,
    reason: str,
    detail: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    failed_at_ms: int | None = None,
) -> list[tuple[str, bytes]]:
    """The context headers to append to the original record's headers; detail is cut to MAX_DETAIL_CHARS.

    failed_at_ms defaults to now.
    """
    if failed_at_ms is None:
        failed_at_ms = time.time_ns() // 1_000_000
    if reason not in _REASON_SET:
        raise ValueError(f"unknown dead-letter reason {reason!r}; use one of {DEAD_LETTER_REASONS}")
    return [
        (REASON_HEADER, reason.encode()),
        # An exception message may hold lone surrogates; "replace" keeps the header valid UTF-8.
        (DETAIL_HEADER, detail[:MAX_DETAIL_CHARS].encode("utf-8", "replace")),
        (SOURCE_TOPIC_HEADER, source_topic.encode()),
        (SOURCE_PARTITION_HEADER, str(source_partition).encode()),
        (SOURCE_OFFSET_HEADER, str(source_offset).encode()),
        (FAILED_AT_MS_HEADER, str(failed_at_ms).encode()),
    ]


def parse_dead_letter_headers(headers: Headers | None) -> DeadLetterContext:
    """The dead-letter context from a record's headers (a list of pairs or a mapping, as clients give)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    found: dict[str, bytes] = {}
    for name, value in pairs:
        if name.startswith(HEADER_PREFIX) and value is not None:
            found[name] = value
    return DeadLetterContext(
        reason=_text(found, REASON_HEADER),
        detail=_text(found, DETAIL_HEADER),
        source_topic=_text(found, SOURCE_TOPIC_HEADER),
        source_partition=_integer(found, SOURCE_PARTITION_HEADER),
        source_offset=_integer(found, SOURCE_OFFSET_HEADER),
        failed_at_ms=_integer(found, FAILED_AT_MS_HEADER),
    )


def _text(found: dict[str, bytes], name: str) -> str:
    try:
        return bytes(found[name]).decode("utf-8", "replace")
    except KeyError:
        raise MalformedDeadLetter(f"header {name} is missing") from None


def _integer(found: dict[str, bytes], name: str) -> int:
    text = _text(found, name)
    try:
        return int(text)
    except ValueError:
        raise MalformedDeadLetter(f"header {name} is not an integer: {text[:40]!r}") from None
