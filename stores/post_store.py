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

Each job has its own module: the RocksDB layout, codecs, write batch and decoded-post cache in
stores.post_layout, applying events in stores.post_apply, trimming in stores.post_trim and the in-network
query in stores.thunder; this class holds the database, the settings and the lock, and reads. Every `apply`
is one WriteBatch holding the events' effects and the consumed offsets, so a crash never separates the two.

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
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import numpy as np
from rocksdict import Rdict

from stores import _codec, post_trim
from stores.post_apply import ContentEncoder, EventApplier
from stores.post_layout import (
    COUNT_KEY,
    CREATED,
    FOLLOWERS,
    KIND_CODES,
    OFFSET,
    ORIGINAL,
    POST,
    SCAN_CHUNK,
    SECONDARY,
    VIDEO,
    Batch,
    DecodedPosts,
    TimelineKind,
    content_key,
    decode_post,
    follow_key,
    post_key,
    prefix_end,
    rocksdb_options,
    scan_keys,
    timeline_key,
    tombstone_key,
)
from stores.records import Post
from stores.thunder import ThunderQuery

__all__ = ["Applied", "ContentEncoder", "PostStore", "TimelineKind"]


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
        caps_by_kind = {
            ORIGINAL: max_original_per_author,
            SECONDARY: max_secondary_per_author,
            VIDEO: max_video_per_author,
        }
        self._db = Rdict(path, rocksdb_options(block_cache_bytes, row_cache_bytes))
        self._decoded = DecodedPosts(decoded_posts)
        self._write_lock = threading.Lock()
        self._applier = EventApplier(retention_ms, max_future_ms, timeline_cap, content_encoder)
        self._thunder = ThunderQuery(self._db, self._decoded, caps_by_kind, retention_ms)

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
        content = self._applier.embed_creates(events)
        with self._write_lock:
            batch = Batch(self._db)
            self._applier.apply_events(batch, events, now, content)
            for partition, offset in (offsets or {}).items():
                batch.put(OFFSET + _codec.key_i64(partition), _codec.pack_i64(offset))
            batch.commit()
        return Applied(added=batch.added, removed=batch.removed, refused_deletes=batch.refused_deletes)

    def trim(self, now_ms: int) -> list[int]:
        """Drop posts older than the retention (and their timeline entries); forget old tombstones.

        Returns the ids of the posts dropped (the worker removes them from the retrieval index too); see
        stores.post_trim.
        """
        return post_trim.trim(self._db, self._write_lock, now_ms, self.retention_ms, self.tombstone_margin_ms)

    # ------------------------------------------------------------------------------------------------ reads


    # ----------------------------------------------------------------------------------------------- writes

    def offsets(self) -> dict[int, int]:
        """Partition -> next offset to read, as recorded by the last applied batches."""
        keys = scan_keys(self._db, OFFSET, prefix_end(OFFSET), 1 << 20)
        values = _codec.multi_get(self._db, keys)
        return {
            _codec.read_key_i64(key, 1): _codec.unpack_i64(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    def get(self, post_id: int) -> Post | None:
        stored = self._db.get(post_key(post_id))
        return None if stored is None else decode_post(stored)[0]

    def get_many(self, post_ids: Iterable[int]) -> dict[int, Post]:
        ids = list(dict.fromkeys(post_ids))
        if not ids:
            return {}
        posts = self._decoded.decode(ids, _codec.multi_get(self._db, [post_key(i) for i in ids]))
        return {post_id: post for post_id, post in zip(ids, posts, strict=True) if post is not None}

    @property
    def content_encoder(self) -> "ContentEncoder | None":
        """What embeds each create's content at apply time (None: this store keeps no content)."""
        return self._applier.content_encoder

    def content_vectors(self, post_ids: Sequence[int]) -> list[np.ndarray | None]:
        """Each post's content vector (float32, read-only), None for a post without one (unknown, gone)."""
        if not len(post_ids):
            return []
        values = _codec.multi_get(self._db, [content_key(int(post_id)) for post_id in post_ids])
        stored = [value for value in values if value is not None]
        if not stored:
            return [None] * len(values)
        if any(len(value) != len(stored[0]) for value in stored):  # vectors of other sizes: each on its own
            return [None if value is None else _read_only(np.frombuffer(value, np.float16).astype(np.float32))
                    for value in values]
        # One conversion for all, handed out as row views: two numpy calls per post cost ~1.5 ms per request.
        rows = iter(_read_only(np.frombuffer(b"".join(stored), np.float16).astype(np.float32)).reshape(len(stored), -1))
        return [None if value is None else next(rows) for value in values]

    def is_deleted(self, post_id: int) -> bool:
        return self._db.get(tombstone_key(post_id)) is not None

    def follower_count(self, author_id: int) -> int:
        stored = self._db.get(FOLLOWERS + _codec.key_i64(author_id))
        return 0 if stored is None else max(0, _codec.unpack_i64(stored))

    def follower_counts(self, author_ids: Iterable[int]) -> dict[int, int]:
        """`follower_count` of every given author, in one multi-get."""
        ids = list(dict.fromkeys(author_ids))
        if not ids:
            return {}
        stored = _codec.multi_get(self._db, [FOLLOWERS + _codec.key_i64(i) for i in ids])
        return {
            i: 0 if value is None else max(0, _codec.unpack_i64(value)) for i, value in zip(ids, stored, strict=True)
        }

    def authors_following(self, user_id: int, author_ids: Iterable[int]) -> set[int]:
        """The authors among `author_ids` who follow `user_id`, in one multi-get of follow edges."""
        ids = list(dict.fromkeys(author_ids))
        if not ids:
            return set()
        stored = _codec.multi_get(self._db, [follow_key(user_id, author_id) for author_id in ids])
        return {author_id for author_id, value in zip(ids, stored, strict=True) if value is not None}

    def timeline(self, author_id: int, kind: TimelineKind) -> list[tuple[int, int]]:
        """(post_id, created_at_ms) of one of an author's timelines, newest first."""
        stored = self._db.get(timeline_key(author_id, KIND_CODES[kind]))
        return [(post_id, created) for created, post_id in _codec.unpack_pairs(stored or b"")]

    def count(self) -> int:
        stored = self._db.get(COUNT_KEY)
        return 0 if stored is None else _codec.unpack_i64(stored)

    def __len__(self) -> int:
        return self.count()

    def iter_recent(self, since_ms: int) -> Iterator[Post]:
        """Live posts created at or after `since_ms`, oldest first (no RocksDB iterator is held between
        yields, so the store may be written or closed while a consumer is part-way through)."""
        start = CREATED + _codec.key_i64(since_ms)
        stop = prefix_end(CREATED)
        while True:
            index_keys = scan_keys(self._db, start, stop, SCAN_CHUNK)
            if not index_keys:
                return
            post_keys = [POST + key[9:17] for key in index_keys]
            for stored in _codec.multi_get(self._db, post_keys):
                if stored is not None:
                    yield decode_post(stored)[0]
            if len(index_keys) < SCAN_CHUNK:
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
        """Thunder's in-network candidates from `author_ids`, newest first, at most `limit`: see
        `stores.thunder.ThunderQuery.recent_posts`."""
        return self._thunder.recent_posts(
            author_ids, limit, exclude, now_ms, max_age_ms, following, viewer_id=viewer_id, video_only=video_only
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "PostStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
