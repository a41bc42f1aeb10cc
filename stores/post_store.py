"""Post store: a full local replica of every live post, with Thunder's in-network query.

Semantics follow the facts of X's `thunder` in-memory post store:
- Each author has three timelines holding only (post_id, created_at): originals (neither reply nor repost),
  secondary posts (replies and reposts) and videos. A post is video-eligible when it has video and is not a
  reply, or when it is a repost of a stored non-reply video post. Timelines are bounded (`timeline_cap` per
  author and kind, 500 by default); a post pushed out of its original/secondary timeline by the bound is
  dropped from the store altogether, as Thunder does.
- Deletes remove the post when applied and leave a tombstone; a later create of a tombstoned id is skipped,
  so a delete that overtakes its create is honoured too. A tombstone holds for the retention plus a margin
  on the store's own clock from when the delete was applied, whatever the producer's `deleted_at_ms` says
  (a producer's clock must not decide when a deleted post may come back). Duplicate creates are ignored.
  Creates older than the retention (2 days) or more than `max_future_ms` ahead of the clock at apply time
  are dropped. Only the author deletes a post: a delete naming another author than the stored post's is
  refused (`Applied.refused_deletes`), and a tombstone left before the create holds only against that
  author's create.
- `apply` reports which posts it stored and which it removed (deleted, or pushed out by a timeline cap),
  so that the worker's retrieval index holds exactly the posts the store holds.
- The query (`recent_posts`) walks each followed author's timelines newest first, skips excluded ids, drops
  reposts of the viewer's own posts and, for replies, keeps only: replies to an original post, or replies
  to a reply to the conversation root when the replied-to user is followed. At most `max_original_per_author`
  originals and `max_secondary_per_author` secondary posts survive per author (`max_video_per_author` in
  video mode); the survivors are ordered newest first and cut to `limit`. The defaults here (500 per
  timeline, 10 / 5 / 5 per author) are the seed-2026-01 preset's; the 2026-10 publication's (5,000 per
  timeline, 50 originals / 30 replies and reposts per author) come from streams/defaults.toml [thunder].
- `trim` drops posts and timeline entries older than the retention and tombstones older than retention plus
  a margin; it runs in the background (the caller schedules it), chunked into bounded write batches.

RocksDB layout (raw bytes; `<id>` is 8 bytes big-endian with the sign bit flipped, so bytewise = numeric):
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
Every `apply` is one WriteBatch holding the events' effects and the consumed offsets, so a crash never
separates the two.

Why one value per timeline rather than one key per entry: for 500 followed authors over 200k posts, reading
the timelines as one multi-get of 1000 values took a median 2.4 ms; seeking a prefix iterator per
(author, kind) and reading at most 10 keys each took 10 ms (Python call overhead per key). The cost is a
read-modify-write of the author's timeline per create (a prepend in the common, in-order case); all keys a
batch reads are fetched up front with one multi-get.

The query merges the fetched timelines newest first with a heap, handing out candidates in rounds so that
post bodies (needed for the repost and reply filters) come in one multi-get per round, and stops as soon as
no timeline can still yield a post newer than the `limit`-th selected one: it touches about `limit` bodies,
not every entry of every followed timeline. `stores.bench` measures it (bench/results/stores.json).

Reads reuse the Post objects decoded by earlier reads (up to `decoded_posts` of them) when the bytes read are
the bytes decoded then: building frozen Post objects was most of a feed request's post reads, and requests
read the same posts over and over. A body never changes while its post lives, so no write touches this.

Content: a store built with a `content_encoder` (text and media kind -> vectors, e.g. phoenix.content) embeds
every create of a batch in one call when the batch is applied, and stores the vector with the post, so
ranking, retrieval and history tokens read it from here (`content_vectors`). A repost stores its original's
vector when the original is stored (the user sees the original's content). float16 halves the bytes; the
vectors are unit-scale, so the rounding (~1e-3 relative) is far below what the model can tell apart.

Clock: `apply` and `recent_posts` default to the wall clock; a replay of simulated time must pass `now_ms`.
Writers (`apply`, `trim`) are serialised by a lock; readers never wait for writers (they take a short lock
of their own only to remember newly decoded posts).
"""

import dataclasses
import heapq
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from itertools import islice, repeat
from typing import Any, Final, Literal

import numpy as np
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

from stores import _codec
from stores.records import Post

TimelineKind = Literal["original", "secondary", "video"]


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    """What one `apply` changed among the live posts."""

    added: dict[int, int]  # post_id -> author_id of the posts now stored
    removed: list[int]  # posts that were stored before and no longer are (deleted or evicted by a cap)
    refused_deletes: list[int]  # deletes naming another author than the stored post's: not applied

