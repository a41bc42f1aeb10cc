"""Contract and failure-policy tests of the framework, with toy stages."""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from scoring.recency import recency_score
from scoring.selector import TopKSelector
from streams.candidate import Candidate, Updates
from streams.pipeline import CandidatePipeline, ContractViolation
from streams.query import FeedQuery
from streams.stages import (
    CandidateFilter,
    CandidateHydrator,
    Filter,
    FilterResult,
    QueryHydrator,
    Scorer,
    SideEffect,
    Source,
)
from tests.streams.foryou_fakes import candidate, ids, post, query


class ListSource(Source):
    def __init__(self, name: str, candidates: list[Candidate], fail: bool = False) -> None:
        self.name = name
        self._candidates = candidates
        self._fail = fail

    async def fetch(self, query: FeedQuery) -> list[Candidate]:
        if self._fail:
            raise RuntimeError("source down")
        return list(self._candidates)


class FollowerHydrator(CandidateHydrator):
    name = "Followers"
    fields = frozenset({"author_follower_count"})

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        return {"author_follower_count": [c.author_id * 10 for c in candidates]}


class InNetworkHydrator(CandidateHydrator):
    """Reads the follower count (owned by FollowerHydrator) to decide; records what it saw."""

    name = "InNetworkFromFollowers"
    fields = frozenset({"in_network"})

    def __init__(self) -> None:
        self.seen_counts: list[int | None] = []

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        self.seen_counts = [c.author_follower_count for c in candidates]
        return {"in_network": [c.author_follower_count is not None for c in candidates]}


class BadHydrator(CandidateHydrator):
    """Breaks the contract in the way it is told to."""

    fields = frozenset({"in_network"})

    def __init__(self, mode: str) -> None:
        self.name = f"Bad-{mode}"
        self._mode = mode

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        values = [True] * len(candidates)
        if self._mode == "drop":
            return {"in_network": values[1:]}
        if self._mode == "extra":
            return {"in_network": [*values, True]}
        if self._mode == "mutate":
            candidates[0].in_network = True  # type: ignore[misc]  # frozen: raises FrozenInstanceError
        if self._mode == "raise":
            raise RuntimeError("hydrator down")
        assert self._mode == "foreign"
        return {"in_network": values, "author_follower_count": [-1] * len(candidates)}


