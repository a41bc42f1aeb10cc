"""A candidate post as it moves through the pipeline.

Candidates are immutable: every stage returns new objects (`with_fields`), and the framework copies back
only the fields a hydrator or scorer declares as its own, so concurrent hydrators never see each other's
half-written state and no stage can overwrite another's data.
"""

from dataclasses import dataclass, fields
from typing import Any, Literal

from stores.records import Post

SourceName = Literal["thunder", "phoenix_retrieval"]


# Not slots: `with_fields` copies the instance dict, several times faster than dataclasses.replace, which
# matters with a thousand candidates going through a dozen stages per request.
@dataclass(frozen=True)
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

    # Scorers.
    phoenix_scores: tuple[float, ...] | None = None  # 19 probabilities in phoenix.actions.ACTIONS order
    weighted_score: float | None = None
    diversity_multiplier: float | None = None
    oon_multiplier: float | None = None
    score: float | None = None  # the final score the selector sorts by

    def with_fields(self, **values: Any) -> "Candidate":
        """A copy with these fields changed (like dataclasses.replace, without re-running __init__)."""
        unknown = values.keys() - _FIELD_NAMES
        if unknown:
            raise TypeError(f"Candidate has no fields {sorted(unknown)}")
        copy = object.__new__(Candidate)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(values)
        return copy

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
        ids = [self.post_id]
        if self.core is not None:
            if self.core.repost_of_post_id is not None:
                ids.append(self.core.repost_of_post_id)
            if self.core.in_reply_to_post_id is not None:
                ids.append(self.core.in_reply_to_post_id)
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


_FIELD_NAMES = frozenset(f.name for f in fields(Candidate))
