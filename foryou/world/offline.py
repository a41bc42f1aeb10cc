"""Offline artefacts of a simulation: the engagement log, the posts file and ranking metrics against the truth.

Posts file (`phoenix.posts` format, JSONL): every post of the world, {"post_id","author_id","text","media",
"created_at_ms"} plus "repost_of_post_id" for reposts (whose text and media are their original's).

Engagement log (JSONL, one line per impression, an impression without engagement has "actions": []):

    {"user_id": int, "post_id": int, "author_id": int, "ts_ms": int, "surface": str, "actions": [NAME, ...],
     "request_id": str, "post_created_at_ms": int}

(the `phoenix.log` format). `post_created_at_ms` is the served post's creation time (for a repost, the
repost's own: the ground truth's freshness is measured from it), written when the caller gives the world's
creation times (`created_ms`, e.g. `World.created_ms`; the history and the CLI do), else left out.

An engagement joins the impression of the same (user, post) that happened last at or before it (or, if it
precedes them all, the first one); engagements on posts never impressed are left out. Actions are listed
once each, in ACTIONS order.

Ranking metrics, per request group, against the ground truth's expected value v under given weights:
- pairwise accuracy: over pairs (i, j) of one group with v_i > v_j, the share with score_i > score_j (a tied
  score counts one half); pooled over all groups.
- NDCG@10: gains max(v, 0), linear, discount 1 / log2(rank + 2) (rank from 0, order by descending score);
  averaged over groups whose ideal DCG is positive.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from foryou.world.truth import GroundTruth
from foryou.world.wire import SURFACE_HOME_FOR_YOU
from foryou.world.world import World
from topics.actions import ACTION_INDEX

_EV_TIE = 1e-12


@dataclass(frozen=True)
class Impression:
    user_id: int
    post_id: int
    author_id: int
    ts_ms: int
    request_id: str
    surface: str = SURFACE_HOME_FOR_YOU

    @classmethod
    def from_wire(cls, value: Mapping[str, Any]) -> "Impression":
        """From an `impressions` topic value (served on the For You surface)."""
        return cls(value["user_id"], value["post_id"], value["author_id"], value["served_at_ms"],
                   value["request_id"])


def posts_records(world: World, post_ids: np.ndarray | None = None) -> list[Any]:
    """The world's posts (all, or the given ids) as `phoenix.posts.PostRecord`s."""
    from phoenix.posts import PostRecord

    ids = world.post_ids() if post_ids is None else np.asarray(post_ids)
    records = []
    for value in world.create_values(world.post_index(ids)):
        records.append(
            PostRecord(
                post_id=value["post_id"],
                text=value["text"],
                media=value["media"],
                author_id=value["author_id"],
                created_at_ms=value["created_at_ms"],
                repost_of_post_id=value["repost_of_post_id"],
            )
        )
    return records


def export_posts(world: World, path: str | Path) -> int:
    """Write the world's posts file (module docstring); returns the number of posts."""
    from phoenix.posts import write_posts

    return write_posts(path, posts_records(world))


def export_engagement_log(
    impressions: Iterable[Impression],
    engagements: Iterable[Mapping[str, Any]],
    path: str | Path,
    created_ms: Callable[[np.ndarray], np.ndarray] | None = None,
) -> int:
    """Write the engagement log (format above) and return the number of lines written.

    `created_ms` maps post ids to their creation times; without it the lines have no `post_created_at_ms`.
    """
    impressions = list(impressions)
    created: list[int | None] = [None] * len(impressions)
    if created_ms is not None and impressions:
        post_ids = np.fromiter((imp.post_id for imp in impressions), dtype=np.int64, count=len(impressions))
        created = [int(ms) for ms in created_ms(post_ids)]
    by_pair: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for line, impression in enumerate(impressions):
        by_pair[(impression.user_id, impression.post_id)].append((impression.ts_ms, line))
    for entries in by_pair.values():
        entries.sort()
    actions: list[set[str]] = [set() for _ in impressions]
    for engagement in engagements:
        entries = by_pair.get((engagement["user_id"], engagement["post_id"]))
        if not entries:
            continue
        if engagement["action"] not in ACTION_INDEX:
            raise KeyError(f"unknown action {engagement['action']!r}")
        before = [line for ts, line in entries if ts <= engagement["ts_ms"]]
        actions[before[-1] if before else entries[0][1]].add(engagement["action"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for impression, names, post_created in zip(impressions, actions, created, strict=True):
            record = {
                "user_id": impression.user_id,
                "post_id": impression.post_id,
                "author_id": impression.author_id,
                "ts_ms": impression.ts_ms,
                "surface": impression.surface,
                "actions": sorted(names, key=ACTION_INDEX.__getitem__),
                "request_id": impression.request_id,
            }
            if post_created is not None:
                record["post_created_at_ms"] = post_created
            out.write(orjson.dumps(record) + b"\n")
    return len(impressions)


@dataclass(frozen=True)
class RankingMetrics:
    pairwise_accuracy: float
    ndcg_at_10: float
    groups: int  # request groups with at least one ordered pair
    pairs: int


def _ndcg(scores: np.ndarray, gains: np.ndarray, k: int) -> float | None:
    discounts = 1.0 / np.log2(np.arange(min(k, gains.size)) + 2.0)
    ideal = float(np.sort(gains)[::-1][: discounts.size] @ discounts)
    if ideal <= 0.0:
        return None
    ranked = gains[np.argsort(-scores, kind="stable")][: discounts.size]
    return float(ranked @ discounts) / ideal


def ground_truth_ranking_metrics(
    truth: GroundTruth,
    scores: np.ndarray,
    user_ids: np.ndarray,
    post_ids: np.ndarray,
    request_ids: Sequence[str] | np.ndarray,
    now_ms: np.ndarray | int,
    weights: Mapping[str, float] | np.ndarray | None = None,
) -> RankingMetrics:
    """Pairwise accuracy and NDCG@10 of `scores` against the ground-truth expected value (see above)."""
    scores = np.asarray(scores, dtype=np.float64)
    values = truth.expected_value(user_ids, post_ids, now_ms, weights)
    _, group = np.unique(np.asarray(request_ids), return_inverse=True)
    order = np.argsort(group, kind="stable")
    boundaries = np.flatnonzero(np.diff(group[order])) + 1
    correct, pairs, groups = 0.0, 0, 0
    ndcgs: list[float] = []
    for members in np.split(order, boundaries):
        s, v = scores[members], values[members]
        better = (v[:, None] - v[None, :]) > _EV_TIE
        if better.any():
            score_gap = (s[:, None] - s[None, :])[better]
            correct += float((score_gap > 0).sum() + 0.5 * (score_gap == 0).sum())
            pairs += int(better.sum())
            groups += 1
        ndcg = _ndcg(s, np.maximum(v, 0.0), 10)
        if ndcg is not None:
            ndcgs.append(ndcg)
    return RankingMetrics(
        pairwise_accuracy=correct / pairs if pairs else float("nan"),
        ndcg_at_10=float(np.mean(ndcgs)) if ndcgs else float("nan"),
        groups=groups,
        pairs=pairs,
    )
