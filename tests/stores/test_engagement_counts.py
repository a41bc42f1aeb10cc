"""Engagement counts in a real RocksDB: deltas from the topics' records, atomic offsets, restart, forget."""

from pathlib import Path

from stores.engagement_counts import COUNTED_ACTIONS, EngagementCounts, count_deltas
from stores.records import PostCounts


def engagement(post_id: int, action: str) -> dict:
    return {"user_id": 1, "post_id": post_id, "author_id": 9, "action": action}


def test_deltas_count_views_positive_engagements_and_favorites():
    deltas = count_deltas(
        [{"post_id": 1}, {"post_id": 1}, {"post_id": 2}],
        [engagement(1, "favorite"), engagement(1, "reply"), engagement(1, "dwell"), engagement(2, "report"),
         engagement(2, "not_dwelled"), engagement(3, "video_open")],
    )
    assert deltas == {1: PostCounts(2, 2, 1), 2: PostCounts(1, 0, 0), 3: PostCounts(0, 1, 0)}
    assert "open_link" in COUNTED_ACTIONS and not {"report", "dwell_time", "not_dwelled"} & COUNTED_ACTIONS


def test_counts_accumulate_with_their_offsets_and_survive_a_restart(tmp_path: Path):
    path = str(tmp_path / "counts")
    counts = EngagementCounts(path)
    counts.apply({1: PostCounts(2, 1, 1)}, {("impressions", 0): 10})
    offsets = {("impressions", 0): 12, ("engagement-events", 3): 5}
    counts.apply({1: PostCounts(1, 0, 0), 2: PostCounts(0, 3, 0)}, offsets)
    assert counts.counts([1, 2, 7]) == {1: PostCounts(3, 1, 1), 2: PostCounts(0, 3, 0), 7: PostCounts()}
    counts.close()
    reopened = EngagementCounts(path)
    assert reopened.counts([1]) == {1: PostCounts(3, 1, 1)}
    assert reopened.offset("impressions", 0) == 12 and reopened.offset("engagement-events", 3) == 5
    assert reopened.offset("impressions", 1) is None
    reopened.forget([1])
    assert reopened.counts([1, 2]) == {1: PostCounts(), 2: PostCounts(0, 3, 0)}
    reopened.close()


def test_counts_read_through_the_row_cache_follow_later_applies(tmp_path: Path):
    counts = EngagementCounts(str(tmp_path / "counts"))
    counts.apply({1: PostCounts(2, 1, 1)}, {})
    counts._db.flush()  # table files: reads go through the row cache
    assert counts.counts([1, 2]) == {1: PostCounts(2, 1, 1), 2: PostCounts()}
    counts.apply({1: PostCounts(1, 0, 0), 2: PostCounts(0, 1, 0)}, {})
    counts._db.flush()
    assert counts.counts([1, 2]) == {1: PostCounts(3, 1, 1), 2: PostCounts(0, 1, 0)}
    counts.forget([1])
    counts._db.flush()
    assert counts.counts([1]) == {1: PostCounts()}
    counts.close()
