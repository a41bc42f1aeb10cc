"""The post store's RocksDB layout: keys, value codecs, options, the write batch and the decoded-post cache.

Layout (raw bytes; `<id>` is 8 bytes big-endian with the sign bit flipped, so bytewise = numeric):
    p<post_id>                  -> orjson list of the Post fields + the post's timeline mask
    t<author_id><kind:1>        -> packed little-endian int64 pairs (created_at_ms, post_id), newest first
    c<created_at_ms><post_id>   -> int64 author_id + 1-byte timeline mask (time index for trim/iter_recent)
    d<post_id>                  -> int64 time the delete was applied (store clock), int64 deleting author
    x<applied_at_ms><post_id>   -> b"" (time index of tombstones)
    e<post_id>                  -> float16 content vector (written with the post when the store has a content
                                   encoder; dropped with the post)
    f<author_id>                -> int64 follower count (raw sum of deltas; read clamped at 0)
    g<followed_id><follower_id> -> b"" (a follow edge, from follower deltas that name their follower)
    o<partition>                -> int64 next offset to read
    m/count                     -> int64 number of live posts

Why one value per timeline rather than one key per entry: for 500 followed authors over 200k posts, reading
the timelines as one multi-get of 1000 values took a median 2.4 ms; seeking a prefix iterator per
(author, kind) and reading at most 10 keys each took 10 ms (Python call overhead per key). The cost is a
read-modify-write of the author's timeline per create (a prepend in the common, in-order case); all keys a
batch reads are fetched up front with one multi-get (`Batch.prefetch`).

Reads reuse the Post objects decoded by earlier reads (`DecodedPosts`) when the bytes read are the bytes
decoded then: building frozen Post objects was most of a feed request's post reads, and requests read the
same posts over and over. A body never changes while its post lives, so no write touches this.
"""

import dataclasses
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import islice, repeat
from typing import Final, Literal

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

from stores import _codec
from stores.records import Post

TimelineKind = Literal["original", "secondary", "video"]

KIND_CODES: Final[dict[str, int]] = {"original": 0, "secondary": 1, "video": 2}
ORIGINAL, SECONDARY, VIDEO = 0, 1, 2
ALL_KINDS: Final = (ORIGINAL, SECONDARY, VIDEO)

POST = b"p"
TIMELINE = b"t"
CREATED = b"c"
TOMBSTONE = b"d"
TOMBSTONE_TIME = b"x"
FOLLOWERS = b"f"
CONTENT = b"e"
FOLLOW_EDGE = b"g"
OFFSET = b"o"
COUNT_KEY = b"m/count"

N_POST_FIELDS: Final = 14  # Post's fields, in declaration order, at the head of the stored list
PAIR_SIZE: Final = _codec.PAIR.size
SCAN_CHUNK: Final = 1_024