DEFAULT_RETENTION_MS: Final = 2 * 86_400_000
DEFAULT_TIMELINE_CAP: Final = 500
DEFAULT_MAX_ORIGINAL_PER_AUTHOR: Final = 10
DEFAULT_MAX_SECONDARY_PER_AUTHOR: Final = 5
DEFAULT_MAX_VIDEO_PER_AUTHOR: Final = 5
DEFAULT_TOMBSTONE_MARGIN_MS: Final = 3_600_000
DEFAULT_MAX_FUTURE_MS: Final = 5 * 60_000
DEFAULT_BLOCK_CACHE_BYTES: Final = 64 << 20
DEFAULT_ROW_CACHE_BYTES: Final = 64 << 20
DEFAULT_DECODED_POSTS: Final = 50_000

_KIND_CODES: Final[dict[str, int]] = {"original": 0, "secondary": 1, "video": 2}
_ORIGINAL, _SECONDARY, _VIDEO = 0, 1, 2
_ALL_KINDS: Final = (_ORIGINAL, _SECONDARY, _VIDEO)

_POST = b"p"
_TIMELINE = b"t"
_CREATED = b"c"
_TOMBSTONE = b"d"
_TOMBSTONE_TIME = b"x"
_FOLLOWERS = b"f"
_CONTENT = b"e"
_FOLLOW_EDGE = b"g"
_OFFSET = b"o"
_COUNT_KEY = b"m/count"

_N_POST_FIELDS: Final = 14  # Post's fields, in declaration order, at the head of the stored list
_PAIR_SIZE: Final = _codec.PAIR.size
_TRIM_CHUNK: Final = 5_000  # posts per trim WriteBatch: bounds memory and lock hold time
_SCAN_CHUNK: Final = 1_024
_FETCH_SLACK: Final = 16  # extra candidates per round, for those the filters may drop


def _options(block_cache_bytes: int, row_cache_bytes: int) -> Options:
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


