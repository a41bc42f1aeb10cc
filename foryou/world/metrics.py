"""Online metrics of served feeds, per policy and per time window.

Feeds are recorded as served (`record_served`), engagements as they arrive (`record_engagement`); an
engagement counts for the policy and window of the latest feed that served the post to that user
(engagements on posts never served are counted in `unattributed`). Per policy and window:

- impressions: posts served (every post of every recorded feed);
- engagements per impression: events whose action is an explicit positive engagement (ENGAGEMENT_ACTIONS:
  all but the four negatives, dwell and dwell_time), divided by impressions;
- value per impression: Σ weights[action] over all engagement events (negatives weigh negatively, dwell
  and dwell_time count as their weights say), divided by impressions;
- negatives per impression: not_interested, block_author, mute_author and report events / impressions;
- author diversity: mean over feeds of distinct authors / posts in the feed (empty feeds left out);
- freshness: median age (served time - creation) of served posts;
- out-of-network share: served posts whose author the user does not follow / impressions;
- cold-start exposure: served posts at most 2 h old (COLD_START_AGE_MS, the author cold-start scorer's age)
  by a small author (at most the median follower count of the world's users) / impressions;
- latency: median and 95th percentile of the request latencies the caller records.
"""

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foryou.tables import Justify, render_table
from foryou.world.config import HOUR_MS
from foryou.world.truth import ENGAGEMENT_ACTIONS, weight_vector
from foryou.world.world import World
from topics.actions import ACTION_INDEX, NEGATIVE_ACTIONS

COLD_START_AGE_MS = 2 * HOUR_MS


@dataclass(frozen=True)
class ServedPost:
    post_id: int
    author_id: int
    created_at_ms: int
    in_network: bool
    small_author: bool = False  # at most the median follower count (cold-start exposure)


@functools.cache
def small_authors(world: World) -> np.ndarray:
    """[U] whether each user has at most the median number of followers in the generated graph."""
    followers = np.bincount(world.population.follows.dst, minlength=world.num_users)
    return followers <= np.median(followers)


def describe_feed(
    world: World, user_id: int, post_ids: Sequence[int], now_ms: int, followed: frozenset[int] = frozenset()
) -> list[ServedPost]:
    """ServedPost records for a feed, with in_network from the world's graph plus `followed` authors."""
    ids = np.asarray(post_ids, dtype=np.int64)
    index = world.post_index(ids, strict=False)
    known = index[index >= 0]
    authors = world.posts.author[known] + 1
    following = world.is_following(np.full(known.size, user_id), authors, now_ms)
    small = small_authors(world)[authors - 1]
    return [
        ServedPost(p, a, c, f or a in followed, s)
        for p, a, c, f, s in zip(
            ids[index >= 0].tolist(),
            authors.tolist(),
            world.posts.created_ms[known].tolist(),
            following.tolist(),
            small.tolist(),
            strict=True,
        )
    ]


@dataclass
class _Window:
    requests: int = 0
    impressions: int = 0
    engagements: int = 0
    negatives: int = 0
    value: float = 0.0
    diversity_sum: float = 0.0
    diversity_feeds: int = 0
    out_of_network: int = 0
    cold_start: int = 0
    ages_ms: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def merge(self, other: "_Window") -> None:
        for name in ("requests", "impressions", "engagements", "negatives", "value", "diversity_sum",
                     "diversity_feeds", "out_of_network", "cold_start"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ages_ms.extend(other.ages_ms)
        self.latencies_ms.extend(other.latencies_ms)


@dataclass(frozen=True)
class WindowStats:
    policy: str
    window_start_ms: int  # -1 for a total over all windows
    requests: int
    impressions: int
    engagements: int
    negatives: int
    value: float
    engagements_per_impression: float
    value_per_impression: float
    negatives_per_impression: float
    author_diversity: float
    median_age_ms: float
    out_of_network_share: float
    cold_start_share: float
    latency_p50_ms: float
    latency_p95_ms: float


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _stats(policy: str, start_ms: int, w: _Window) -> WindowStats:
    latencies = np.asarray(w.latencies_ms)
    return WindowStats(
        policy=policy,
        window_start_ms=start_ms,
        requests=w.requests,
        impressions=w.impressions,
        engagements=w.engagements,
        negatives=w.negatives,
        value=w.value,
        engagements_per_impression=_ratio(w.engagements, w.impressions),
        value_per_impression=_ratio(w.value, w.impressions),
        negatives_per_impression=_ratio(w.negatives, w.impressions),
        author_diversity=_ratio(w.diversity_sum, w.diversity_feeds),
        median_age_ms=float(np.median(w.ages_ms)) if w.ages_ms else math.nan,
        out_of_network_share=_ratio(w.out_of_network, w.impressions),
        cold_start_share=_ratio(w.cold_start, w.impressions),
        latency_p50_ms=float(np.percentile(latencies, 50)) if latencies.size else math.nan,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies.size else math.nan,
    )


# (column title, WindowStats field, format, scale)
_COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    ("requests", "requests", "d", 1.0),
    ("impressions", "impressions", "d", 1.0),
    ("eng/imp", "engagements_per_impression", ".4f", 1.0),
    ("value/imp", "value_per_impression", ".4f", 1.0),
    ("neg/imp", "negatives_per_impression", ".4f", 1.0),
    ("diversity", "author_diversity", ".3f", 1.0),
    ("age_p50_min", "median_age_ms", ".1f", 1 / 60_000),
    ("oon_share", "out_of_network_share", ".3f", 1.0),
    ("cold_start", "cold_start_share", ".4f", 1.0),
    ("lat_p50_ms", "latency_p50_ms", ".1f", 1.0),
    ("lat_p95_ms", "latency_p95_ms", ".1f", 1.0),
)