def rocksdb_options(block_cache_bytes: int, row_cache_bytes: int) -> Options:
    """Point lookups dominate (post bodies, tombstones, timelines): bloom filters make the many misses
    (unknown ids, absent tombstones) cheap, a block cache keeps hot timelines decoded in memory, and a row
    cache answers repeated keys without searching a block at all (a multi-get of 1,000 post bodies: 0.30 ms
    with it, 0.75 ms without; feed requests read the same posts over and over). RocksDB keeps the row
    cache consistent with writes itself."""
    table = BlockBasedOptions()
    table.set_bloom_filter(10, False)
    table.set_block_cache(Cache(block_cache_bytes))
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_block_based_table_factory(table)
    if row_cache_bytes > 0:
        options.set_row_cache(Cache(row_cache_bytes))
    return options


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with the one-byte `prefix`."""
    return bytes((prefix[0] + 1,))


def post_key(post_id: int) -> bytes:
    return POST + _codec.key_i64(post_id)


def timeline_key(author_id: int, kind: int) -> bytes:
    return TIMELINE + _codec.key_i64(author_id) + bytes((kind,))


def created_key(created_at_ms: int, post_id: int) -> bytes:
    return CREATED + _codec.key_i64(created_at_ms) + _codec.key_i64(post_id)




def content_key(post_id: int) -> bytes:
    return CONTENT + _codec.key_i64(post_id)


def follow_key(followed_id: int, follower_id: int) -> bytes:
    return FOLLOW_EDGE + _codec.key_i64(followed_id) + _codec.key_i64(follower_id)


def tombstone_key(post_id: int) -> bytes:
    return TOMBSTONE + _codec.key_i64(post_id)


def tombstone_author(stored: bytes) -> int | None:
    """The author named by a tombstone (time applied, then author); None for the older 8-byte form."""
    return _codec.unpack_i64(stored[8:16]) if len(stored) >= 16 else None


def tombstone_time_key(deleted_at_ms: int, post_id: int) -> bytes:
    return TOMBSTONE_TIME + _codec.key_i64(deleted_at_ms) + _codec.key_i64(post_id)


def encode_index_value(author_id: int, mask: int) -> bytes:
    return _codec.pack_i64(author_id) + bytes((mask,))


def decode_index_value(value: bytes) -> tuple[int, int]:
    return _codec.I64.unpack_from(value)[0], value[8]


def encode_post(post: Post, mask: int) -> bytes:
    return _codec.dumps(
        [
            post.post_id,
            post.author_id,
            post.created_at_ms,
            post.text,
            post.in_reply_to_post_id,
            post.in_reply_to_user_id,
            post.repost_of_post_id,
            post.repost_of_user_id,
            post.quote_of_post_id,
            post.conversation_id,
            post.media,
            post.video_duration_ms,
            post.subscriber_only,
            post.safety_label,
            mask,
        ]
    )


def decode_post(value: bytes) -> tuple[Post, int]:
    fields = _codec.loads(value)
    return Post(*fields[:N_POST_FIELDS]), fields[N_POST_FIELDS]


# Posts are frozen slotted dataclasses; a batch read builds them field by field through the slots' own
# setters (what the generated __init__ does one call at a time), a third of the cost for a thousand posts.
POST_SETTERS: Final = tuple(getattr(Post, field.name).__set__ for field in dataclasses.fields(Post))
assert len(POST_SETTERS) == N_POST_FIELDS, "the stored layout lists every Post field"


def decode_posts(values: Sequence[bytes]) -> list[Post]:
    """`decode_post(value)[0]` of every stored value."""
    rows = [_codec.loads(value) for value in values]
    posts: list[Post] = list(map(object.__new__, repeat(Post, len(rows))))
    for setter, column in zip(POST_SETTERS, zip(*rows, strict=True), strict=False):
        deque(map(setter, posts, column), maxlen=0)
    return posts


class DecodedPosts:
    """Posts decoded by earlier reads, reused when the bytes read now are the very bytes decoded then.

    A live post's stored value never changes, and a deleted or dropped post reads as None, so a hit is always
    what decoding would give: no write path needs to invalidate anything. Feed requests read the same posts
    over and over (the followed authors' recent posts, popular retrieved ones); building the frozen Post
    objects was most of a batch read. Bounded: the oldest entries go first.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: dict[int, tuple[bytes, Post]] = {}
        self._lock = threading.Lock()  # readers run on several threads; eviction iterates the dict

    def decode(self, post_ids: Sequence[int], values: Sequence[bytes | None]) -> list[Post | None]:
        """The posts stored as `values` (None for None) under `post_ids`."""
        entries = self._entries
        posts: list[Post | None] = [None] * len(values)
        missed: list[tuple[int, bytes]] = []  # (position, value)
        for position, (post_id, value) in enumerate(zip(post_ids, values, strict=True)):
            if value is None:
                continue
            entry = entries.get(post_id)
            if entry is not None and entry[0] == value:
                posts[position] = entry[1]
            else:
                missed.append((position, value))
        if missed:
            decoded = decode_posts([value for _, value in missed])
            with self._lock:
                for (position, value), post in zip(missed, decoded, strict=True):
                    posts[position] = post
                    entries[post_ids[position]] = (value, post)
                for post_id in list(islice(entries, max(0, len(entries) - self._capacity))):
                    del entries[post_id]
        return posts


def mask_kinds(mask: int) -> list[int]:
    return [kind for kind in ALL_KINDS if mask >> kind & 1]



class Batch:
    """A WriteBatch with a read-your-writes overlay, so events later in a batch see earlier ones, and a read
    cache filled by one multi-get of the keys the batch is known to need."""

    def __init__(self, db: Rdict) -> None:
        self._db = db
        self._write_batch = WriteBatch(raw_mode=True)
        self._pending: dict[bytes, bytes | None] = {}
        self._read: dict[bytes, bytes | None] = {}
        self.count_delta = 0
        self.added: dict[int, int] = {}
        self.removed: list[int] = []
        self.refused_deletes: list[int] = []

    def prefetch(self, keys: Iterable[bytes]) -> None:
        wanted = [key for key in dict.fromkeys(keys) if key not in self._pending and key not in self._read]
        if wanted:
            self._read.update(zip(wanted, _codec.multi_get(self._db, wanted), strict=True))

    def get(self, key: bytes) -> bytes | None:
        if key in self._pending:
            return self._pending[key]
        if key in self._read:
            return self._read[key]
        return self._db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value
        self._write_batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self._pending[key] = None
        self._write_batch.delete(key)

    def commit(self) -> None:
        if self.count_delta:
            stored = self._db.get(COUNT_KEY)
            current = _codec.unpack_i64(stored) if stored is not None else 0
            self._write_batch.put(COUNT_KEY, _codec.pack_i64(current + self.count_delta))
        if not self._write_batch.is_empty():
            self._db.write(self._write_batch)

def scan_keys(db: Rdict, start: bytes, stop: bytes, max_keys: int) -> list[bytes]:
    """Up to `max_keys` keys in [start, stop); the iterator is released before returning."""
    keys: list[bytes] = []
    iterator = db.iter()
    iterator.seek(start)
    while iterator.valid() and len(keys) < max_keys:
        key = iterator.key()
        if key >= stop:
            break
        keys.append(key)
        iterator.next()
    del iterator
    return keys


def read_posts(db: Rdict, decoded: DecodedPosts, post_ids: Sequence[int]) -> list[Post | None]:
    """The stored posts under `post_ids` (None where absent), in one multi-get."""
    if not post_ids:
        return []
    return decoded.decode(post_ids, _codec.multi_get(db, [post_key(post_id) for post_id in post_ids]))
