"""The candidate-pipeline framework: runs a declared list of stages for one feed request.

Order (x-algorithm's candidate-pipeline): query hydrators (concurrent) -> sources (concurrent, concatenated)
-> candidate hydrators (concurrent) -> dependent hydrators (concurrent, after the first group, for data that
needs core data) -> filters (in order) -> scorers (in order) -> selector -> post-selection hydrators and
filters on the selected candidates, backfilled from the selector's reserve when they remove some -> answer.
Side effects are returned with the answer as a coroutine function for the caller to run after sending.

Failure policy:
- A query hydrator, source or candidate hydrator that raises, or that breaks its contract (values for
  fields it does not own, or a number of values other than of candidates), is left out: the request is
  answered without its data, `degraded` names it, it is logged and counted. Candidates lacking that data
  are then handled by the filters (e.g. no core data -> CoreDataHydration removes them).
- A scorer that raises or breaks its contract leaves the candidates as they were (scores of the earlier
  scorers are kept). If afterwards any candidate has no final score (the Phoenix or weighted scorer
  failed), every candidate is scored by the pipeline's fallback (recency: reverse-chronological order),
  the answer's model is the fallback's name, and `degraded` also says "fallback:<name>".
- A filter or the selector raising is a bug in local, pure code: it propagates and the request fails
  (answered with status "error" by the caller) rather than serving unfiltered posts.
- Side effects never raise: failures are logged and counted.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from streams import metrics
from streams.candidate import Candidate, Updates, write_fields
from streams.query import FeedQuery
from streams.result import FeedResult, post_explain
from streams.stages import CandidateHydrator, Filter, QueryHydrator, Scorer, Selector, SideEffect, Source
from topics.schemas import RankedPost, StageKind, StageReport, StageStatus

log = logging.getLogger(__name__)

T = TypeVar("T")


class ContractViolation(RuntimeError):
    """A stage returned something its kind does not allow (e.g. values for another stage's fields, or a
    filter losing candidates)."""


def check_updates(stage_name: str, owned: frozenset[str], count: int, updates: Updates) -> Updates:
    """`updates` if they hold only fields the stage owns, with `count` values each; else ContractViolation."""
    foreign = updates.keys() - owned
    if foreign:
        raise ContractViolation(f"{stage_name} returned values for fields it does not own: {sorted(foreign)}")
    for name, values in updates.items():
        if len(values) != count:
            raise ContractViolation(f"{stage_name} returned {len(values)} values of {name} for {count} candidates")
    return updates


async def _timed(work: Awaitable[T]) -> tuple[T | Exception, float]:
    start = time.perf_counter()
    try:
        result: T | Exception = await work
    except Exception as e:  # a failing component degrades the request; cancellation still propagates
        result = e
    return result, (time.perf_counter() - start) * 1000.0


@dataclass(slots=True)
class _Run:
    """Bookkeeping of one execution: reports, degradations."""

    pipeline: str
    query: FeedQuery
    reports: dict[tuple[StageKind, str], StageReport]
    degraded: list[str]

    def report(self, report: StageReport) -> None:
        metrics.STAGE_LATENCY.labels(self.pipeline, report.kind, report.name).observe(report.ms / 1000.0)
        key = (report.kind, report.name)
        previous = self.reports.get(key)
        if previous is None:
            self.reports[key] = report
            return
        # Post-selection stages run again on backfill batches: one report sums the passes.
        removed = dict(previous.removed)
        for reason, count in report.removed.items():
            removed[reason] = removed.get(reason, 0) + count
        failed = report.status == "failed"
        self.reports[key] = replace(
            previous,
            candidates_in=previous.candidates_in + report.candidates_in,
            candidates_out=previous.candidates_out + report.candidates_out,
            ms=previous.ms + report.ms,
            removed=removed,
            status="failed" if failed else previous.status,
            error=report.error if failed else previous.error,
        )

    def fail(self, kind: StageKind, name: str, error: Exception) -> str:
        label = f"{kind}:{name}"
        if label not in self.degraded:
            self.degraded.append(label)
        metrics.DEGRADATIONS.labels(self.pipeline, kind, name).inc()
        log.warning(
            "pipeline %s request %s user %s: %s %s failed, answering without it: %r",
            self.pipeline,
            self.query.request_id,
            self.query.user_id,
            kind,
            name,
            error,
            exc_info=error if not isinstance(error, ContractViolation) else None,
        )
        return f"{type(error).__name__}: {error}"

    def disabled(self, kind: StageKind, name: str, count: int) -> None:
        self.reports.setdefault((kind, name), StageReport(kind, name, "disabled", count, count, 0.0))


@dataclass(frozen=True, slots=True)
class CandidatePipeline:
    name: str
    query_hydrators: Sequence[QueryHydrator]
    sources: Sequence[Source]
    hydrators: Sequence[CandidateHydrator]
    dependent_hydrators: Sequence[CandidateHydrator]
    filters: Sequence[Filter]
    scorers: Sequence[Scorer]
    selector: Selector
    post_selection_hydrators: Sequence[CandidateHydrator]
    post_selection_filters: Sequence[Filter]
    side_effects: Sequence[SideEffect]
    model: Callable[[], str]  # the model name reported when the scorers produced the order
    fallback_name: str  # the model name reported when the fallback produced the order
    fallback_score: Callable[[FeedQuery, Candidate], float]

    async def execute(self, query: FeedQuery) -> FeedResult:
        start = time.perf_counter()
        run = _Run(self.name, query, {}, [])
        query = await self._hydrate_query(run, query)
        run.query = query
        candidates = await self._fetch(run, query)
        candidates = await self._hydrate(run, query, candidates, self.hydrators, "hydrator")
        candidates = await self._hydrate(run, query, candidates, self.dependent_hydrators, "dependent_hydrator")
        candidates = self._filter(run, query, candidates, self.filters, "filter")
        candidates, used_fallback = await self._score(run, query, candidates)
        final = await self._select(run, query, candidates)
        metrics.PIPELINE_LATENCY.labels(self.name).observe(time.perf_counter() - start)

        posts = [
            RankedPost(
                post_id=c.post_id,
                author_id=c.author_id,
                rank=rank,
                score=float(c.score if c.score is not None else 0.0),
                in_network=bool(c.in_network),
                explain=post_explain(c) if query.explain else None,
            )
            for rank, c in enumerate(final, start=1)
        ]
        return FeedResult(
            posts=posts,
            model=self.fallback_name if used_fallback else self.model(),
            degraded=run.degraded,
            stages=list(run.reports.values()) if query.explain else None,
            side_effects=self._side_effects_runner(query, final),
        )

    async def _hydrate_query(self, run: _Run, query: FeedQuery) -> FeedQuery:
        enabled = []
        for hydrator in self.query_hydrators:
            if hydrator.enable(query):
                enabled.append(hydrator)
            else:
                run.disabled("query_hydrator", hydrator.name, 0)
        results = await asyncio.gather(*(_timed(h.hydrate(query)) for h in enabled))
        updates: dict[str, Any] = {}
        for hydrator, (result, ms) in zip(enabled, results, strict=True):
            if not isinstance(result, Exception):
                try:
                    updates.update(self._query_updates(hydrator, result))
                except ContractViolation as violation:
                    result = violation
            error = run.fail("query_hydrator", hydrator.name, result) if isinstance(result, Exception) else None
            run.report(StageReport("query_hydrator", hydrator.name, "failed" if error else "ok", 0, 0, ms, error=error))
        return replace(query, **updates) if updates else query

    @staticmethod
    def _query_updates(hydrator: QueryHydrator, values: Mapping[str, Any]) -> Mapping[str, Any]:
        foreign = set(values) - hydrator.fields
        if foreign or not hydrator.fields <= FeedQuery.field_names():
            raise ContractViolation(f"{hydrator.name} wrote query fields it does not own: {sorted(foreign)}")
        return values

    async def _fetch(self, run: _Run, query: FeedQuery) -> list[Candidate]:
        enabled = []
        for source in self.sources:
            if source.enable(query):
                enabled.append(source)
            else:
                run.disabled("source", source.name, 0)
        results = await asyncio.gather(*(_timed(s.fetch(query)) for s in enabled))
        candidates: list[Candidate] = []
        for source, (result, ms) in zip(enabled, results, strict=True):
            if isinstance(result, Exception):
                error = run.fail("source", source.name, result)
                run.report(StageReport("source", source.name, "failed", 0, 0, ms, error=error))
                continue
            metrics.SOURCE_CANDIDATES.labels(self.name, source.name).observe(len(result))
            run.report(StageReport("source", source.name, "ok", 0, len(result), ms))
            candidates.extend(result)
        return candidates

    async def _hydrate(
        self,
        run: _Run,
        query: FeedQuery,
        candidates: list[Candidate],
        hydrators: Sequence[CandidateHydrator],
        kind: StageKind,
    ) -> list[Candidate]:
        enabled = []
        for hydrator in hydrators:
            if hydrator.enable(query) and candidates:
                enabled.append(hydrator)
            else:
                run.disabled(kind, hydrator.name, len(candidates))
        results = await asyncio.gather(*(_timed(h.hydrate(query, candidates)) for h in enabled))
        # Written only once the whole group is done: concurrent hydrators all saw the same candidates.
        accepted: list[Updates] = []
        for hydrator, (result, ms) in zip(enabled, results, strict=True):
            if not isinstance(result, Exception):
                try:
                    accepted.append(check_updates(hydrator.name, hydrator.fields, len(candidates), result))
                except ContractViolation as violation:
                    result = violation
            error = run.fail(kind, hydrator.name, result) if isinstance(result, Exception) else None
            status: StageStatus = "failed" if error else "ok"
            run.report(StageReport(kind, hydrator.name, status, len(candidates), len(candidates), ms, error=error))
        for updates in accepted:
            write_fields(candidates, updates)
        return candidates

    def _filter(
        self,
        run: _Run,
        query: FeedQuery,
        candidates: list[Candidate],
        filters: Sequence[Filter],
        kind: StageKind,
    ) -> list[Candidate]:
        for stage in filters:
            if not stage.enable(query):
                run.disabled(kind, stage.name, len(candidates))
                continue
            start = time.perf_counter()
            result = stage.filter(query, candidates)
            ms = (time.perf_counter() - start) * 1000.0
            if len(result.kept) + len(result.removed) != len(candidates):
                raise ContractViolation(
                    f"{stage.name} kept {len(result.kept)} and removed {len(result.removed)} of {len(candidates)}"
                )
            for reason, count in result.reasons.items():
                metrics.FILTER_REMOVED.labels(self.name, stage.name, reason).inc(count)
            run.report(StageReport(kind, stage.name, "ok", len(candidates), len(result.kept), ms, dict(result.reasons)))
            candidates = result.kept
        return candidates

    async def _score(self, run: _Run, query: FeedQuery, candidates: list[Candidate]) -> tuple[list[Candidate], bool]:
        for scorer in self.scorers:
            if not scorer.enable(query) or not candidates:
                run.disabled("scorer", scorer.name, len(candidates))
                continue
            result, ms = await _timed(scorer.score(query, candidates))
            if not isinstance(result, Exception):
                try:
                    write_fields(candidates, check_updates(scorer.name, scorer.fields, len(candidates), result))
                except ContractViolation as violation:
                    result = violation
            error = run.fail("scorer", scorer.name, result) if isinstance(result, Exception) else None
            scored: StageStatus = "failed" if error else "ok"
            run.report(StageReport("scorer", scorer.name, scored, len(candidates), len(candidates), ms, error=error))
        if all(c.score is not None for c in candidates):
            return candidates, False
        if self.scorers and f"fallback:{self.fallback_name}" not in run.degraded:
            run.degraded.append(f"fallback:{self.fallback_name}")
        write_fields(candidates, {"score": [self.fallback_score(query, c) for c in candidates]})
        return candidates, True

    async def _select(self, run: _Run, query: FeedQuery, candidates: list[Candidate]) -> list[Candidate]:
        start = time.perf_counter()
        selection = self.selector.select(query, candidates)
        run.report(
            StageReport(
                "selector",
                self.selector.name,
                "ok",
                len(candidates),
                len(selection.selected),
                (time.perf_counter() - start) * 1000.0,
            )
        )
        size = query.max_results
        reserve = deque(selection.reserve)
        kept = await self._post_select(run, query, [], selection.selected)
        # Backfill from the ranked reserve: the post-selection filters judge the whole slate each time,
        # because some of them (conversation dedup) compare candidates with each other.
        while len(kept) < size and reserve:
            batch = [reserve.popleft() for _ in range(min(size - len(kept), len(reserve)))]
            kept = await self._post_select(run, query, kept, batch)
        return kept[:size]

    async def _post_select(
        self, run: _Run, query: FeedQuery, kept: list[Candidate], batch: list[Candidate]
    ) -> list[Candidate]:
        hydrated = await self._hydrate(run, query, batch, self.post_selection_hydrators, "post_selection_hydrator")
        return self._filter(run, query, kept + hydrated, self.post_selection_filters, "post_selection_filter")

    def _side_effects_runner(self, query: FeedQuery, served: list[Candidate]) -> Callable[[], Awaitable[None]]:
        async def run_side_effects() -> None:
            async def run_one(effect: SideEffect) -> None:
                try:
                    await effect.run(query, served)
                except Exception as e:  # the answer is already out; never let a side effect raise
                    metrics.SIDE_EFFECT_FAILURES.labels(self.name, effect.name).inc()
                    log.warning(
                        "pipeline %s request %s: side effect %s failed: %r",
                        self.name,
                        query.request_id,
                        effect.name,
                        e,
                        exc_info=e,
                    )

            await asyncio.gather(*(run_one(e) for e in self.side_effects if e.enable(query)))

        return run_side_effects
