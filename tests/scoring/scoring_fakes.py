"""Builders for scorer tests."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from phoenix.actions import ACTION_INDEX, NUM_ACTIONS
from stores.records import Post, UserFeatures
from streams.candidate import Candidate
from streams.config import load_config
from streams.query import FeedQuery

NOW_MS = 1_700_000_000_000
CONFIG = load_config(env={})


def post(post_id: int, author_id: int, age_ms: int = 60_000, **fields: Any) -> Post:
    return Post(post_id=post_id, author_id=author_id, created_at_ms=NOW_MS - age_ms, **fields)


def candidate(post_id: int, author_id: int, core: Post | None = None, **fields: Any) -> Candidate:
    return Candidate(
        post_id=post_id, author_id=author_id, source="thunder", core=core or post(post_id, author_id), **fields
    )


def query(max_results: int = 10, **fields: Any) -> FeedQuery:
    return FeedQuery(
        user_id=1, request_id="r", max_results=max_results, now_ms=NOW_MS, user_features=UserFeatures(), **fields
    )


def probabilities(base: float = 0.0, **by_action: float) -> tuple[float, ...]:
    row = [base] * NUM_ACTIONS
    for name, value in by_action.items():
        row[ACTION_INDEX[name]] = value
    return tuple(row)


class TableRanker:
    """Returns the probabilities given per (post_id, author_id); records the calls."""

    version = "table-1"

    def __init__(self, table: dict[tuple[int, int], Sequence[float]], shape_error: bool = False) -> None:
        self.table = table
        self.shape_error = shape_error
        self.calls: list[tuple[int, list[tuple[int, int]], int]] = []

    def score(self, user_id, history, candidates, surface):
        self.calls.append((user_id, list(candidates), surface))
        rows = np.array([self.table[c] for c in candidates], dtype=np.float32).reshape(len(candidates), NUM_ACTIONS)
        return rows[:-1] if self.shape_error else rows

    def retrieve(self, user_id, history, k, exclude_authors=(), exclude_posts=()):
        return []
