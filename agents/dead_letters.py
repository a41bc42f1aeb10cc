"""Where every consumer of the worker sends what it cannot decode or apply.

Each dead letter is the original key, bytes and headers on `dead-letters`, its reason, detail and source
(topic, partition, offset; -1 when the value was read back from a table rather than off a topic) appended
as the `foryou.dlq.*` headers, and one step of `foryou_dead_letters_total{topic,reason}`. Nothing is dropped
silently, and nothing a consumer cannot apply stops it.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agents import metrics
from topics.dead_letters import dead_letter_headers
from topics.specs import DEAD_LETTERS

log = logging.getLogger(__name__)

# (topic, key, value, headers): the producer every dead letter leaves through; what it returns (the worker's
# forwarder: a Delivery to await before acknowledging the source record) is returned to the caller.
Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Any]


class DeadLetters:
    def __init__(self, send: Send) -> None:
        self._send = send

    def __call__(
        self,
        *,
        reason: str,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
    ) -> Any:
        metrics.dead_letters.labels(topic, reason).inc()
        log.warning("dead letter from %s[%d]@%d: %s: %s", topic, partition, offset, reason, detail[:200])
        context = dead_letter_headers(
            reason=reason, detail=detail, source_topic=topic, source_partition=partition, source_offset=offset
        )
        original = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        return self._send(DEAD_LETTERS, key, value, [(name, header) for name, header in original] + context)