def _prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with the one-byte `prefix`."""
    return bytes((prefix[0] + 1,))


def _post_key(post_id: int) -> bytes:
    return _POST + _codec.key_i64(post_id)


def _timeline_key(author_id: int, kind: int) -> bytes:
    return _TIMELINE + _codec.key_i64(author_id) + bytes((kind,))


def _created_key(created_at_ms: int, post_id: int) -> bytes:
    return _CREATED + _codec.key_i64(created_at_ms) + _codec.key_i64(post_id)


ContentEncoder = Callable[[Sequence[str], Sequence[str]], np.ndarray]  # (texts, media kinds) -> [N, E]


def _content_key(post_id: int) -> bytes:
    return _CONTENT + _codec.key_i64(post_id)


def _follow_key(followed_id: int, follower_id: int) -> bytes:
    return _FOLLOW_EDGE + _codec.key_i64(followed_id) + _codec.key_i64(follower_id)


def _tombstone_key(post_id: int) -> bytes:
    return _TOMBSTONE + _codec.key_i64(post_id)


def _tombstone_author(stored: bytes) -> int | None:
    """The author named by a tombstone (time applied, then author); None for the older 8-byte form."""
    return _codec.unpack_i64(stored[8:16]) if len(stored) >= 16 else None


def _tombstone_time_key(deleted_at_ms: int, post_id: int) -> bytes:
    return _TOMBSTONE_TIME + _codec.key_i64(deleted_at_ms) + _codec.key_i64(post_id)


def _encode_index_value(author_id: int, mask: int) -> bytes:
    return _codec.pack_i64(author_id) + bytes((mask,))


def _decode_index_value(value: bytes) -> tuple[int, int]:
    return _codec.I64.unpack_from(value)[0], value[8]


def _encode_post(post: Post, mask: int) -> bytes:
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


def _decode_post(value: bytes) -> tuple[Post, int]:
    fields = _codec.loads(value)
    return Post(*fields[:_N_POST_FIELDS]), fields[_N_POST_FIELDS]


# Posts are frozen slotted dataclasses; a batch read builds them field by field through the slots' own
# setters (what the generated __init__ does one call at a time), a third of the cost for a thousand posts.
_POST_SETTERS: Final = tuple(getattr(Post, field.name).__set__ for field in dataclasses.fields(Post))
assert len(_POST_SETTERS) == _N_POST_FIELDS, "the stored layout lists every Post field"


def _decode_posts(values: Sequence[bytes]) -> list[Post]:
    """`_decode_post(value)[0]` of every stored value."""
    rows = [_codec.loads(value) for value in values]
    posts: list[Post] = list(map(object.__new__, repeat(Post, len(rows))))
    for setter, column in zip(_POST_SETTERS, zip(*rows, strict=True), strict=False):
        deque(map(setter, posts, column), maxlen=0)
    return posts


class _DecodedPosts:
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
            decoded = _decode_posts([value for _, value in missed])
            with self._lock:
                for (position, value), post in zip(missed, decoded, strict=True):
                    posts[position] = post
                    entries[post_ids[position]] = (value, post)
                for post_id in list(islice(entries, max(0, len(entries) - self._capacity))):
                    del entries[post_id]
        return posts


def _post_from_event(event: Mapping[str, Any]) -> Post:
    return Post(
        post_id=event["post_id"],
        author_id=event["author_id"],
        created_at_ms=event["created_at_ms"],
        text=event.get("text") or "",
        in_reply_to_post_id=event.get("in_reply_to_post_id"),
        in_reply_to_user_id=event.get("in_reply_to_user_id"),
        repost_of_post_id=event.get("repost_of_post_id"),
        repost_of_user_id=event.get("repost_of_user_id"),
        quote_of_post_id=event.get("quote_of_post_id"),
        conversation_id=event.get("conversation_id"),
        media=event.get("media") or "none",
        video_duration_ms=event.get("video_duration_ms"),
        subscriber_only=bool(event.get("subscriber_only", False)),
        safety_label=event.get("safety_label"),
    )


def _mask_kinds(mask: int) -> list[int]:
    return [kind for kind in _ALL_KINDS if mask >> kind & 1]


class _Batch:
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
            stored = self._db.get(_COUNT_KEY)
            current = _codec.unpack_i64(stored) if stored is not None else 0
            self._write_batch.put(_COUNT_KEY, _codec.pack_i64(current + self.count_delta))
        if not self._write_batch.is_empty():
            self._db.write(self._write_batch)


def _keys_read_by(event: Mapping[str, Any]) -> Iterator[bytes]:
    """The keys applying `event` reads in the common case (evictions read a few more)."""
    event_type = event.get("type")
    if event_type == "create":
        yield _tombstone_key(event["post_id"])
        yield _post_key(event["post_id"])
        author = _TIMELINE + _codec.key_i64(event["author_id"])
        is_repost = event.get("repost_of_post_id") is not None
        if is_repost or event.get("in_reply_to_post_id") is not None:
            yield author + bytes((_SECONDARY,))
        else:
            yield author + bytes((_ORIGINAL,))
        if is_repost or event.get("media") == "video":
            yield author + bytes((_VIDEO,))
        if is_repost:
            yield _post_key(event["repost_of_post_id"])
            yield _content_key(event["repost_of_post_id"])
    elif event_type == "delete":
        yield _tombstone_key(event["post_id"])
        yield _post_key(event["post_id"])
    elif event_type == "follower_delta":
        yield _FOLLOWERS + _codec.key_i64(event["author_id"])


class PostStore:
    """Every live post in a local RocksDB, fed by batches of tweet events; see the module docstring."""

    def __init__(
        self,
        path: str,
        retention_ms: int = DEFAULT_RETENTION_MS,
        *,
        timeline_cap: int = DEFAULT_TIMELINE_CAP,
        max_original_per_author: int = DEFAULT_MAX_ORIGINAL_PER_AUTHOR,
        max_secondary_per_author: int = DEFAULT_MAX_SECONDARY_PER_AUTHOR,
        max_video_per_author: int = DEFAULT_MAX_VIDEO_PER_AUTHOR,
        tombstone_margin_ms: int = DEFAULT_TOMBSTONE_MARGIN_MS,
        max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
        block_cache_bytes: int = DEFAULT_BLOCK_CACHE_BYTES,
        row_cache_bytes: int = DEFAULT_ROW_CACHE_BYTES,
        decoded_posts: int = DEFAULT_DECODED_POSTS,
        content_encoder: ContentEncoder | None = None,
    ) -> None:
        if timeline_cap < 1:
            raise ValueError("timeline_cap must be at least 1")
        self.path = path
        self.retention_ms = retention_ms
        self.timeline_cap = timeline_cap
        self.tombstone_margin_ms = tombstone_margin_ms
        self.max_future_ms = max_future_ms
        self._caps_by_kind = {
            _ORIGINAL: max_original_per_author,
            _SECONDARY: max_secondary_per_author,
            _VIDEO: max_video_per_author,
        }
        self._db = Rdict(path, _options(block_cache_bytes, row_cache_bytes))
        self._decoded = _DecodedPosts(decoded_posts)
        self._write_lock = threading.Lock()
        self._content_encoder = content_encoder

    # ----------------------------------------------------------------------------------------------- writes

    def apply(
        self,
        events: Iterable[Mapping[str, Any]],
        offsets: Mapping[int, int] | None = None,
        *,
        now_ms: int | None = None,
    ) -> Applied:
        """Apply tweet create/delete and follower_delta events and record `offsets`, in one WriteBatch.

        `now_ms` (default: the wall clock) decides which creates are too old or too far in the future, and
        starts the tombstones of the deletes. An event of unknown type or shape raises (ValueError,
        KeyError, TypeError) and nothing of the batch is written: the caller checks events first
        (`agents.envelope.decode_post_log_record`) and may retry them one by one.
        """
        now = _codec.wall_clock_ms() if now_ms is None else now_ms
        events = list(events)
        content = self._embed_creates(events)
        with self._write_lock:
            batch = _Batch(self._db)
            batch.prefetch(key for event in events for key in _keys_read_by(event))
            for event in events:
                event_type = event.get("type")
                if event_type == "create":
                    self._apply_create(batch, event, now, content.get(event["post_id"]))
                elif event_type == "delete":
                    self._apply_delete(batch, event, now)
                elif event_type == "follower_delta":
                    key = _FOLLOWERS + _codec.key_i64(event["author_id"])
                    stored = batch.get(key)
                    current = _codec.unpack_i64(stored) if stored is not None else 0
                    batch.put(key, _codec.pack_i64(current + int(event["delta"])))
                    self._apply_follow_edge(batch, event)
                else:
                    raise ValueError(f"post store: unknown event type {event_type!r}")
            for partition, offset in (offsets or {}).items():
                batch.put(_OFFSET + _codec.key_i64(partition), _codec.pack_i64(offset))
            batch.commit()
        return Applied(added=batch.added, removed=batch.removed, refused_deletes=batch.refused_deletes)

    def _embed_creates(self, events: Sequence[Mapping[str, Any]]) -> dict[int, bytes]:
        """Every create's own content vector (float16 bytes), embedded in one call; empty without an encoder."""
        if self._content_encoder is None:
            return {}
        creates = [event for event in events if event.get("type") == "create"]
        if not creates:
            return {}
        vectors = self._content_encoder(
            [event.get("text") or "" for event in creates], [event.get("media") or "none" for event in creates]
        )
        half = np.asarray(vectors, np.float16)
        return {event["post_id"]: row.tobytes() for event, row in zip(creates, half, strict=True)}

    @staticmethod
    def _apply_follow_edge(batch: _Batch, event: Mapping[str, Any]) -> None:
        """A follower delta naming its follower also records (+1) or removes (-1) the follow edge, for the
        mutual-follow check (`authors_following`). Deltas written before edges existed carry no follower."""
        follower = event.get("follower_id")
        if follower is None:
            return
        key = _follow_key(event["author_id"], int(follower))
        if int(event["delta"]) > 0:
            batch.put(key, b"")
        else:
            batch.delete(key)

    def _apply_create(self, batch: _Batch, event: Mapping[str, Any], now_ms: int, content: bytes | None = None) -> None:
        post_id = event["post_id"]
        created_at_ms = event["created_at_ms"]
        if created_at_ms < now_ms - self.retention_ms or created_at_ms > now_ms + self.max_future_ms:
            return
        key = _post_key(post_id)
        tombstone = batch.get(_tombstone_key(post_id))
        if tombstone is not None and _tombstone_author(tombstone) in (None, event["author_id"]):
            return  # deleted by its author (or by a delete from before tombstones named their author)
        if batch.get(key) is not None:
            return
        post = _post_from_event(event)
        primary = _ORIGINAL if post.kind == "original" else _SECONDARY
        mask = 1 << primary
        if self._video_eligible(batch, post):
            mask |= 1 << _VIDEO
        batch.put(key, _encode_post(post, mask))
        batch.put(_created_key(created_at_ms, post_id), _encode_index_value(post.author_id, mask))
        if content is not None:
            original = batch.get(_content_key(post.repost_of_post_id)) if post.repost_of_post_id is not None else None
            batch.put(_content_key(post_id), original if original is not None else content)
        batch.count_delta += 1
        batch.added[post_id] = post.author_id
        for kind in _mask_kinds(mask):
            if batch.get(key) is None:
                return  # the cap pushed the new post itself out of its primary timeline
            evicted = self._timeline_insert(batch, post.author_id, kind, created_at_ms, post_id)
            if kind != _VIDEO:
                for _, evicted_id in evicted:
                    self._drop_post(batch, evicted_id)

    def _video_eligible(self, batch: _Batch, post: Post) -> bool:
        if post.kind == "reply":
            return False
        if post.is_video:
            return True
        if post.kind == "repost" and post.repost_of_post_id is not None:
            stored = batch.get(_post_key(post.repost_of_post_id))
            if stored is not None:
                source, _ = _decode_post(stored)
                return source.kind != "reply" and source.is_video
        return False

    def _apply_delete(self, batch: _Batch, event: Mapping[str, Any], now_ms: int) -> None:
        """Only a post's author deletes it. A delete that overtakes its create leaves a tombstone naming the
        deleting author, which holds only against a create by that same author, so a forged early delete
        cannot suppress someone else's post."""
        post_id, author_id = event["post_id"], event["author_id"]
        stored = batch.get(_post_key(post_id))
        if stored is not None and _decode_post(stored)[0].author_id != author_id:
            batch.refused_deletes.append(post_id)
            return
        tombstone_key = _tombstone_key(post_id)
        existing = batch.get(tombstone_key)
        if existing is not None and _tombstone_author(existing) in (None, author_id):
            return  # already deleted: the first tombstone holds
        batch.put(tombstone_key, _codec.pack_i64(now_ms) + _codec.pack_i64(author_id))
        batch.put(_tombstone_time_key(now_ms, post_id), b"")
        self._drop_post(batch, post_id)

    def _drop_post(self, batch: _Batch, post_id: int) -> None:
        """Remove a post's body, time-index entry and timeline entries (no-op when absent)."""
        key = _post_key(post_id)
        stored = batch.get(key)
        if stored is None:
            return
        post, mask = _decode_post(stored)
        batch.delete(key)
        batch.delete(_content_key(post_id))
        batch.delete(_created_key(post.created_at_ms, post_id))
        batch.count_delta -= 1
        if batch.added.pop(post_id, None) is None:
            batch.removed.append(post_id)
        for kind in _mask_kinds(mask):
            self._timeline_remove(batch, post.author_id, kind, post_id)

    def _timeline_insert(
        self, batch: _Batch, author_id: int, kind: int, created_at_ms: int, post_id: int
    ) -> list[tuple[int, int]]:
        """Insert an entry keeping newest-first order; return the entries pushed out by the cap."""
        key = _timeline_key(author_id, kind)
        current = batch.get(key) or b""
        entry = (created_at_ms, post_id)
        if not current or entry > _codec.PAIR.unpack_from(current):
            updated = _codec.PAIR.pack(*entry) + current
        else:
            entries = _codec.unpack_pairs(current)
            entries.append(entry)
            entries.sort(reverse=True)
            updated = _codec.pack_pairs(entries)
        limit = self.timeline_cap * _PAIR_SIZE
        evicted = _codec.unpack_pairs(updated[limit:])
        batch.put(key, updated[:limit])
        return evicted

    def _timeline_remove(self, batch: _Batch, author_id: int, kind: int, post_id: int) -> None:
        key = _timeline_key(author_id, kind)
        current = batch.get(key)
        if not current:
            return
        entries = _codec.unpack_pairs(current)
        kept = [entry for entry in entries if entry[1] != post_id]
        if len(kept) == len(entries):
            return
        if kept:
            batch.put(key, _codec.pack_pairs(kept))
        else:
            batch.delete(key)

    def trim(self, now_ms: int) -> list[int]:
        """Drop posts older than the retention (and their timeline entries); forget old tombstones.

        Returns the ids of the posts dropped (the worker removes them from the retrieval index too). Work is
        split into WriteBatches of bounded size, each consistent on its own, so a trim interrupted by a crash
        leaves a valid store.
        """
        post_cutoff = now_ms - self.retention_ms
        dropped: list[int] = []
        while True:
            with self._write_lock:
                index_keys = self._scan_keys(_CREATED, _CREATED + _codec.key_i64(post_cutoff), _TRIM_CHUNK)
                if not index_keys:
                    break
                batch = _Batch(self._db)
                timelines: set[tuple[int, int]] = set()
                for index_key, index_value in zip(index_keys, _codec.multi_get(self._db, index_keys), strict=True):
                    batch.delete(index_key)
                    if index_value is None:
                        continue
                    author_id, mask = _decode_index_value(index_value)
                    post_key = _POST + index_key[9:17]
                    if batch.get(post_key) is not None:
                        batch.delete(post_key)
                        batch.delete(_CONTENT + index_key[9:17])
                        batch.count_delta -= 1
                        dropped.append(_codec.read_key_i64(index_key, 9))
                    timelines.update((author_id, kind) for kind in _mask_kinds(mask))
                for author_id, kind in timelines:
                    self._timeline_cut(batch, author_id, kind, post_cutoff)
                batch.commit()
            if len(index_keys) < _TRIM_CHUNK:
                break
        self._trim_tombstones(now_ms - self.retention_ms - self.tombstone_margin_ms)
        return dropped

    def _timeline_cut(self, batch: _Batch, author_id: int, kind: int, cutoff_ms: int) -> None:
        """Drop a timeline's entries created before `cutoff_ms` (they sit at its tail)."""
        key = _timeline_key(author_id, kind)
        current = batch.get(key)
        if not current:
            return
        times = np.frombuffer(current, dtype="<i8")[0::2]
        keep = int(np.count_nonzero(times >= cutoff_ms))  # times are non-increasing
        if keep == len(times):
            return
        if keep:
            batch.put(key, current[: keep * _PAIR_SIZE])
        else:
            batch.delete(key)

    def _trim_tombstones(self, cutoff_ms: int) -> None:
        while True:
            with self._write_lock:
                index_keys = self._scan_keys(_TOMBSTONE_TIME, _TOMBSTONE_TIME + _codec.key_i64(cutoff_ms), _TRIM_CHUNK)
                if not index_keys:
                    return
                batch = _Batch(self._db)
                for index_key in index_keys:
                    batch.delete(index_key)
                    tombstone_key = _TOMBSTONE + index_key[9:17]
                    stored = batch.get(tombstone_key)
                    if stored is not None and _codec.unpack_i64(stored[:8]) < cutoff_ms:
                        batch.delete(tombstone_key)
                batch.commit()
            if len(index_keys) < _TRIM_CHUNK:
                return

    def _scan_keys(self, start: bytes, stop: bytes, max_keys: int) -> list[bytes]:
        """Up to `max_keys` keys in [start, stop); the iterator is released before returning."""
        keys: list[bytes] = []
        iterator = self._db.iter()
        iterator.seek(start)
        while iterator.valid() and len(keys) < max_keys:
            key = iterator.key()
            if key >= stop:
                break
            keys.append(key)
            iterator.next()
        del iterator
        return keys

    # ------------------------------------------------------------------------------------------------ reads

    def offsets(self) -> dict[int, int]:
        """Partition -> next offset to read, as recorded by the last applied batches."""
        keys = self._scan_keys(_OFFSET, _prefix_end(_OFFSET), 1 << 20)
        values = _codec.multi_get(self._db, keys)
        return {
            _codec.read_key_i64(key, 1): _codec.unpack_i64(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    def get(self, post_id: int) -> Post | None:
        stored = self._db.get(_post_key(post_id))
        return None if stored is None else _decode_post(stored)[0]

    def get_many(self, post_ids: Iterable[int]) -> dict[int, Post]:
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return {}
        posts = self._decoded.decode(ids, _codec.multi_get(self._db, [_post_key(i) for i in ids]))
        return {post_id: post for post_id, post in zip(ids, posts, strict=True) if post is not None}

    @property
    def content_encoder(self) -> "ContentEncoder | None":
        """What embeds each create's content at apply time (None: this store keeps no content)."""
        return self._content_encoder

    def content_vectors(self, post_ids: Sequence[int]) -> list[np.ndarray | None]:
        """Each post's content vector (float32, read-only), None for a post without one (unknown, gone)."""
        if not len(post_ids):
            return []
        values = _codec.multi_get(self._db, [_content_key(int(post_id)) for post_id in post_ids])
        return [None if value is None else np.frombuffer(value, np.float16).astype(np.float32) for value in values]

    def is_deleted(self, post_id: int) -> bool:
        return self._db.get(_tombstone_key(post_id)) is not None

    def follower_count(self, author_id: int) -> int:
        stored = self._db.get(_FOLLOWERS + _codec.key_i64(author_id))
        return 0 if stored is None else max(0, _codec.unpack_i64(stored))

    def follower_counts(self, author_ids: Iterable[int]) -> dict[int, int]:
        """`follower_count` of every given author, in one multi-get."""
        ids = list(dict.fromkeys(author_ids))
        if not ids:
            return {}
        stored = _codec.multi_get(self._db, [_FOLLOWERS + _codec.key_i64(i) for i in ids])
        return {
            i: 0 if value is None else max(0, _codec.unpack_i64(value)) for i, value in zip(ids, stored, strict=True)
        }

    def authors_following(self, user_id: int, author_ids: Iterable[int]) -> set[int]:
        """The authors among `author_ids` who follow `user_id`, in one multi-get of follow edges."""
        ids = list(dict.fromkeys(author_ids))
        if not ids:
            return set()
        stored = _codec.multi_get(self._db, [_follow_key(user_id, author_id) for author_id in ids])
        return {author_id for author_id, value in zip(ids, stored, strict=True) if value is not None}

    def timeline(self, author_id: int, kind: TimelineKind) -> list[tuple[int, int]]:
        """(post_id, created_at_ms) of one of an author's timelines, newest first."""
        stored = self._db.get(_timeline_key(author_id, _KIND_CODES[kind]))
        return [(post_id, created) for created, post_id in _codec.unpack_pairs(stored or b"")]

    def count(self) -> int:
        stored = self._db.get(_COUNT_KEY)
        return 0 if stored is None else _codec.unpack_i64(stored)

    def __len__(self) -> int:
        return self.count()

    def iter_recent(self, since_ms: int) -> Iterator[Post]:
        """Live posts created at or after `since_ms`, oldest first (no RocksDB iterator is held between
        yields, so the store may be written or closed while a consumer is part-way through)."""
        start = _CREATED + _codec.key_i64(since_ms)
        stop = _prefix_end(_CREATED)
        while True:
            index_keys = self._scan_keys(start, stop, _SCAN_CHUNK)
            if not index_keys:
                return
            post_keys = [_POST + key[9:17] for key in index_keys]
            for stored in _codec.multi_get(self._db, post_keys):
                if stored is not None:
                    yield _decode_post(stored)[0]
            if len(index_keys) < _SCAN_CHUNK:
                return
            start = index_keys[-1] + b"\x00"

    def recent_posts(
        self,
        author_ids: Iterable[int],
        limit: int,
        exclude: Collection[int] = (),
        now_ms: int | None = None,
        max_age_ms: int | None = None,
        following: Collection[int] | None = None,
        *,
        viewer_id: int | None = None,
        video_only: bool = False,
    ) -> list[Post]:
        """Thunder's in-network candidates from `author_ids`, newest first, at most `limit`.

        Posts older than `max_age_ms` (default: the retention) before `now_ms` (default: the wall clock)
        are skipped, as are ids in `exclude` and, when `viewer_id` is given, reposts of the viewer's posts.
        The reply rule checks replied-to users against `following` (default: `author_ids`, as Thunder).
        `video_only` serves the video timelines instead of the original and secondary ones.
        """
        authors = list(dict.fromkeys(author_ids))
        if limit <= 0 or not authors:
            return []
        kinds = (_VIDEO,) if video_only else (_ORIGINAL, _SECONDARY)
        kind_suffixes = [bytes((kind,)) for kind in kinds]
        timelines = _codec.multi_get(
            self._db,
            [prefix + suffix for prefix in (_TIMELINE + _codec.key_i64(a) for a in authors) for suffix in kind_suffixes]
        )
        now = _codec.wall_clock_ms() if now_ms is None else now_ms
        walk = _TimelineMerge(
            timelines=[stored or b"" for stored in timelines],
            caps=[self._caps_by_kind[kinds[i % len(kinds)]] for i in range(len(timelines))],
            cutoff_ms=now - (self.retention_ms if max_age_ms is None else max_age_ms),
            exclude=exclude if isinstance(exclude, set | frozenset) else set(exclude),
        )
        reply_following = None if video_only else set(authors if following is None else following)
        selected: list[Post] = []
        while True:
            wanted = max(limit - len(selected), 0) + _FETCH_SLACK
            candidates = walk.pop_round(wanted)
            if not candidates:
                break
            posts = self._fetch([post_id for post_id, _ in candidates])
            parents: dict[int, Post] = {}
            if reply_following is not None:
                parents = self.get_many(
                    post.in_reply_to_post_id
                    for post in posts
                    if post is not None and post.in_reply_to_post_id is not None
                )
            for (_, timeline), post in zip(candidates, posts, strict=True):
                keep = (
                    post is not None
                    and not (viewer_id is not None and post.kind == "repost" and post.repost_of_user_id == viewer_id)
                    and (reply_following is None or _reply_allowed(post, parents, reply_following))
                )
                walk.settle(timeline, taken=keep)
                if keep and post is not None:
                    selected.append(post)
            if len(selected) >= limit:
                selected.sort(key=_newest_first)
                del selected[limit:]
                if not walk.has_newer_than(selected[-1]):
                    break
        selected.sort(key=_newest_first)
        return selected[:limit]

    def _fetch(self, post_ids: list[int]) -> list[Post | None]:
        if not post_ids:
            return []
        return self._decoded.decode(post_ids, _codec.multi_get(self._db, [_post_key(post_id) for post_id in post_ids]))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "PostStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _newest_first(post: Post) -> tuple[int, int]:
    return -post.created_at_ms, -post.post_id


class _TimelineMerge:
    """Walks several newest-first timelines in one global newest-first order, with a cap per timeline.

    Candidates are handed out in rounds so that their bodies can be fetched with one multi-get; a timeline
    stops handing out candidates once its taken plus undecided ones reach its cap, and resumes when
    `settle` reports that some were filtered out. Within a timeline candidates therefore go strictly in
    order, so each timeline contributes exactly its first `cap` posts that pass the filters; across
    timelines a round may run ahead in time, which is why the caller keeps going until no timeline holds
    anything newer than its `limit`-th post.
    """

    def __init__(self, timelines: list[bytes], caps: list[int], cutoff_ms: int, exclude: Collection[int]) -> None:
        self._caps = caps
        self._taken = [0] * len(timelines)
        self._undecided = [0] * len(timelines)
        self._parked: list[int] = []
        # Every timeline's eligible entries (young enough, not excluded) decoded at once with numpy, as heap
        # keys (-created_at_ms, -post_id, timeline) in one flat list, each timeline's a contiguous run in its
        # own (newest first) order: the walk then only moves an index per timeline. Decoding entry by entry
        # with struct while walking cost a Python loop turn per entry, excluded and too old ones included.
        # Timelines are newest first, so "younger than the cutoff" keeps a prefix of each, as a walk that
        # stops at the first older entry would.
        pairs = np.frombuffer(b"".join(timelines), dtype="<i8").reshape(-1, 2)  # [entries, (created, post_id)]
        lengths = np.fromiter((len(data) // _PAIR_SIZE for data in timelines), dtype=np.int64, count=len(timelines))
        owner = np.repeat(np.arange(len(timelines)), lengths)  # [entries] the timeline of each entry
        eligible = (pairs[:, 0] >= cutoff_ms) & (np.asarray(caps, dtype=np.int64)[owner] > 0)
        if exclude:
            excluded = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
            eligible &= ~np.isin(pairs[:, 1], excluded)
        kept = pairs[eligible]
        kept_owner = owner[eligible]
        self._entries: list[tuple[int, int, int]] = list(
            zip((-kept[:, 0]).tolist(), (-kept[:, 1]).tolist(), kept_owner.tolist(), strict=True)
        )
        bounds = np.searchsorted(kept_owner, np.arange(len(timelines) + 1)).tolist()
        self._next: list[int] = bounds[:-1]  # index in _entries of each timeline's next entry
        self._end: list[int] = bounds[1:]
        self._heap = [self._entries[self._next[t]] for t in range(len(timelines)) if self._next[t] < self._end[t]]
        heapq.heapify(self._heap)
        for entry in self._heap:
            self._next[entry[2]] += 1

    def _advance(self, timeline: int) -> None:
        """Push the timeline's next eligible entry, if any, onto the heap."""
        position = self._next[timeline]
        if position < self._end[timeline]:
            heapq.heappush(self._heap, self._entries[position])
            self._next[timeline] = position + 1

    def _unpark(self) -> None:
        """Resume the timelines that stopped at their cap but had some candidates filtered out since."""
        for timeline in self._parked:
            if self._taken[timeline] < self._caps[timeline]:
                self._advance(timeline)
        self._parked.clear()

    def pop_round(self, size: int) -> list[tuple[int, int]]:
        """Up to `size` (post_id, timeline) candidates, newest first, for the caller to decide on."""
        self._unpark()
        candidates: list[tuple[int, int]] = []
        while self._heap and len(candidates) < size:
            _, negative_post_id, timeline = heapq.heappop(self._heap)
            candidates.append((-negative_post_id, timeline))
            self._undecided[timeline] += 1
            if self._taken[timeline] + self._undecided[timeline] < self._caps[timeline]:
                self._advance(timeline)
            else:
                self._parked.append(timeline)
        return candidates

    def settle(self, timeline: int, *, taken: bool) -> None:
        self._undecided[timeline] -= 1
        if taken:
            self._taken[timeline] += 1

    def has_newer_than(self, post: Post) -> bool:
        """Whether any timeline may still yield a post newer than `post` (parked ones included)."""
        self._unpark()
        return bool(self._heap) and (self._heap[0][0], self._heap[0][1]) < _newest_first(post)


def _reply_allowed(post: Post, parents: Mapping[int, Post], following: Collection[int]) -> bool:
    """Thunder's reply rule: replies to an original are kept; a reply to a reply only when that reply
    answers the conversation root and the replied-to user is followed; replies to unknown posts never."""
    parent_id = post.in_reply_to_post_id
    if parent_id is None:
        return True
    parent = parents.get(parent_id)
    if parent is None:
        return False
    if parent.kind == "original":
        return True
    return (
        post.conversation_id is not None
        and parent.in_reply_to_post_id == post.conversation_id
        and post.in_reply_to_user_id in following
    )