class FollowAllHydrator(CandidateHydrator):
    name = "FollowAll"
    fields = frozenset({"in_network"})

    async def hydrate(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        return {"in_network": [True] * len(candidates)}


class ConstantScorer(Scorer):
    name = "Constant"
    fields = frozenset({"score", "weighted_score"})

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        scores = [float(c.post_id) for c in candidates]
        return {"score": scores, "weighted_score": scores}


class BadScorer(Scorer):
    fields = frozenset({"score"})

    def __init__(self, mode: str) -> None:
        self.name = f"BadScorer-{mode}"
        self._mode = mode

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        if self._mode == "raise":
            raise RuntimeError("scorer crashed")
        if self._mode == "short":
            return {"score": [-1.0] * (len(candidates) - 1)}
        return {"score": [-1.0] * len(candidates), "weighted_score": [-1.0] * len(candidates)}  # "foreign"


class DropOdd(CandidateFilter):
    name = "DropOdd"

    def removal_reason(self, query: FeedQuery, candidate: Candidate) -> str | None:
        return "odd" if candidate.post_id % 2 else None


class LosesCandidates(Filter):
    name = "Loses"

    def filter(self, query: FeedQuery, candidates: Sequence[Candidate]) -> FilterResult:
        return FilterResult(kept=list(candidates[1:]), removed=[])


class Recorder(SideEffect):
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls: list[list[int]] = []

    async def run(self, query: FeedQuery, served: Sequence[Candidate]) -> None:
        self.calls.append(ids(served))
        if self.fail:
            raise RuntimeError("side effect failed")


def make(
    candidates=None,
    *,
    sources=None,
    hydrators=(),
    scorers=None,
    filters=(),
    post_filters=(),
    side_effects=(),
    query_hydrators=(),
) -> CandidatePipeline:
    if sources is None:
        sources = [ListSource("List", candidates or [])]
    if scorers is None:
        scorers = [ConstantScorer()]
    return CandidatePipeline(
        name="test",
        query_hydrators=list(query_hydrators),
        sources=sources,
        hydrators=list(hydrators),
        dependent_hydrators=[],
        filters=list(filters),
        scorers=list(scorers),
        selector=TopKSelector(),
        post_selection_hydrators=[],
        post_selection_filters=list(post_filters),
        side_effects=list(side_effects),
        model=lambda: "model-v1",
        fallback_name="reverse-chron",
        fallback_score=recency_score,
    )


def three() -> list[Candidate]:
    return [candidate(i, 10 + i, core=post(i, 10 + i, age_ms=i * 1000)) for i in (1, 2, 3)]


def run(pipeline: CandidatePipeline, q: FeedQuery | None = None):
    return asyncio.run(pipeline.execute(q or query(explain=True)))


class CapturingScorer(ConstantScorer):
    """Scores like ConstantScorer and keeps what it was given, to inspect the hydrated state."""

    def __init__(self) -> None:
        self.seen: list[Candidate] = []
        self.query: FeedQuery | None = None

    async def score(self, query: FeedQuery, candidates: Sequence[Candidate]) -> Updates:
        self.seen, self.query = list(candidates), query
        return await super().score(query, candidates)


def test_hydrators_run_and_their_values_are_written():
    capture = CapturingScorer()
    result = run(make(three(), hydrators=[FollowerHydrator(), FollowAllHydrator()], scorers=[capture]))
    assert result.degraded == []
    assert [c.author_follower_count for c in capture.seen] == [110, 120, 130]
    assert all(c.in_network for c in capture.seen)
    assert {s.name: s.status for s in result.stages}["Followers"] == "ok"


def test_hydrators_of_a_group_see_none_of_each_others_values_and_the_next_group_sees_them():
    concurrent, dependent = InNetworkHydrator(), InNetworkHydrator()
    pipeline = replace(make(three(), hydrators=[FollowerHydrator(), concurrent]), dependent_hydrators=[dependent])
    result = run(pipeline)
    assert result.degraded == []
    assert concurrent.seen_counts == [None, None, None]
    assert dependent.seen_counts == [110, 120, 130]


@pytest.mark.parametrize("mode", ["drop", "extra", "foreign", "mutate", "raise"])
def test_a_hydrator_breaking_its_contract_is_rejected_and_the_request_degrades(mode: str):
    before = (
        REGISTRY.get_sample_value(
            "foryou_pipeline_degradations_total", {"pipeline": "test", "kind": "hydrator", "stage": f"Bad-{mode}"}
        )
        or 0.0
    )
    capture = CapturingScorer()
    pipeline = make(three(), hydrators=[BadHydrator(mode), FollowerHydrator()], scorers=[capture])
    result = run(pipeline)
    assert result.degraded == [f"hydrator:Bad-{mode}"]
    assert sorted(p.post_id for p in result.posts) == [1, 2, 3]
    assert not any(p.in_network for p in result.posts)  # the rejected hydrator's values were not written
    assert [c.author_follower_count for c in capture.seen] == [110, 120, 130]  # the others' were
    report = next(s for s in result.stages if s.name == f"Bad-{mode}")
    assert report.status == "failed" and report.error
    after = REGISTRY.get_sample_value(
        "foryou_pipeline_degradations_total", {"pipeline": "test", "kind": "hydrator", "stage": f"Bad-{mode}"}
    )
    assert after == before + 1


def test_a_failing_source_degrades_and_the_others_still_serve():
    sources = [ListSource("Broken", three(), fail=True), ListSource("Fine", [candidate(7, 70)])]
    result = run(make(sources=sources))
    assert [p.post_id for p in result.posts] == [7]
    assert result.degraded == ["source:Broken"]
    assert result.model == "model-v1"


class SlowHydrator(QueryHydrator):
    """Both instances wait for each other: this only finishes if they run concurrently."""

    def __init__(self, name: str, barrier: asyncio.Barrier, field: str, value: Any) -> None:
        self.name = name
        self.fields = frozenset({field})
        self._barrier = barrier
        self._field, self._value = field, value

    async def hydrate(self, query: FeedQuery) -> Mapping[str, Any]:
        await asyncio.wait_for(self._barrier.wait(), timeout=5)
        return {self._field: self._value}


class ForeignQueryHydrator(QueryHydrator):
    name = "Foreign"
    fields = frozenset({"served_ids"})

    async def hydrate(self, query: FeedQuery) -> Mapping[str, Any]:
        return {"seen_ids": frozenset({1})}


def test_query_hydrators_run_concurrently_and_merge():
    capture = CapturingScorer()

    async def go():
        barrier = asyncio.Barrier(2)
        hydrators = [
            SlowHydrator("A", barrier, "served_ids", frozenset({9})),
            SlowHydrator("B", barrier, "language", "fr"),
        ]
        return await make(three(), query_hydrators=hydrators, scorers=[capture]).execute(query())

    result = asyncio.run(go())
    assert result.degraded == []
    assert capture.query is not None
    assert capture.query.served_ids == {9} and capture.query.language == "fr"


def test_a_query_hydrator_writing_foreign_fields_is_rejected():
    result = run(make(three(), query_hydrators=[ForeignQueryHydrator()]))
    assert result.degraded == ["query_hydrator:Foreign"]
    assert len(result.posts) == 3  # seen_ids was not applied


def test_filters_run_in_order_and_report_removals():
    result = run(make(three(), filters=[DropOdd()]))
    assert [p.post_id for p in result.posts] == [2]
    report = next(s for s in result.stages if s.name == "DropOdd")
    assert (report.candidates_in, report.candidates_out, report.removed) == (3, 1, {"odd": 2})


def test_a_filter_losing_candidates_fails_the_request():
    with pytest.raises(ContractViolation):
        run(make(three(), filters=[LosesCandidates()]))


def test_a_failing_first_scorer_falls_back_to_reverse_chron_and_says_so():
    result = run(make(three(), scorers=[BadScorer("raise")]))
    assert result.model == "reverse-chron"
    assert result.degraded == ["scorer:BadScorer-raise", "fallback:reverse-chron"]
    assert [p.post_id for p in result.posts] == [1, 2, 3]  # newest first (post 1 is the youngest)
    assert result.posts[0].score > result.posts[1].score > result.posts[2].score


@pytest.mark.parametrize("mode", ["short", "foreign"])
def test_a_scorer_breaking_its_contract_is_rejected_and_earlier_scores_are_kept(mode: str):
    result = run(make(three(), scorers=[ConstantScorer(), BadScorer(mode)]))
    assert result.degraded == [f"scorer:BadScorer-{mode}"]
    assert result.model == "model-v1"
    assert [(p.post_id, p.score) for p in result.posts] == [(3, 3.0), (2, 2.0), (1, 1.0)]
    assert [p.explain.weighted_score for p in result.posts] == [3.0, 2.0, 1.0]


def test_post_selection_filters_are_backfilled_from_the_reserve():
    candidates = [candidate(i, 10, core=post(i, 10)) for i in range(1, 9)]
    result = run(make(candidates, post_filters=[DropOdd()]), query(max_results=3, explain=True))
    assert [p.post_id for p in result.posts] == [8, 6, 4]
    assert [p.rank for p in result.posts] == [1, 2, 3]


def test_side_effects_run_only_when_called_and_never_raise():
    ok, broken = Recorder("Ok"), Recorder("Broken", fail=True)
    result = run(make(three(), side_effects=[ok, broken]))
    assert ok.calls == [] and broken.calls == []
    before = (
        REGISTRY.get_sample_value("foryou_side_effect_failures_total", {"pipeline": "test", "side_effect": "Broken"})
        or 0.0
    )
    asyncio.run(result.side_effects())
    assert ok.calls == [[3, 2, 1]] and broken.calls == [[3, 2, 1]]
    assert (
        REGISTRY.get_sample_value("foryou_side_effect_failures_total", {"pipeline": "test", "side_effect": "Broken"})
        == before + 1
    )


def test_explain_off_carries_no_stage_reports_nor_post_explain():
    result = asyncio.run(make(three()).execute(query(explain=False)))
    assert result.stages is None
    assert all(p.explain is None for p in result.posts)


def test_stage_metrics_are_observed():
    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    latency = {"pipeline": "test", "kind": "filter", "stage": "DropOdd"}
    removed = {"pipeline": "test", "filter": "DropOdd", "reason": "odd"}
    source = {"pipeline": "test", "source": "List"}
    before = (
        sample("foryou_stage_latency_seconds_count", latency),
        sample("foryou_filter_removed_total", removed),
        sample("foryou_source_candidates_sum", source),
        sample("foryou_pipeline_latency_seconds_count", {"pipeline": "test"}),
    )
    run(make(three(), filters=[DropOdd()]))
    after = (
        sample("foryou_stage_latency_seconds_count", latency),
        sample("foryou_filter_removed_total", removed),
        sample("foryou_source_candidates_sum", source),
        sample("foryou_pipeline_latency_seconds_count", {"pipeline": "test"}),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2, 3, 1]
