"""Thunder's in-network query over the post store: the followed authors' recent posts, newest first.

Semantics follow the facts of X's `thunder`: the query walks each followed author's timelines newest first,
skips excluded ids, drops reposts of the viewer's own posts and, for replies, keeps only replies to an
original post, or replies to a reply to the conversation root when the replied-to user is followed. At most
`max_original_per_author` originals and `max_secondary_per_author` secondary posts survive per author
(`max_video_per_author` in video mode); the survivors are ordered newest first and cut to `limit`.

The query merges the fetched timelines newest first with a heap (`TimelineMerge`), handing out candidates in
rounds so that post bodies (needed for the repost and reply filters) come in one multi-get per round, and
stops as soon as no timeline can still yield a post newer than the `limit`-th selected one: it touches about
`limit` bodies, not every entry of every followed timeline. `stores.bench` measures it
(bench/results/stores.json).
"""

import heapq
from collections.abc import Collection, Iterable, Mapping
from typing import Final

import numpy as np
from rocksdict import Rdict

from stores import _codec
from stores.post_layout import (
    ORIGINAL,
    PAIR_SIZE,
    SECONDARY,
    TIMELINE,
    VIDEO,
    DecodedPosts,
    read_posts,
)
from stores.records import Post

FETCH_SLACK: Final = 16  # extra candidates per round, for those the filters may drop


class ThunderQuery:
    """The in-network query over one store's RocksDB, with the store's caps per author and timeline kind."""

    def __init__(self, db: Rdict, decoded: DecodedPosts, caps_by_kind: Mapping[int, int], retention_ms: int) -> None:
        self._db = db
        self._decoded = decoded
        self._caps_by_kind = caps_by_kind
        self.retention_ms = retention_ms

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
        kinds = (VIDEO,) if video_only else (ORIGINAL, SECONDARY)
        kind_suffixes = [bytes((kind,)) for kind in kinds]
        timelines = _codec.multi_get(
            self._db,
            [prefix + suffix for prefix in (TIMELINE + _codec.key_i64(a) for a in authors) for suffix in kind_suffixes]
        )
        now = _codec.wall_clock_ms() if now_ms is None else now_ms
        walk = TimelineMerge(
            timelines=[stored or b"" for stored in timelines],
            caps=[self._caps_by_kind[kinds[i % len(kinds)]] for i in range(len(timelines))],
            cutoff_ms=now - (self.retention_ms if max_age_ms is None else max_age_ms),
            exclude=exclude if isinstance(exclude, set | frozenset) else set(exclude),
        )
        reply_following = None if video_only else set(authors if following is None else following)
        selected: list[Post] = []
        while True:
            wanted = max(limit - len(selected), 0) + FETCH_SLACK
            candidates = walk.pop_round(wanted)
            if not candidates:
                break
            posts = read_posts(self._db, self._decoded, [post_id for post_id, _ in candidates])
            parents: dict[int, Post] = {}
            if reply_following is not None:
                parent_ids = list(
                    dict.fromkeys(
                        post.in_reply_to_post_id
                        for post in posts
                        if post is not None and post.in_reply_to_post_id is not None
                    )
                )
                parents = {
                    parent.post_id: parent
                    for parent in read_posts(self._db, self._decoded, parent_ids)
                    if parent is not None
                }
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


def _newest_first(post: Post) -> tuple[int, int]:
    return -post.created_at_ms, -post.post_id


class TimelineMerge:
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
        lengths = np.fromiter((len(data) // PAIR_SIZE for data in timelines), dtype=np.int64, count=len(timelines))
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
