"""Applying tweet events to the post store: creates, author-checked deletes with tombstones, follower deltas.

Semantics follow the facts of X's `thunder` in-memory post store (see stores.post_store): a create goes to
its author's original or secondary timeline (and the video one when video-eligible); a timeline pushed past
`timeline_cap` drops its oldest posts from the store altogether; deletes leave a tombstone on the store's own
clock; only the author deletes a post. Everything one `apply` does goes through one `Batch` (stores.post_layout).
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from stores import _codec
from stores.post_layout import (
    FOLLOWERS,
    ORIGINAL,
    PAIR_SIZE,
    SECONDARY,
    TIMELINE,
    VIDEO,
    Batch,
    content_key,
    created_key,
    decode_post,
    encode_index_value,
    encode_post,
    follow_key,
    mask_kinds,
    post_key,
    timeline_key,
    tombstone_author,
    tombstone_key,
    tombstone_time_key,
)
from stores.records import Post

ContentEncoder = Callable[[Sequence[str], Sequence[str]], np.ndarray]  # (texts, media kinds) -> [N, E]


def post_from_event(event: Mapping[str, Any]) -> Post:
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



def keys_read_by(event: Mapping[str, Any]) -> Iterator[bytes]:
    """The keys applying `event` reads in the common case (evictions read a few more)."""
    event_type = event.get("type")
    if event_type == "create":
        yield tombstone_key(event["post_id"])
        yield post_key(event["post_id"])
        author = TIMELINE + _codec.key_i64(event["author_id"])
        is_repost = event.get("repost_of_post_id") is not None
        if is_repost or event.get("in_reply_to_post_id") is not None:
            yield author + bytes((SECONDARY,))
        else:
            yield author + bytes((ORIGINAL,))
        if is_repost or event.get("media") == "video":
            yield author + bytes((VIDEO,))
        if is_repost:
            yield post_key(event["repost_of_post_id"])
            yield content_key(event["repost_of_post_id"])
    elif event_type == "delete":
        yield tombstone_key(event["post_id"])
        yield post_key(event["post_id"])
    elif event_type == "follower_delta":
        yield FOLLOWERS + _codec.key_i64(event["author_id"])


class EventApplier:
    """Applies create, delete and follower_delta events to a `Batch` under the store's rules."""

    def __init__(
        self, retention_ms: int, max_future_ms: int, timeline_cap: int, content_encoder: ContentEncoder | None
    ) -> None:
        self.retention_ms = retention_ms
        self.max_future_ms = max_future_ms
        self.timeline_cap = timeline_cap
        self.content_encoder = content_encoder

    def apply_events(
        self, batch: Batch, events: Sequence[Mapping[str, Any]], now_ms: int, content: Mapping[int, bytes]
    ) -> None:
        """Apply `events` in order to `batch` (which the caller commits); `content` is `embed_creates(events)`,
        computed by the caller outside its write lock. An event of unknown type or shape raises (ValueError,
        KeyError, TypeError)."""
        batch.prefetch(key for event in events for key in keys_read_by(event))
        for event in events:
            event_type = event.get("type")
            if event_type == "create":
                self._apply_create(batch, event, now_ms, content.get(event["post_id"]))
            elif event_type == "delete":
                self._apply_delete(batch, event, now_ms)
            elif event_type == "follower_delta":
                self._apply_follower_delta(batch, event)
            else:
                raise ValueError(f"post store: unknown event type {event_type!r}")

    def embed_creates(self, events: Sequence[Mapping[str, Any]]) -> dict[int, bytes]:
        """Every create's own content vector (float16 bytes), embedded in one call; empty without an encoder."""
        if self.content_encoder is None:
            return {}
        creates = [event for event in events if event.get("type") == "create"]
        if not creates:
            return {}
        vectors = self.content_encoder(
            [event.get("text") or "" for event in creates], [event.get("media") or "none" for event in creates]
        )
        half = np.asarray(vectors, np.float16)
        return {event["post_id"]: row.tobytes() for event, row in zip(creates, half, strict=True)}

    @staticmethod
    def _apply_follower_delta(batch: Batch, event: Mapping[str, Any]) -> None:
        """Add the delta to the author's follower count. A delta naming its follower also records (+1) or
        removes (-1) the follow edge, for the mutual-follow check (`authors_following`). Deltas written before
        edges existed carry no follower."""
        key = FOLLOWERS + _codec.key_i64(event["author_id"])
        stored = batch.get(key)
        current = _codec.unpack_i64(stored) if stored is not None else 0
        batch.put(key, _codec.pack_i64(current + int(event["delta"])))
        follower = event.get("follower_id")
        if follower is None:
            return
        key = follow_key(event["author_id"], int(follower))
        if int(event["delta"]) > 0:
            batch.put(key, b"")
        else:
            batch.delete(key)

    def _apply_create(self, batch: Batch, event: Mapping[str, Any], now_ms: int, content: bytes | None = None) -> None:
        post_id = event["post_id"]
        created_at_ms = event["created_at_ms"]
        if created_at_ms < now_ms - self.retention_ms or created_at_ms > now_ms + self.max_future_ms:
            return
        key = post_key(post_id)
        tombstone = batch.get(tombstone_key(post_id))
        if tombstone is not None and tombstone_author(tombstone) in (None, event["author_id"]):
            return  # deleted by its author (or by a delete from before tombstones named their author)
        if batch.get(key) is not None:
            return
        post = post_from_event(event)
        primary = ORIGINAL if post.kind == "original" else SECONDARY
        mask = 1 << primary
        if self._video_eligible(batch, post):
            mask |= 1 << VIDEO
        batch.put(key, encode_post(post, mask))
        batch.put(created_key(created_at_ms, post_id), encode_index_value(post.author_id, mask))
        if content is not None:
            original = batch.get(content_key(post.repost_of_post_id)) if post.repost_of_post_id is not None else None
            batch.put(content_key(post_id), original if original is not None else content)
        batch.count_delta += 1
        batch.added[post_id] = post.author_id
        for kind in mask_kinds(mask):
            if batch.get(key) is None:
                return  # the cap pushed the new post itself out of its primary timeline
            evicted = self._timeline_insert(batch, post.author_id, kind, created_at_ms, post_id)
            if kind != VIDEO:
                for _, evicted_id in evicted:
                    self._drop_post(batch, evicted_id)

    def _video_eligible(self, batch: Batch, post: Post) -> bool:
        if post.kind == "reply":
            return False
        if post.is_video:
            return True
        if post.kind == "repost" and post.repost_of_post_id is not None:
            stored = batch.get(post_key(post.repost_of_post_id))
            if stored is not None:
                source, _ = decode_post(stored)
                return source.kind != "reply" and source.is_video
        return False

    def _apply_delete(self, batch: Batch, event: Mapping[str, Any], now_ms: int) -> None:
        """Only a post's author deletes it. A delete that overtakes its create leaves a tombstone naming the
        deleting author, which holds only against a create by that same author, so a forged early delete
        cannot suppress someone else's post."""
        post_id, author_id = event["post_id"], event["author_id"]
        stored = batch.get(post_key(post_id))
        if stored is not None and decode_post(stored)[0].author_id != author_id:
            batch.refused_deletes.append(post_id)
            return
        tombstone = tombstone_key(post_id)
        existing = batch.get(tombstone)
        if existing is not None and tombstone_author(existing) in (None, author_id):
            return  # already deleted: the first tombstone holds
        batch.put(tombstone, _codec.pack_i64(now_ms) + _codec.pack_i64(author_id))
        batch.put(tombstone_time_key(now_ms, post_id), b"")
        self._drop_post(batch, post_id)

    def _drop_post(self, batch: Batch, post_id: int) -> None:
        """Remove a post's body, time-index entry and timeline entries (no-op when absent)."""
        key = post_key(post_id)
        stored = batch.get(key)
        if stored is None:
            return
        post, mask = decode_post(stored)
        batch.delete(key)
        batch.delete(content_key(post_id))
        batch.delete(created_key(post.created_at_ms, post_id))
        batch.count_delta -= 1
        if batch.added.pop(post_id, None) is None:
            batch.removed.append(post_id)
        for kind in mask_kinds(mask):
            self._timeline_remove(batch, post.author_id, kind, post_id)

    def _timeline_insert(
        self, batch: Batch, author_id: int, kind: int, created_at_ms: int, post_id: int
    ) -> list[tuple[int, int]]:
        """Insert an entry keeping newest-first order; return the entries pushed out by the cap."""
        key = timeline_key(author_id, kind)
        current = batch.get(key) or b""
        entry = (created_at_ms, post_id)
        if not current or entry > _codec.PAIR.unpack_from(current):
            updated = _codec.PAIR.pack(*entry) + current
        else:
            entries = _codec.unpack_pairs(current)
            entries.append(entry)
            entries.sort(reverse=True)
            updated = _codec.pack_pairs(entries)
        limit = self.timeline_cap * PAIR_SIZE
        evicted = _codec.unpack_pairs(updated[limit:])
        batch.put(key, updated[:limit])
        return evicted

    def _timeline_remove(self, batch: Batch, author_id: int, kind: int, post_id: int) -> None:
        key = timeline_key(author_id, kind)
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
