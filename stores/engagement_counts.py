"""Per-post engagement counts: views (served impressions), positive engagements and favorites.

Every worker keeps its own full copy (any user may be shown any post), fed by its own group-less consumer
of the `impressions` and `engagement-events` topics (agents.counts_replica), exactly like the post-store
replica: each batch of deltas is written in one RocksDB WriteBatch together with the offsets it reached,
so a restart resumes where it stopped and never counts a record twice. The PopularPosts source, the
EngagementCounts hydrator and the author cold-start scorer read it.

Counts of posts that left the post store (deleted, or past the retention) are dropped with `forget`.

RocksDB layout (raw bytes; `<id>` as in stores.post_layout):
    k<post_id>                      -> three int64: views, engagements, favorites
    o<topic>\\x00<partition:int64>   -> int64 next offset to read
"""

import struct
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np
from rocksdict import Cache, Options, Rdict, WriteBatch

from stores import _codec
from stores.records import PostCounts
from topics.actions import ACTIONS, NEGATIVE_WEIGHT_ACTIONS

# Every request reads a thousand posts' counts, the same posts again and again: a row cache answers those
# without a block search (stores.post_layout measures it for post bodies: 2.5x on a multi-get).
DEFAULT_ROW_CACHE_BYTES: Final = 16 << 20

_COUNTS = b"k"
_OFFSET = b"o"
# Unpacks the stored value's three little-endian int64s: 54 ns a value where np.frombuffer took 880 ns, which
# showed in profiles (one decode per candidate per request).
_VALUE: Final = struct.Struct("<3q")

# Engagement events that count as an engagement: the explicit positive actions, not the passive dwell
# signals nor the negatives.
COUNTED_ACTIONS: Final[frozenset[str]] = (
    frozenset(ACTIONS) - NEGATIVE_WEIGHT_ACTIONS - {"dwell", "dwell_time", "click_dwell_time"}
)


def _key(post_id: int) -> bytes:
    return _COUNTS + _codec.key_i64(post_id)


def _offset_key(topic: str, partition: int) -> bytes:
    return _OFFSET + topic.encode() + b"\x00" + _codec.key_i64(partition)


# Frozen, so every post never counted can share one value (a request reads a thousand, mostly fresh, posts).
_NO_COUNTS: Final = PostCounts()


def _decode(value: bytes | None) -> PostCounts:
    if value is None:
        return _NO_COUNTS
    views, engagements, favorites = _VALUE.unpack_from(value)
    return PostCounts(views, engagements, favorites)


def _encode(counts: PostCounts) -> bytes:
    return np.array([counts.views, counts.engagements, counts.favorites], dtype="<i8").tobytes()


def count_deltas(
    impressions: Iterable[Mapping[str, Any]], engagements: Iterable[Mapping[str, Any]]
) -> dict[int, PostCounts]:
    """Per-post count increments from decoded `impressions` and `engagement-events` values."""
    deltas: dict[int, list[int]] = {}
    for impression in impressions:
        deltas.setdefault(int(impression["post_id"]), [0, 0, 0])[0] += 1
    for engagement in engagements:
        action = engagement["action"]
        if action in COUNTED_ACTIONS:
            row = deltas.setdefault(int(engagement["post_id"]), [0, 0, 0])
            row[1] += 1
            row[2] += action == "favorite"
    return {post_id: PostCounts(*row) for post_id, row in deltas.items()}


class EngagementCounts:
    """The counts in a local RocksDB; see the module docstring. Readers may run on any thread."""

    def __init__(self, path: str, row_cache_bytes: int = DEFAULT_ROW_CACHE_BYTES) -> None:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        if row_cache_bytes > 0:
            options.set_row_cache(Cache(row_cache_bytes))
        self.path = path
        self._db = Rdict(path, options)

    def apply(self, deltas: Mapping[int, PostCounts], offsets: Mapping[tuple[str, int], int]) -> None:
        """Add `deltas` and record the offsets reached ((topic, partition) -> next offset), atomically."""
        ids = list(deltas)
        batch = WriteBatch(raw_mode=True)
        current = _codec.multi_get(self._db, [_key(i) for i in ids])
        for post_id, stored in zip(ids, current, strict=True):
            old, delta = _decode(stored), deltas[post_id]
            batch.put(
                _key(post_id),
                _encode(
                    PostCounts(
                        old.views + delta.views,
                        old.engagements + delta.engagements,
                        old.favorites + delta.favorites,
                    )
                ),
            )
        for (topic, partition), offset in offsets.items():
            batch.put(_offset_key(topic, partition), _codec.pack_i64(offset))
        if not batch.is_empty():
            self._db.write(batch)

    def counts(self, post_ids: Iterable[int]) -> dict[int, PostCounts]:
        """Every given post's counts (zeros when never counted), in one multi-get."""
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return {}
        return {i: _decode(v) for i, v in zip(ids, _codec.multi_get(self._db, [_key(i) for i in ids]), strict=True)}

    def offset(self, topic: str, partition: int) -> int | None:
        stored = self._db.get(_offset_key(topic, partition))
        return None if stored is None else _codec.unpack_i64(stored)

    def forget(self, post_ids: Iterable[int]) -> None:
        batch = WriteBatch(raw_mode=True)
        for post_id in post_ids:
            batch.delete(_key(post_id))
        if not batch.is_empty():
            self._db.write(batch)

    def close(self) -> None:
        self._db.close()