def _cell(value: Any, fmt: str, scale: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return format(value * scale if scale != 1.0 else value, fmt)


class OnlineMetrics:
    def __init__(
        self, window_ms: int = HOUR_MS, weights: Mapping[str, float] | np.ndarray | None = None,
        origin_ms: int = 0,
    ) -> None:
        self.window_ms = window_ms
        self.origin_ms = origin_ms
        self._weights = weight_vector(weights)
        self._windows: dict[str, dict[int, _Window]] = defaultdict(dict)
        self._served: dict[tuple[int, int], tuple[str, int]] = {}
        self.unattributed = 0

    def _window(self, policy: str, ts_ms: int) -> tuple[int, _Window]:
        key = (ts_ms - self.origin_ms) // self.window_ms
        return key, self._windows[policy].setdefault(key, _Window())

    def record_served(
        self, policy: str, user_id: int, served_at_ms: int, posts: Sequence[ServedPost],
        latency_ms: float | None = None,
    ) -> None:
        key, window = self._window(policy, served_at_ms)
        window.requests += 1
        window.impressions += len(posts)
        if posts:
            window.diversity_sum += len({p.author_id for p in posts}) / len(posts)
            window.diversity_feeds += 1
        window.out_of_network += sum(not p.in_network for p in posts)
        window.cold_start += sum(p.small_author and served_at_ms - p.created_at_ms <= COLD_START_AGE_MS for p in posts)
        window.ages_ms.extend(served_at_ms - p.created_at_ms for p in posts)
        if latency_ms is not None:
            window.latencies_ms.append(latency_ms)
        for p in posts:
            self._served[(user_id, p.post_id)] = (policy, key)

    def record_engagement(self, user_id: int, post_id: int, action: str, ts_ms: int) -> bool:
        """Count one engagement for the feed that served the post; False if it was never served."""
        served = self._served.get((user_id, post_id))
        if served is None:
            self.unattributed += 1
            return False
        policy, key = served
        window = self._windows[policy][key]
        window.engagements += action in ENGAGEMENT_ACTIONS
        window.negatives += action in NEGATIVE_ACTIONS
        window.value += float(self._weights[ACTION_INDEX[action]])
        return True

    def record_engagement_event(self, value: Mapping[str, Any]) -> bool:
        """`record_engagement` from an engagement-events wire value."""
        return self.record_engagement(value["user_id"], value["post_id"], value["action"], value["ts_ms"])

    def policies(self) -> list[str]:
        return sorted(self._windows)

    def windows(self, policy: str) -> list[WindowStats]:
        windows = self._windows.get(policy, {})
        return [
            _stats(policy, self.origin_ms + key * self.window_ms, windows[key]) for key in sorted(windows)
        ]

    def total(self, policy: str) -> WindowStats:
        merged = _Window()
        for window in self._windows.get(policy, {}).values():
            merged.merge(window)
        return _stats(policy, -1, merged)

    def summary(self, per_window: bool = False) -> str:
        """A text table: one row per policy (and per window when per_window)."""
        rows = []
        for policy in self.policies():
            if per_window:
                rows.extend((f"{policy} @{s.window_start_ms}", s) for s in self.windows(policy))
            rows.append((policy, self.total(policy)))
        columns: list[tuple[str, Justify]] = [("policy", "left"), *((title, "right") for title, *_ in _COLUMNS)]
        table = render_table(
            columns,
            ([name, *(_cell(getattr(stats, attr), fmt, scale) for _, attr, fmt, scale in _COLUMNS)]
             for name, stats in rows),
            rule=True,
        )
        if self.unattributed:
            table += f"\nunattributed engagements: {self.unattributed}"
        return table

    def plot(self, path: str | Path) -> Path:
        """PNG with one panel per metric over time, a line per policy. Each policy's time counts from its own
        first window (policies run one after another, each on its own rebased clock), in seconds, minutes or
        hours, whichever suits the longest run."""
        from matplotlib.figure import Figure  # a bare Figure renders with Agg, no display needed

        path = Path(path)
        panels = [c for c in _COLUMNS if c[0] not in ("requests", "impressions")]
        figure = Figure(figsize=(20, 7), layout="constrained")
        axes = figure.subplots(2, 5).ravel()
        starts = {p: min((s.window_start_ms for s in self.windows(p)), default=0) for p in self.policies()}
        span_ms = max((s.window_start_ms - starts[p] + self.window_ms for p in starts for s in self.windows(p)),
                      default=0)
        unit, unit_ms = time_unit(span_ms)
        for ax, (title, attr, _, scale) in zip(axes, panels, strict=False):
            for policy in self.policies():
                stats = self.windows(policy)
                times = [(s.window_start_ms - starts[policy]) / unit_ms for s in stats]
                ax.plot(times, [getattr(s, attr) * scale for s in stats], marker=".", label=policy)
            ax.set_title(title)
            ax.set_xlabel(f"{unit} since the policy's first window")
        for ax in axes[len(panels) :]:
            ax.axis("off")
        if self.policies():
            axes[0].legend()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=80)
        return path


def time_unit(span_ms: float) -> tuple[str, float]:
    """The plot's time unit for a run of `span_ms`: seconds up to 2 minutes, minutes up to 2 hours, else hours."""
    if span_ms <= 120_000:
        return "seconds", 1000.0
    if span_ms <= 2 * HOUR_MS:
        return "minutes", 60_000.0
    return "hours", float(HOUR_MS)
