"""Online metrics on a hand-made log whose numbers are worked out below."""

import math
from pathlib import Path

import numpy as np
import pytest

from foryou.world.config import preset
from foryou.world.metrics import OnlineMetrics, ServedPost, describe_feed, time_unit
from foryou.world.posts import POST_ID_BASE
from foryou.world.world import World

WINDOW = 60_000
WEIGHTS = {"favorite": 1.0, "dwell": 0.5, "report": -10.0, "reply": 2.0}


@pytest.fixture
def metrics() -> OnlineMetrics:
    m = OnlineMetrics(window_ms=WINDOW, weights=WEIGHTS, origin_ms=1_000_000)
    t0 = 1_000_000
    # Policy a, window 0: 4 posts by 3 authors, 2 out of network, ages 60, 120, 180, 0 s.
    m.record_served("a", 7, t0, [
        ServedPost(101, 1, t0 - 60_000, True),
        ServedPost(102, 1, t0 - 120_000, False),
        ServedPost(103, 2, t0 - 180_000, False),
        ServedPost(104, 3, t0, True),
    ], latency_ms=10.0)
    m.record_engagement(7, 101, "favorite", t0 + 5)
    m.record_engagement(7, 101, "dwell", t0 + 6)
    m.record_engagement(7, 102, "report", t0 + 7)
    # Policy a, window 1: 2 posts by one author, both in network, ages 30 s each.
    t1 = t0 + WINDOW + 5
    m.record_served("a", 7, t1, [ServedPost(105, 4, t1 - 30_000, True), ServedPost(106, 4, t1 - 30_000, True)],
                    latency_ms=30.0)
    m.record_engagement_event({"v": 1, "user_id": 7, "post_id": 105, "author_id": 4, "action": "reply",
                               "surface": "home_for_you", "ts_ms": t1 + 9, "dwell_ms": None})
    # Policy b: one empty feed and one engagement on a post it never served.
    m.record_served("b", 8, t0, [])
    m.record_engagement(8, 999, "favorite", t0)
    return m


def test_window_numbers(metrics: OnlineMetrics) -> None:
    first, second = metrics.windows("a")
    assert first.window_start_ms == 1_000_000 and second.window_start_ms == 1_000_000 + WINDOW
    assert (first.requests, first.impressions, first.engagements, first.negatives) == (1, 4, 1, 1)
    assert first.engagements_per_impression == pytest.approx(0.25)
    assert first.value_per_impression == pytest.approx((1.0 + 0.5 - 10.0) / 4)
    assert first.negatives_per_impression == pytest.approx(0.25)
    assert first.author_diversity == pytest.approx(0.75)
    assert first.median_age_ms == pytest.approx(90_000)
    assert first.out_of_network_share == pytest.approx(0.5)
    assert first.latency_p50_ms == pytest.approx(10.0)
    assert second.engagements_per_impression == pytest.approx(0.5)
    assert second.value_per_impression == pytest.approx(1.0)
    assert second.author_diversity == pytest.approx(0.5)
    assert second.out_of_network_share == 0.0


def test_totals(metrics: OnlineMetrics) -> None:
    total = metrics.total("a")
    assert (total.requests, total.impressions, total.engagements, total.negatives) == (2, 6, 2, 1)
    assert total.value == pytest.approx(-6.5)
    assert total.author_diversity == pytest.approx((0.75 + 0.5) / 2)
    assert total.median_age_ms == pytest.approx(45_000)  # ages 0, 30, 30, 60, 120, 180 s
    assert total.out_of_network_share == pytest.approx(2 / 6)
    assert total.latency_p50_ms == pytest.approx(20.0)
    empty = metrics.total("b")
    assert empty.requests == 1 and empty.impressions == 0
    assert math.isnan(empty.engagements_per_impression) and math.isnan(empty.author_diversity)
    assert metrics.unattributed == 1
    assert metrics.policies() == ["a", "b"]


def test_summary_table(metrics: OnlineMetrics) -> None:
    lines = metrics.summary().splitlines()
    assert lines[0].split()[:4] == ["policy", "requests", "impressions", "eng/imp"]
    row_a = next(line for line in lines if line.startswith("a ")).split()
    assert row_a[1:6] == ["2", "6", "0.3333", "-1.0833", "0.1667"]
    assert "unattributed engagements: 1" in lines[-1]
    assert len(metrics.summary(per_window=True).splitlines()) == len(lines) + 3  # 2 windows of a, 1 of b


def test_plot_writes_png(metrics: OnlineMetrics, tmp_path: Path) -> None:
    path = metrics.plot(tmp_path / "plots" / "metrics.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_plot_time_unit_suits_the_run() -> None:
    # A one-minute demo loop is plotted in seconds, not as 0.000-0.020 hours.
    assert time_unit(60_000) == ("seconds", 1000.0)
    assert time_unit(10 * 60_000) == ("minutes", 60_000.0)
    assert time_unit(3 * 3_600_000) == ("hours", 3_600_000.0)


def test_describe_feed_uses_the_follow_graph() -> None:
    world = World.generate(preset("tiny", seed=2))
    follows = world.population.follows
    user, author = int(follows.src[0]) + 1, int(follows.dst[0]) + 1
    now = int(follows.ts_ms[0]) + 1
    by_author = np.flatnonzero(world.posts.author == author - 1)
    others = np.flatnonzero(~np.isin(world.posts.author + 1, [author, user]))
    not_followed = [p for p in others[:50] if not world.is_following(np.array([user]),
                                                                     world.posts.author[[p]] + 1, now)[0]]
    feed = [POST_ID_BASE + int(by_author[0]), POST_ID_BASE + int(not_followed[0])]
    served = describe_feed(world, user, feed, now)
    assert [s.in_network for s in served] == [True, False]
    assert served[0].author_id == author
    assert served[1].created_at_ms == world.posts.created_ms[not_followed[0]]
    assert describe_feed(world, user, feed, now, followed=frozenset({served[1].author_id}))[1].in_network


def test_cold_start_exposure_counts_fresh_posts_of_small_authors() -> None:
    m = OnlineMetrics(window_ms=WINDOW, weights=WEIGHTS)
    now = 10 * 3_600_000
    m.record_served("p", 1, now, [
        ServedPost(1, 5, now - 3_600_000, True, small_author=True),  # fresh, small: counts
        ServedPost(2, 5, now - 3 * 3_600_000, True, small_author=True),  # older than 2 h
        ServedPost(3, 6, now - 60_000, False, small_author=False),  # a big author
        ServedPost(4, 7, now, False),
    ])
    assert m.total("p").cold_start_share == pytest.approx(1 / 4)
    assert "cold_start" in m.summary()


def test_small_authors_have_at_most_the_median_follower_count() -> None:
    from foryou.world.metrics import small_authors

    world = World.generate(preset("tiny", seed=2))
    followers = np.bincount(world.population.follows.dst, minlength=world.num_users)
    small = small_authors(world)
    assert small.shape == (world.num_users,) and small.any() and not small.all()
    assert followers[small].max() <= followers[~small].min()
