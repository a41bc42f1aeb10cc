"""The stage kinds of a candidate pipeline, each a tiny interface with a `name` and `enable(query)`.

Semantics (those of x-algorithm's candidate-pipeline, enforced by streams.pipeline):
- QueryHydrator: runs concurrently with the others; returns values for the query fields it owns.
- Source: runs concurrently with the others; results are concatenated in declaration order. It returns new
  candidates each time: the pipeline writes the hydrated and scored fields into them.
- CandidateHydrator: runs concurrently with the others of its group; returns `Updates`: for fields it owns,
  one value per candidate in the candidates' order (it cannot drop or reorder candidates, and values for a
  field it does not own, or of another count, are a contract violation). Writes happen after the group ends.
- Filter: runs in declaration order; splits candidates into kept and removed (with a reason each).
- Scorer: runs in declaration order; returns `Updates` for its own fields, like a candidate hydrator, written
  before the next scorer runs.
- Selector: orders the scored candidates and splits them into the selected top K and a ranked reserve.
- SideEffect: runs after the answer is produced, scheduled by the caller.
"""

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streams.candidate import Candidate, Updates
from streams.query import FeedQuery


class Stage(ABC):
    name: ClassVar[str]

    def enable(self, query: FeedQuery) -> bool:
        return True


class QueryHydrator(Stage):
    fields: ClassVar[frozenset[str]]

    @abstractmethod
    async def hydrate(self, query: FeedQuery) -> Mapping[str, Any]:
        """New values for (a subset of) `fields`."""


class Source(Stage):
    @abstractmethod
    async def fetch(self, query: FeedQuery) -> list[Candidate]: ...


class CandidateHydrator(Stage):
    fields: ClassVar[frozenset[str]]

    @abstractmethod
    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        """Values of (some of) `fields`, one per candidate, in order."""


@dataclass(slots=True)
class FilterResult:
    kept: list[Candidate]
    removed: list[Candidate]
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> number of removed candidates


class Filter(Stage):
    @abstractmethod
    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult: ...


def split(candidates: Sequence[Candidate], reasons: Sequence[str | None]) -> FilterResult:
    """Split candidates by their removal reasons (one per candidate, None to keep)."""
    if reasons.count(None) == len(reasons):  # the common case: nothing to remove
        return FilterResult(kept=list(candidates), removed=[])
    result = FilterResult(kept=[], removed=[])
    for candidate, reason in zip(candidates, reasons, strict=True):
        if reason is None:
            result.kept.append(candidate)
        else:
            result.removed.append(candidate)
            result.reasons[reason] += 1
    return result


def partition(candidates: Sequence[Candidate], removal_reason: Callable[[Candidate], str | None]) -> FilterResult:
    """Split candidates by a per-candidate judgement: a reason to remove, or None to keep."""
    return split(candidates, [removal_reason(candidate) for candidate in candidates])


class CandidateFilter(Filter):
    """A filter that judges each candidate on its own."""

    @abstractmethod
    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        """Why the candidate goes, or None to keep it."""

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        removal_reason = self.removal_reason
        return split(candidates, [removal_reason(query, candidate) for candidate in candidates])


class Scorer(Stage):
    fields: ClassVar[frozenset[str]]

    @abstractmethod
    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        """Values of (some of) `fields`, one per candidate, in order."""


@dataclass(slots=True)
class Selection:
    selected: list[Candidate]  # best first, at most the requested size
    reserve: list[Candidate]  # the rest, best first: backfill when post-selection filters remove some


class Selector(Stage):
    @abstractmethod
    def select(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Selection: ...


class SideEffect(Stage):
    @abstractmethod
    async def run(self, query: FeedQuery, served: Sequence[Candidate]) -> None: ...
