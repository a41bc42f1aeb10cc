"""Plain records shared by the stores, the pipeline and the model.

They are what the stores return; the stores' own encodings on disk are private to each store.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

PostKind = Literal["original", "reply", "repost"]


@dataclass(frozen=True, slots=True)
class Post:
    """A live post as the post store holds it (fields named as in the `tweet-events` create record)."""

    post_id: int
    author_id: int
    created_at_ms: int
    text: str = ""
    in_reply_to_post_id: int | None = None
    in_reply_to_user_id: int | None = None
    repost_of_post_id: int | None = None
    repost_of_user_id: int | None = None
    quote_of_post_id: int | None = None
    conversation_id: int | None = None
    media: str = "none"  # "none" | "photo" | "video"
    video_duration_ms: int | None = None
    subscriber_only: bool = False
    safety_label: str | None = None

    @property
    def kind(self) -> PostKind:
        if self.repost_of_post_id is not None:
            return "repost"
        if self.in_reply_to_post_id is not None:
            return "reply"
        return "original"

    @property
    def is_video(self) -> bool:
        return self.media == "video"


@dataclass(frozen=True, slots=True)
class ActionEntry:
    """One post in a user's action sequence: every action the user took on it, merged.

    `action_mask` is the multi-hot over `topics.actions.ACTIONS` (bit i = ACTIONS[i]).
    `ts_ms` is the time of the latest action on the post.
    """

    post_id: int
    author_id: int
    action_mask: int
    surface: str
    ts_ms: int
    dwell_ms: int | None = None


@dataclass(frozen=True, slots=True)
class UserFeatures:
    """A user's social graph as the pipeline needs it."""

    following: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()
    muted: frozenset[int] = frozenset()
    muted_keywords: tuple[str, ...] = ()


def stack_vectors(vectors: Sequence[np.ndarray | None], dim: int) -> np.ndarray:
    """[N, dim] float32 of per-post content vectors, zero rows where a post has none (content unknown)."""
    out = np.zeros((len(vectors), dim), np.float32)
    for row, vector in enumerate(vectors):
        if vector is not None:
            if vector.shape != (dim,):
                raise ValueError(f"content vector of shape {vector.shape}, expected ({dim},)")
            out[row] = vector
    return out


@dataclass(frozen=True, slots=True)
class PostCounts:
    """How often a post was served (views) and engaged with, as counted from the impressions and
    engagement-events topics (stores.engagement_counts)."""

    views: int = 0
    engagements: int = 0  # positive engagement events (not the negatives, not the passive dwell signals)
    favorites: int = 0
