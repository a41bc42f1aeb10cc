"""MutedKeyword: drops posts whose text contains one of the user's muted keywords.

Matching is case-insensitive (Unicode case folding) and on word boundaries: a keyword matches where it is
neither preceded nor followed by a word character, so "art" mutes "the art desk" and "Art!" but not
"party"; "#launch" mutes "#LAUNCH" but not a bare "launch", while "launch" also mutes "#launch". A keyword of
several words matches them separated by any whitespace. The texts checked are the post's, the reposted
original's and the quoted post's. When the user's features could not be read, every candidate is dropped
(fail closed: muted content must not leak because a store read failed).
"""

import functools
import re
from collections.abc import Sequence

from streams.candidate import Candidate
from streams.query import FeedQuery
from streams.stages import Filter, FilterResult, partition

UNAVAILABLE = "user_features_unavailable"


@functools.lru_cache(maxsize=1024)
def keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled pattern for a user's keyword list, matched against case-folded text."""
    alternatives = []
    for keyword in keywords:
        words = keyword.casefold().split()
        if words:
            alternatives.append(r"\s+".join(re.escape(word) for word in words))
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def texts_of(candidate: Candidate) -> list[str]:
    return [post.text for post in (candidate.core, candidate.original, candidate.quoted) if post and post.text]


class MutedKeywordFilter(Filter):
    name = "MutedKeyword"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        if query.user_features is None:
            return partition(candidates, lambda _: UNAVAILABLE)
        pattern = keyword_pattern(tuple(query.user_features.muted_keywords))
        if pattern is None:
            return partition(candidates, lambda _: None)

        def reason(candidate: Candidate) -> str | None:
            muted = any(pattern.search(text.casefold()) for text in texts_of(candidate))
            return "muted_keyword" if muted else None

        return partition(candidates, reason)
