"""Bounds of the wire contract, shared by the decoders, the topic configs and the docs.

Every bound exists to cap the work and memory one record can cost the consumers; docs/topics.md explains
how the numbers were chosen.
"""

from typing import Final

SCHEMA_VERSION: Final = 1

# Ids (post, user, author) are positive signed 64-bit integers, the range every Kafka client and the
# Java/Scala side of an ecosystem can hold.
MAX_ID: Final = 2**63 - 1
# Millisecond timestamps and durations: non-negative, same 64-bit range.
MAX_MS: Final = 2**63 - 1

# A value above this many bytes is rejected before parsing (reason "too_large"). The largest legitimate
# input is a feed request carrying both id lists in full: 2 x 5,000 ids x 20 bytes ("9223372036854775807,")
# = 200,000 bytes, which fits with room to spare.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
# Ranked feeds may carry a per-post `explain` object for debugging, so their bound is larger; it stays
# under librdkafka's default message.max.bytes (1,000,000) so any client can consume them.
MAX_RANKED_FEED_BYTES: Final = 1_000_000

# Kafka's own broker default for message.max.bytes, set explicitly on every topic so the bound holds
# whatever the broker's configuration. It exceeds MAX_PAYLOAD_BYTES on purpose: an oversized record
# reaches the app and is dead-lettered as "too_large" rather than bouncing off the broker unseen, and
# producers with default batch sizes (librdkafka: 1,000,000 bytes) never hit the topic limit.
TOPIC_MAX_MESSAGE_BYTES: Final = 1_048_588
# A dead letter carries the original value verbatim plus its context headers.
DEAD_LETTER_HEADROOM_BYTES: Final = 64 * 1024
DEAD_LETTER_MAX_MESSAGE_BYTES: Final = TOPIC_MAX_MESSAGE_BYTES + DEAD_LETTER_HEADROOM_BYTES
# The dead-letter topic (one partition) keeps at most this many bytes besides its 30 days: a producer that
# floods the inputs with bad records cannot fill the broker's disk through it (the oldest segments go first).
DEAD_LETTER_RETENTION_BYTES: Final = 1 << 30

# Feed requests. A request above MAX_RESULTS is rejected (out_of_range), never cut silently; one that gives no
# max_results gets the feed size of the worker's pipeline preset (`results.default_size` in
# streams/defaults.toml: 30 in seed-2026-01, 35 in production-2026-10).
MAX_RESULTS: Final = 500
MAX_SEEN_IDS: Final = 5_000
MAX_SERVED_IDS: Final = 5_000

# String lengths, in code points (Python len of the decoded str).
MAX_TEXT_CHARS: Final = 10_000
MAX_REQUEST_ID_CHARS: Final = 128
MAX_SURFACE_CHARS: Final = 64
MAX_KEYWORD_CHARS: Final = 100
MAX_SAFETY_LABEL_CHARS: Final = 64
MAX_COUNTRY_CHARS: Final = 8
# RFC 5646 recommends implementations accept language tags of at least 35 characters.
MAX_LANGUAGE_CHARS: Final = 35
MAX_MODEL_CHARS: Final = 128
MAX_ERROR_CHARS: Final = 1_024
