"""Builders for scorer tests."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from stores.records import Post, UserFeatures
from streams.candidate import Candidate, write_fields
from streams.config import load_config
from streams.pipeline import check_updates
from streams.query import FeedQuery
from streams.stages import Scorer
from topics.actions import ACTION_INDEX, NUM_ACTIONS, NUM_PHOENIX_ACTIONS

NOW_MS = 1_700_000_000_000
CONFIG = load_config(env={"FORYOU_PRESET": "seed-2026-01"})  # the values these tests were written for


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


def scored(scorer: Scorer, q: FeedQuery, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Copies of the candidates with the scorer's values written in, checked and written as the framework
    does (the given candidates are left as they are)."""
    copies = [replace(c) for c in candidates]
    updates = asyncio.run(scorer.score(q, copies))
    write_fields(copies, check_updates(scorer.name, scorer.fields, len(copies), updates))
    return copies


def probabilities(base: float = 0.0, **by_action: float) -> np.ndarray:
    # A model's row: the 19 heads, widened to every action (a checkpoint with the optional heads) when an
    # optional head is given.
    optional = any(ACTION_INDEX[name] >= NUM_PHOENIX_ACTIONS for name in by_action)
    row = np.full(NUM_ACTIONS if optional else NUM_PHOENIX_ACTIONS, base, dtype=np.float64)
    for name, value in by_action.items():
        row[ACTION_INDEX[name]] = value
    return row


class TableRanker:
    """Returns the probabilities given per (post_id, author_id); records the calls."""

    version = "table-1"

    def __init__(self, table: dict[tuple[int, int], Sequence[float]], shape_error: bool = False) -> None:
        self.table = table
        self.shape_error = shape_error
        self.calls: list[tuple[int, list[tuple[int, int]], int]] = []
        self.times: list[tuple[list[int | None] | None, int | None]] = []  # (created_at_ms, now_ms) per call
        self.content: list[np.ndarray | None] = []  # the content matrix of each call
        self.served: list[frozenset[int]] = []  # the served ids of each call

    def score(
        self, user_id, history, candidates, surface, created_at_ms=None, now_ms=None, content=None, served_ids=()
    ):
        self.calls.append((user_id, list(candidates), surface))
        self.times.append((None if created_at_ms is None else list(created_at_ms), now_ms))
        self.content.append(content)
        self.served.append(frozenset(served_ids))
        rows = np.array([self.table[c] for c in candidates], dtype=np.float32)
        rows = rows.reshape(len(candidates), -1)
        return rows[:-1] if self.shape_error else rows

    def retrieve(self, user_id, history, k, exclude_authors=(), exclude_posts=()):
        return []
