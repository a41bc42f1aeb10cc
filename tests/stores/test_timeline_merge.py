"""Thunder's timeline merge (stores.thunder.TimelineMerge) decodes every timeline at once with numpy;
it must hand out exactly what walking each timeline entry by entry with struct did. The reference below is
that walk, as it was before the numpy version."""

import heapq
import random
from collections.abc import Collection

import pytest

from stores import _codec
from stores.thunder import TimelineMerge


class EntryByEntryMerge:
    """The previous merge: each timeline decoded one entry at a time while walking it."""

    def __init__(self, timelines: list[bytes], caps: list[int], cutoff_ms: int, exclude: Collection[int]) -> None:
        self._timelines, self._caps, self._cutoff_ms, self._exclude = timelines, caps, cutoff_ms, exclude
        self._next = [0] * len(timelines)
        self._taken = [0] * len(timelines)
        self._undecided = [0] * len(timelines)
        self._parked: list[int] = []
        self._heap: list[tuple[int, int, int]] = []
        for timeline in range(len(timelines)):
            if caps[timeline] > 0:
                self._advance(timeline)

    def _advance(self, timeline: int) -> None:
        data, offset = self._timelines[timeline], self._next[timeline]
        while offset < len(data):
            created_at_ms, post_id = _codec.PAIR.unpack_from(data, offset)
            offset += _codec.PAIR.size
            if created_at_ms < self._cutoff_ms:
                offset = len(data)
                break
            if post_id not in self._exclude:
                self._next[timeline] = offset
                heapq.heappush(self._heap, (-created_at_ms, -post_id, timeline))
                return
        self._next[timeline] = offset

    def _unpark(self) -> None:
        for timeline in self._parked:
            if self._taken[timeline] < self._caps[timeline]:
                self._advance(timeline)
        self._parked.clear()

    def pop_round(self, size: int) -> list[tuple[int, int]]:
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

    def head(self) -> tuple[int, int] | None:
        self._unpark()
        return (self._heap[0][0], self._heap[0][1]) if self._heap else None


def random_timelines(rng: random.Random, count: int, now_ms: int) -> list[bytes]:
    """Newest-first packed (created_at_ms, post_id) timelines, as the store keeps them; some empty."""
    post_ids = rng.sample(range(1, 1_000_000), count * 12)
    timelines = []
    for timeline in range(count):
        entries = sorted(
            ((now_ms - rng.randrange(0, 3_000_000), post_ids[timeline * 12 + i]) for i in range(rng.randrange(0, 12))),
            reverse=True,
        )
        timelines.append(_codec.pack_pairs(entries))
    return timelines


@pytest.mark.parametrize("seed", range(40))
def test_the_numpy_merge_hands_out_what_the_entry_by_entry_merge_did(seed: int) -> None:
    rng = random.Random(seed)
    now_ms = 1_700_000_000_000
    timelines = random_timelines(rng, rng.randrange(0, 60), now_ms)
    caps = [rng.choice([0, 1, 2, 3, 10]) for _ in timelines]
    all_ids = [post_id for data in timelines for _, post_id in _codec.unpack_pairs(data)]
    exclude = set(rng.sample(all_ids, len(all_ids) // 4)) if all_ids and seed % 3 else set()
    cutoff_ms = now_ms - rng.choice([1_000_000, 2_000_000, 10_000_000])
    rejected = {post_id for post_id in all_ids if rng.random() < 0.3}  # what the caller's filters drop

    new = TimelineMerge(timelines, caps, cutoff_ms, exclude)
    old = EntryByEntryMerge(timelines, caps, cutoff_ms, exclude)
    handed_out = 0
    while True:
        size = rng.randrange(1, 8)
        got, expected = new.pop_round(size), old.pop_round(size)
        assert got == expected
        if not got:
            break
        handed_out += len(got)
        for post_id, timeline in got:
            new.settle(timeline, taken=post_id not in rejected)
            old.settle(timeline, taken=post_id not in rejected)
        new._unpark()
        assert (new._heap[0][:2] if new._heap else None) == old.head()
    eligible = [
        post_id
        for data, cap in zip(timelines, caps, strict=True)
        if cap > 0
        for created, post_id in _codec.unpack_pairs(data)
        if created >= cutoff_ms and post_id not in exclude
    ]
    assert (handed_out > 0) == bool(eligible)
