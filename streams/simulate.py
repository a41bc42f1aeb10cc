"""The draft simulator: how a post would fare with an audience, from the users' real state and real scorers.

Two paths, checked against each other by the tests:

- **Exact** (`simulate_user`): the production pipeline for one user with the draft among the candidates
  (streams.draft): every stage runs as for a feed request, so the answer carries the stage-by-stage report,
  and the draft's rank is its place in the selector's order.
- **Batched** (`simulate_audience`): a draft is one candidate against many users. Each user's *baseline* is
  computed once by the same pipeline without the draft (kept in a cache by model version, with a TTL): the
  hydrated query, the Phoenix prefix (user + history keys/values), the user's retrieval embedding and
  retrieval's k-th score, and every scored candidate's author, weighted score, diversity position and OON
  multiplier. A draft then costs, per user: the real hydrators and filters on the one draft candidate, one
  row of a batched Phoenix call over all users' cached prefixes (phoenix.audience), the real weighted
  scorer, and the diversity and OON multipliers applied with the scorers' own functions, including the
  shift a new post of the same author causes to that author's other candidates. Its rank is then 1 + the
  number of candidates scoring above it (the draft is the newest post, so it wins ties, as in TopK).

Served means: the draft reaches the user (in-network: the user follows the author; out-of-network: its
retrieval similarity clears retrieval's k-th score), no filter removes it, and its rank is within the
feed size K. Post-selection filters (visibility, conversation dedup) are not re-run in the batched path.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from scoring.author_diversity import diversity_multiplier
from scoring.offset import ScoreOffset
from scoring.weighted import WeightedScorer
from streams.candidate import Candidate, write_fields
from streams.config import ForYouConfig
from streams.draft import Capture, Draft, DraftPostStore, DraftSource, observed_pipeline, retrieval_bar
from streams.pipeline import CandidatePipeline, check_updates
from streams.ports import EngagementCountsStore, PostStore, RankerPort, UserStateStore
from streams.query import FeedQuery, feed_query
from streams.result import post_explain
from streams.stages import Source
from topics.actions import PHOENIX_ACTIONS
from topics.schemas import FeedRequest


class AudienceRankerPort(Protocol):
    """What the simulator needs from Phoenix beyond `RankerPort` (phoenix.audience.AudienceRanker)."""

    @property
    def version(self) -> str: ...

    def prefix(self, user_id: int, history: Sequence[Any]) -> Any: ...

    def user_embedding(self, user_id: int, history: Sequence[Any]) -> np.ndarray: ...

    def post_embedding(self, post_id: int, author_id: int) -> np.ndarray: ...

    def score_for_users(
        self, prefixes: Sequence[Any], post_id: int, author_id: int, created_at_ms: int | None, now_ms: int,
        content: np.ndarray | None = None,
    ) -> np.ndarray: ...


@dataclass(slots=True)
class UserBaseline:
    """One user's feed as it stands, everything a draft is compared with (see the module docstring)."""

    user_id: int
    query: FeedQuery  # hydrated
    prefix: Any
    user_embedding: np.ndarray
    retrieval_bar: float
    top_k: int
    authors: np.ndarray  # [C] int64, every scored candidate
    weighted: np.ndarray  # [C] weighted score (after offset)
    positions: np.ndarray  # [C] 0-based position among the same author's candidates by weighted score
    oon: np.ndarray  # [C] OON multiplier
    scores: np.ndarray  # [C] final scores
    version: str
    built_at: float


@dataclass(slots=True)
class UserOutcome:
    user_id: int
    follower: bool
    reached: bool
    filtered_by: str | None
    rank: int | None
    served: bool
    probabilities: np.ndarray | None  # [19]
    weighted_score: float | None
    score: float | None


