"""A candidate post as it moves through the pipeline.

Stages never change a candidate: it is frozen. Hydrators and scorers return `Updates`, values for the fields
they own, one per candidate in order, and the framework (streams.pipeline) checks them and writes them in
with `write_fields` once the stage (or, for concurrent hydrators, the whole group) has finished. So no stage
can drop, reorder or overwrite another stage's data, concurrent hydrators never see each other's
half-written state, and nothing is copied: a thousand candidates times a dozen stages per request made
copying the pipeline's main cost.

A candidate keeps its fields in its instance dict, and a field never written reads its default from the
class (as a dataclass without slots leaves them): building a candidate writes only the three or four fields
its source knows. With slots every one of the 27 fields had to be written per candidate, 4x the cost of a
source's batch, for reads about 10% slower (measured on 500 candidates: 0.55 ms vs 0.14 ms to build).
"""

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import repeat
from operator import setitem
from typing import Any, Literal

import numpy as np

from stores.records import Post

SourceName = Literal["thunder", "phoenix_retrieval", "popular"]

Updates = Mapping[str, Sequence[Any]]
"""What a hydrator or scorer returns: for some of the fields it owns, one value per candidate, in order."""


# eq=False: a candidate is one post's state in one request, written in place by the framework; identity is
# the only meaningful equality (and hashing by identity stays valid while its fields are written). No slots:
# see the module docstring.
@dataclass(frozen=True, eq=False)
class Candidate:
    post_id: int
    author_id: int
    source: SourceName
    retrieval_score: float | None = None

    # Candidate hydrators.
    in_network: bool | None = None
    core: Post | None = None  # the post itself; None when core hydration failed (post missing)
    original: Post | None = None  # for a repost: the reposted post, when it is still live
    quoted: Post | None = None  # for a quote: the quoted post, when it is still live
    author_follower_count: int | None = None
    subscription_author_id: int | None = None  # set when the shown content is subscriber-only
    deleted: bool | None = None  # post-selection visibility hydration; None = not known
    safety_label: str | None = None
    # The shown content's content vector (phoenix.content), None when the post store has none. The DPP
    # re-ranker reads it and falls back to plain scores without it.
    content_embedding: np.ndarray | None = None
    # Engagement counts of the post (streams.engagement_counts); None when unknown.
    view_count: int | None = None
    engagement_count: int | None = None
    favorite_count: int | None = None
    mutual_follow: bool | None = None  # the viewer and the author follow each other

    # Scorers.
    # The 19 action probabilities in topics.actions.ACTIONS order: a read-only row of the request's scores.
    phoenix_scores: np.ndarray | None = None
    # The model's own probabilities when a calibration changed them (phoenix.calibration); else None.
    raw_phoenix_scores: np.ndarray | None = None
    weighted_score: float | None = None
    diversity_multiplier: float | None = None
    oon_multiplier: float | None = None
    cold_start_lifted: bool | None = None  # the author cold-start scorer lifted this post
    dpp_outcome: str | None = None  # the DPP re-ranker's verdict: "selected", "dropped" or why it fell back
    score: float | None = None  # the final score the selector sorts by

    @property
    def is_repost(self) -> bool:
        return self.core is not None and self.core.repost_of_post_id is not None

    @property
    def content(self) -> Post | None:
        """The post whose content the user sees: the original for a repost, else the post itself."""
        if self.is_repost and self.original is not None:
            return self.original
        return self.core

    @property
    def created_at_ms(self) -> int | None:
        return self.core.created_at_ms if self.core is not None else None

    def related_post_ids(self) -> tuple[int, ...]:
        """Ids whose having been seen or served makes this candidate a repeat: the post, the reposted
        original, and the post replied to (a conversation renders its parent), as home-mixer does."""
        core = self.core
        if core is None:
            return (self.post_id,)
        ids = [self.post_id]
        if core.repost_of_post_id is not None:
            ids.append(core.repost_of_post_id)
        if core.in_reply_to_post_id is not None:
            ids.append(core.in_reply_to_post_id)
        return tuple(ids)

    def model_target(self) -> tuple[int, int]:
        """(post_id, author_id) the ranker scores: a repost is scored as its original post and author,
        because the user engages with the original's content."""
        if self.core is not None and self.core.repost_of_post_id is not None:
            original_author = self.core.repost_of_user_id
            if original_author is None and self.original is not None:
                original_author = self.original.author_id
            return self.core.repost_of_post_id, original_author if original_author is not None else self.author_id
        return self.post_id, self.author_id


_FIELDS: frozenset[str] = frozenset(f.name for f in fields(Candidate))


def new_candidates(
    source: SourceName,
    post_ids: Sequence[int],
    author_ids: Sequence[int],
    retrieval_scores: Sequence[float] | None = None,
) -> list[Candidate]:
    """`Candidate(post_id=..., author_id=..., source=..., retrieval_score=...)` for each post of a source's
    batch, built column by column into the instance dicts, bypassing the frozen __init__ (one
    `object.__setattr__` per field): the other fields read their class defaults until written."""
    if len(author_ids) != len(post_ids) or (retrieval_scores is not None and len(retrieval_scores) != len(post_ids)):
        raise ValueError("one author id (and retrieval score) per post id")
    candidates = list(map(object.__new__, repeat(Candidate, len(post_ids))))
    states = list(map(vars, candidates))
    deque(map(setitem, states, repeat("post_id"), post_ids), maxlen=0)
    deque(map(setitem, states, repeat("author_id"), author_ids), maxlen=0)
    deque(map(setitem, states, repeat("source"), repeat(source, len(states))), maxlen=0)
    if retrieval_scores is not None:
        deque(map(setitem, states, repeat("retrieval_score"), retrieval_scores), maxlen=0)
    return candidates


def write_fields(candidates: Sequence[Candidate], updates: Updates) -> None:
    """Write each field's values into the candidates, in order. The caller has checked the updates (known
    fields, one value per candidate); this is the framework's only way to change a candidate."""
    for name, values in updates.items():
        if name not in _FIELDS:
            raise KeyError(f"Candidate has no field {name!r}")
        deque(map(setitem, map(vars, candidates), repeat(name), values), maxlen=0)
