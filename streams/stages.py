"""The stage kinds of a candidate pipeline, each a tiny interface with a `name` and `enable(query)`.

Semantics (those of x-algorithm's candidate-pipeline, enforced by streams.pipeline):
- QueryHydrator: runs concurrently with the others; returns values for the query fields it owns.
- Source: runs concurrently with the others; results are concatenated in declaration order.
- CandidateHydrator: runs concurrently with the others of its group; returns one candidate per input, same
  order, and only the fields it owns are taken from its output.
- Filter: runs in declaration order; splits candidates into kept and removed (with a reason each).
- Scorer: runs in declaration order; same order and count; only its own fields are taken.
- Selector: orders the scored candidates and splits them into the selected top K and a ranked reserve.
- SideEffect: runs after the answer is produced, scheduled by the caller.
"""

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streams.candidate import Candidate
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
    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates, same order and count, with this hydrator's fields set."""


@dataclass(slots=True)
class FilterResult:
    kept: list[Candidate]
    removed: list[Candidate]
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> number of removed candidates


class Filter(Stage):
    @abstractmethod
    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult: ...


def partition(candidates: Sequence[Candidate], removal_reason: Callable[[Candidate], str | None]) -> FilterResult:
    """Split candidates by a per-candidate judgement: a reason to remove, or None to keep."""
    result = FilterResult(kept=[], removed=[])
    for candidate in candidates:
        reason = removal_reason(candidate)
        if reason is None:
            result.kept.append(candidate)
        else:
            result.removed.append(candidate)
            result.reasons[reason] += 1
    return result


class CandidateFilter(Filter):
    """A filter that judges each candidate on its own."""

    @abstractmethod
    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        """Why the candidate goes, or None to keep it."""

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        return partition(candidates, lambda candidate: self.removal_reason(query, candidate))


class Scorer(Stage):
    fields: ClassVar[frozenset[str]]

    @abstractmethod
    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates, same order and count, with this scorer's fields set."""


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