def _positions(authors: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    """Each candidate's 0-based place among its author's candidates, by weighted score (stable), as
    AuthorDiversityScorer counts them."""
    order = sorted(range(len(authors)), key=lambda i: -weighted[i])
    seen: dict[int, int] = {}
    positions = np.zeros(len(authors), np.int64)
    for i in order:
        author = int(authors[i])
        positions[i] = seen.get(author, 0)
        seen[author] = positions[i] + 1
    return positions


class DraftSimulator:
    def __init__(
        self,
        *,
        config: ForYouConfig,
        post_store: PostStore,
        user_state: UserStateStore,
        ranker: RankerPort,
        audience_ranker: AudienceRankerPort,
        cache_ttl_s: float = 300.0,
        cache_users: int = 5_000,
        counts: EngagementCountsStore | None = None,
    ) -> None:
        self.config = config
        self.counts = counts
        self.post_store = post_store
        self.user_state = user_state
        self.ranker = ranker
        self.audience_ranker = audience_ranker
        self.cache_ttl_s = cache_ttl_s
        self.cache_users = cache_users
        self._cache: OrderedDict[tuple[int, int], UserBaseline] = OrderedDict()
        self.offset = ScoreOffset.from_weights(config.weights, config.scoring.negative_scores_offset)
        self.weights = np.array([config.weights[a] for a in PHOENIX_ACTIONS], np.float64)

    def _observe(self, post_store: PostStore, extra_sources: Sequence[Source] = ()) -> Capture:
        """A fresh observed pipeline (its captures belong to one run)."""
        return observed_pipeline(
            config=self.config, post_store=post_store, user_state=self.user_state, ranker=self.ranker,
            extra_sources=extra_sources, counts=self.counts,
        )

    # -- baselines --------------------------------------------------------------------------------------

    def _query(self, user_id: int, top_k: int, now_ms: int) -> FeedQuery:
        request = FeedRequest(request_id=f"simulate-{user_id}-{now_ms}", user_id=user_id, max_results=top_k)
        return feed_query(request, now_ms=now_ms, default_size=self.config.results.default_size)

    async def baseline(self, user_id: int, top_k: int, now_ms: int) -> UserBaseline:
        key = (user_id, top_k)
        cached = self._cache.get(key)
        version = self.audience_ranker.version
        if cached is not None and cached.version == version and time.monotonic() - cached.built_at < self.cache_ttl_s:
            self._cache.move_to_end(key)
            return cached
        capture = self._observe(self.post_store)
        await capture.pipeline.execute(self._query(user_id, top_k, now_ms))
        query = capture.selector.query
        assert query is not None
        scored = [c for c in capture.selector.candidates if c.score is not None]
        authors = np.array([c.author_id for c in scored], np.int64)
        weighted = np.array([c.weighted_score or 0.0 for c in scored], np.float64)
        baseline = UserBaseline(
            user_id=user_id,
            query=query,
            prefix=self.audience_ranker.prefix(user_id, query.action_sequence),
            user_embedding=self.audience_ranker.user_embedding(user_id, query.action_sequence),
            retrieval_bar=retrieval_bar(
                capture.retrieval.fetched if capture.retrieval is not None else None,
                self.config.sources.retrieval_max,
            ),
            top_k=query.max_results,
            authors=authors,
            weighted=weighted,
            positions=_positions(authors, weighted),
            oon=np.array([c.oon_multiplier or 1.0 for c in scored], np.float64),
            scores=np.array([c.score for c in scored], np.float64),
            version=version,
            built_at=time.monotonic(),
        )
        self._cache[key] = baseline
        while len(self._cache) > self.cache_users:
            self._cache.popitem(last=False)
        return baseline

    # -- batched path -----------------------------------------------------------------------------------

    @staticmethod
    async def _hydrated_draft(
        pipeline: CandidatePipeline, store: DraftPostStore, query: FeedQuery, retrieval_score: float
    ) -> Candidate:
        """The draft candidate for this user through the real candidate hydrators (over the draft store)."""
        [candidate] = await DraftSource(store.post, lambda q: retrieval_score).fetch(query)
        for group in (pipeline.hydrators, pipeline.dependent_hydrators):
            for hydrator in group:
                if hydrator.enable(query):
                    updates = await hydrator.hydrate(query, [candidate])
                    write_fields([candidate], check_updates(hydrator.name, hydrator.fields, 1, updates))
        return candidate

    @staticmethod
    def _removal(pipeline: CandidatePipeline, query: FeedQuery, candidate: Candidate) -> str | None:
        """The first filter that would remove the draft for this user, as "Filter:reason"."""
        for stage in pipeline.filters:
            if stage.enable(query):
                result = stage.filter(query, [candidate])
                if result.removed:
                    return f"{stage.name}:{next(iter(result.reasons), 'removed')}"
        return None

    async def simulate_audience(
        self, draft: Draft, user_ids: Sequence[int], *, top_k: int, now_ms: int | None = None
    ) -> list[UserOutcome]:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        baselines = [await self.baseline(u, top_k, now) for u in user_ids]
        with DraftPostStore(self.post_store, draft, now) as store:
            post = store.post
            post_embedding = self.audience_ranker.post_embedding(post.post_id, post.author_id)
            pipeline = self._observe(store).pipeline
            candidates: list[Candidate] = []
            outcomes: list[UserOutcome] = []
            for b in baselines:
                features = b.query.user_features
                follower = features is not None and post.author_id in features.following
                similarity = float(b.user_embedding @ post_embedding)
                reached = follower or (similarity >= b.retrieval_bar and not b.query.in_network_only)
                candidate = await self._hydrated_draft(pipeline, store, b.query, similarity)
                candidates.append(candidate)
                outcomes.append(UserOutcome(b.user_id, follower, reached, self._removal(pipeline, b.query, candidate),
                                            None, False, None, None, None))
            # Off the event loop: on a worker, feed requests keep being answered meanwhile.
            probabilities = await asyncio.to_thread(
                self.audience_ranker.score_for_users,
                [b.prefix for b in baselines], post.post_id, post.author_id, post.created_at_ms, now,
                # the draft's content vector as its hydrator read it (the live replica does not hold the draft)
                candidates[0].content_embedding if candidates else None,
            )
            weighted_scorer = WeightedScorer(self.config.weights, self.config.scoring.vqv_min_duration_ms, self.offset)
            for b, candidate, outcome, row in zip(baselines, candidates, outcomes, probabilities, strict=True):
                write_fields([candidate], {"phoenix_scores": [np.asarray(row, np.float64)]})
                write_fields([candidate], await weighted_scorer.score(b.query, [candidate]))
                outcome.probabilities = np.asarray(row, np.float64)
                outcome.weighted_score = candidate.weighted_score
                outcome.score, outcome.rank = self._rank(b, candidate)
                outcome.served = outcome.reached and outcome.filtered_by is None and outcome.rank <= b.top_k
        return outcomes

    def _rank(self, b: UserBaseline, candidate: Candidate) -> tuple[float, int]:
        """The draft's final score and its rank among the user's candidates, with the same author's other
        candidates that it outranks moved one place down in the diversity decay."""
        cfg = self.config
        weighted = float(candidate.weighted_score or 0.0)
        same = b.authors == candidate.author_id
        position = int(np.sum(same & (b.weighted >= weighted)))
        score = self.offset.scale(weighted, diversity_multiplier(position, cfg.diversity.decay, cfg.diversity.floor))
        score = self.offset.scale(score, cfg.oon.factor if candidate.in_network is False else 1.0)
        scores = b.scores
        shifted = np.flatnonzero(same & (b.weighted < weighted))
        if len(shifted):
            scores = scores.copy()
            for i in shifted:
                m = diversity_multiplier(int(b.positions[i]) + 1, cfg.diversity.decay, cfg.diversity.floor)
                scores[i] = self.offset.scale(self.offset.scale(float(b.weighted[i]), m), float(b.oon[i]))
        return score, 1 + int(np.sum(scores > score))

    async def preview_feed(self, user_id: int, *, top_k: int, now_ms: int | None = None) -> dict[str, Any]:
        """The user's feed as a request would get it now, every post explained, with stage reports and
        timings; nothing is recorded (no side effects)."""
        return await _preview(self, user_id, top_k, now_ms)

    # -- exact path -------------------------------------------------------------------------------------

    async def simulate_user(
        self, draft: Draft, user_id: int, *, top_k: int, now_ms: int | None = None
    ) -> dict[str, Any]:
        """The production pipeline for one user with the draft among the candidates: the draft's rank,
        scores and the stage-by-stage report, plus the user's feed with the draft in it."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        [outcome] = await self.simulate_audience(draft, [user_id], top_k=top_k, now_ms=now)
        baseline = await self.baseline(user_id, top_k, now)
        with DraftPostStore(self.post_store, draft, now) as store:
            post_embedding = self.audience_ranker.post_embedding(store.post_id, draft.author_id)
            similarity = float(baseline.user_embedding @ post_embedding)
            capture = self._observe(store, [DraftSource(store.post, lambda q: similarity)])
            query = self._query(user_id, top_k, now)
            result = await capture.pipeline.execute(FeedQuery(**{**_fields(query), "explain": True}))
            ranked = capture.selector.ranked
            draft_candidate = next((c for c in ranked if c.post_id == store.post_id), None)
            rank = ranked.index(draft_candidate) + 1 if draft_candidate is not None else None
            posts = {p.post_id: p for p in result.posts}
            texts = store.get_many(posts)
        return {
            "user_id": user_id,
            "post_id": store.post_id,
            "follower": outcome.follower,
            "reached": outcome.reached,
            "retrieval_similarity": similarity,
            "retrieval_bar": baseline.retrieval_bar,
            "filtered_by": outcome.filtered_by,
            "rank": rank,
            "served": outcome.reached and store.post_id in posts,
            "top_k": top_k,
            "explain": None if draft_candidate is None else _explain(draft_candidate),
            "stages": [s.to_dict() for s in result.stages or []],
            "feed": [
                {**p.to_dict(), "text": texts[p.post_id].text if p.post_id in texts else "",
                 "draft": p.post_id == store.post_id}
                for p in result.posts
            ],
            "model": result.model,
        }


async def _preview(simulator: "DraftSimulator", user_id: int, top_k: int, now_ms: int | None) -> dict[str, Any]:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    capture = simulator._observe(simulator.post_store)
    query = simulator._query(user_id, top_k, now)
    started = time.perf_counter()
    result = await capture.pipeline.execute(FeedQuery(**{**_fields(query), "explain": True}))
    ms = (time.perf_counter() - started) * 1000
    posts = simulator.post_store.get_many(p.post_id for p in result.posts)
    hydrated = capture.selector.query
    features = hydrated.user_features if hydrated is not None else None
    return {
        "user_id": user_id,
        "top_k": top_k,
        "model": result.model,
        "pipeline_ms": round(ms, 2),
        "following": len(features.following) if features is not None else 0,
        "history": len(hydrated.action_sequence) if hydrated is not None else 0,
        "degraded": list(result.degraded),
        "stages": [s.to_dict() for s in result.stages or []],
        "feed": [
            {**p.to_dict(), "text": posts[p.post_id].text if p.post_id in posts else "",
             "media": posts[p.post_id].media if p.post_id in posts else "none"}
            for p in result.posts
        ],
    }


def _fields(query: FeedQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in FeedQuery.field_names()}


def _explain(candidate: Candidate) -> dict[str, Any]:
    return post_explain(candidate).to_dict() | {"score": candidate.score}


# -- summaries ----------------------------------------------------------------------------------------


def summarize(
    outcomes: Sequence[UserOutcome], *, oon_population: int, weights: Mapping[str, float], worker: str
) -> dict[str, Any]:
    """One worker's part of a report: its followers in full, its out-of-network sample scaled up to the
    `oon_population` non-followers it owns. Expected impressions count one feed request per user."""
    followers = [o for o in outcomes if o.follower]
    sampled = [o for o in outcomes if not o.follower]
    scale = oon_population / len(sampled) if sampled else 0.0
    engagements = np.zeros(len(PHOENIX_ACTIONS))
    for o in outcomes:
        if o.served and o.probabilities is not None:
            engagements += o.probabilities * (1.0 if o.follower else scale)
    filtered: dict[str, int] = {}
    for o in outcomes:
        if o.filtered_by:
            filtered[o.filtered_by] = filtered.get(o.filtered_by, 0) + 1
    return {
        "worker": worker,
        "followers": len(followers),
        "oon_sampled": len(sampled),
        "oon_population": oon_population,
        "oon_reached_sampled": sum(o.reached for o in sampled),
        "served_followers": sum(o.served for o in followers),
        "served_oon_sampled": sum(o.served for o in sampled),
        "impressions_in_network": float(sum(o.served for o in followers)),
        "impressions_out_of_network": float(sum(o.served for o in sampled) * scale),
        "engagements": dict(zip(PHOENIX_ACTIONS, engagements.tolist(), strict=True)),
        "weighted_scores": [o.weighted_score for o in outcomes if o.weighted_score is not None],
        "filtered": filtered,
        "users": [
            {"user_id": o.user_id, "follower": o.follower, "reached": o.reached, "served": o.served,
             "rank": o.rank, "weighted_score": o.weighted_score, "filtered_by": o.filtered_by}
            for o in outcomes
        ],
    }


def merge(parts: Sequence[Mapping[str, Any]], weights: Mapping[str, float]) -> dict[str, Any]:
    """The workers' parts as one report (sums; the score distribution over every scored user)."""
    scores = np.array([s for p in parts for s in p["weighted_scores"]], np.float64)
    engagements = {a: float(sum(p["engagements"][a] for p in parts)) for a in PHOENIX_ACTIONS}
    followers = sum(p["followers"] for p in parts)
    sampled = sum(p["oon_sampled"] for p in parts)
    served = sum(p["served_followers"] + p["served_oon_sampled"] for p in parts)
    filtered: dict[str, int] = {}
    for p in parts:
        for reason, n in p["filtered"].items():
            filtered[reason] = filtered.get(reason, 0) + n
    in_network = sum(p["impressions_in_network"] for p in parts)
    out_of_network = sum(p["impressions_out_of_network"] for p in parts)
    return {
        "audience": {
            "followers": followers,
            "oon_sampled": sampled,
            "oon_population": sum(p["oon_population"] for p in parts),
            "oon_reached_sampled": sum(p["oon_reached_sampled"] for p in parts),
        },
        "expected_impressions": {"in_network": in_network, "out_of_network": out_of_network,
                                 "total": in_network + out_of_network},
        "expected_engagements": engagements,
        "expected_value": float(sum(weights[a] * engagements[a] for a in PHOENIX_ACTIONS)),
        "share_in_top_k": served / (followers + sampled) if followers + sampled else 0.0,
        "weighted_score": _distribution(scores),
        "filtered": filtered,
        "workers": [p["worker"] for p in parts],
        "users": sorted((u for p in parts for u in p["users"]), key=lambda u: u["user_id"]),
    }


def _distribution(scores: np.ndarray) -> dict[str, Any]:
    if not len(scores):
        return {"count": 0}
    quantiles = np.quantile(scores, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    counts, edges = np.histogram(scores, bins=10)
    return {
        "count": len(scores),
        "mean": float(scores.mean()),
        **dict(zip(("min", "p10", "p25", "p50", "p75", "p90", "max"), quantiles.tolist(), strict=True)),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def choose_audience(
    author_id: int, users: Sequence[int], following: Mapping[int, frozenset[int]], oon_sample: int, seed: int = 0
) -> tuple[list[int], list[int], int]:
    """(followers, out-of-network sample, out-of-network population) among `users` (one worker's): every
    follower of the author, and a deterministic sample of `oon_sample` of the others (hashed order)."""
    followers = sorted(u for u in users if author_id in following.get(u, frozenset()) and u != author_id)
    fset = set(followers)
    others = [u for u in users if u not in fset and u != author_id]
    others.sort(key=lambda u: ((u * 2654435761 + seed * 40503) % 2**32, u))
    return followers, sorted(others[:oon_sample]), len(others)
