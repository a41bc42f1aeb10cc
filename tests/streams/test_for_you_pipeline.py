"""End-to-end runs of the declared For You and reverse-chron pipelines over in-memory fakes."""

import asyncio
import dataclasses

import numpy as np
import orjson
import pytest

from scoring.dpp import DppReranker
from stores.records import PostCounts, UserFeatures
from streams.config import ForYouConfig, load_config
from streams.for_you import for_you_pipeline, reverse_chron_pipeline
from streams.query import FeedQuery
from streams.stages import CandidateHydrator
from tests.streams.foryou_fakes import (
    HOUR_MS,
    NOW_MS,
    USER,
    FakeEngagementCounts,
    FakePostStore,
    FakeRanker,
    FakeSink,
    FakeUserState,
    post,
    probabilities,
)
from topics.actions import PHOENIX_ACTIONS
from topics.schemas import encode
from topics.validation import decode_ranked_feed

# The tests written for the January design run its preset; the 2026-10 stages have their own tests below.
CONFIG = load_config(env={"FORYOU_PRESET": "seed-2026-01"})
FEATURES = UserFeatures(
    following=frozenset({10, 11}),
    blocked=frozenset({66}),
    muted=frozenset({77}),
    muted_keywords=("spoiler",),
)
POSTS = [
    post(101, 10, age_ms=1 * HOUR_MS, text="hello world"),
    post(102, 11, age_ms=2 * HOUR_MS, text="a provocative take"),
    post(103, 10, age_ms=3 * HOUR_MS, repost_of_post_id=201, repost_of_user_id=20),
    post(104, 10, age_ms=4 * HOUR_MS, text="big SPOILER inside"),
    post(105, 11, age_ms=5 * HOUR_MS, conversation_id=105),
    post(106, 11, age_ms=6 * HOUR_MS, conversation_id=105, in_reply_to_post_id=105, in_reply_to_user_id=11),
    post(107, 11, age_ms=7 * HOUR_MS),  # seen by the client
    post(108, 11, age_ms=1 * HOUR_MS, media="video", video_duration_ms=30_000),
    post(201, 20, age_ms=8 * HOUR_MS),
    post(202, 21, age_ms=9 * HOUR_MS),
    post(203, 22, age_ms=1 * HOUR_MS, subscriber_only=True),
    post(204, 77, age_ms=1 * HOUR_MS),  # muted author, reachable only through a reply below
    post(205, 23, age_ms=1 * HOUR_MS, in_reply_to_post_id=204, in_reply_to_user_id=77),
    post(301, 30, age_ms=72 * HOUR_MS),  # too old
]
# Retrieval corpus: (post, author, similarity); 302 is unknown to the post store; 66 is blocked.
CORPUS = [
    (201, 20, 0.9),
    (202, 21, 0.8),
    (203, 22, 0.7),
    (205, 23, 0.65),
    (301, 30, 0.6),
    (302, 31, 0.5),
    (601, 66, 0.4),
]


RARE_NEGATIVES = {"not_interested": 0.01, "block_author": 0.01, "mute_author": 0.01, "report": 0.01}


def score_fn(post_id: int, author_id: int) -> np.ndarray:
    if post_id == 102:
        return probabilities(0.1, **{**RARE_NEGATIVES, "block_author": 0.9, "report": 0.5})
    return probabilities(0.1, **RARE_NEGATIVES, favorite=0.2 + post_id % 7 / 100)


def build(
    user_state: FakeUserState | None = None,
    ranker: FakeRanker | None = None,
    sink: FakeSink | None = None,
    post_store: FakePostStore | None = None,
    config: ForYouConfig = CONFIG,
    counts: FakeEngagementCounts | None = None,
):
    sink = sink or FakeSink()
    pipeline = for_you_pipeline(
        config=config,
        post_store=post_store or FakePostStore(POSTS, followers={10: 500, 11: 7}),
        user_state=user_state or FakeUserState(features={USER: FEATURES}),
        counts=counts or FakeEngagementCounts(),
        ranker=ranker or FakeRanker(score_fn, CORPUS),
        sink=sink,
    )
    return pipeline, sink


def request(**fields) -> FeedQuery:
    values = {
        "user_id": USER,
        "request_id": "r-1",
        "max_results": 20,
        "now_ms": NOW_MS,
        "seen_ids": frozenset({107}),
        "explain": True,
    }
    values.update(fields)
    return FeedQuery(**values)


def test_for_you_ranks_filters_and_explains():
    ranker = FakeRanker(score_fn, CORPUS)
    pipeline, sink = build(ranker=ranker)
    result = asyncio.run(pipeline.execute(request()))

    served = [p.post_id for p in result.posts]
    assert result.degraded == []
    assert result.model == "phoenix-test-1"
    # 104 muted keyword, 105 shares a conversation with the better scored 106, 107 seen, 201 reposted by 103
    # (first wins), 203 subscriber-only, 205 replies to a muted account, 301 too old, 302 missing, 601 excluded
    # by retrieval.
    assert sorted(served) == [101, 102, 103, 106, 108, 202]
    assert served[-1] == 102, "the post with a high predicted block probability sinks to the bottom"
    by_id = {p.post_id: p for p in result.posts}
    assert (
        by_id[102].score
        < CONFIG.scoring.negative_scores_offset
        <= min(p.score for p in result.posts if p.post_id != 102)
    )
    assert [p.rank for p in result.posts] == list(range(1, 7))
    assert by_id[202].in_network is False and by_id[101].in_network is True

    # The repost was scored as its original; retrieval excluded followed, blocked, muted authors and the user.
    assert (201, 20) in ranker.score_calls[0] and (103, 10) not in ranker.score_calls[0]
    assert ranker.retrieve_calls[0]["exclude_authors"] == {10, 11, 66, 77, USER}
    assert 107 in ranker.retrieve_calls[0]["exclude_posts"]

    # Explain: every post carries its 19 probabilities and its multipliers.
    for p in result.posts:
        assert p.explain is not None
        assert list(p.explain.probabilities) == list(PHOENIX_ACTIONS)  # the heads the model has
        assert p.explain.weighted_score is not None
        assert p.explain.diversity_multiplier is not None and p.explain.oon_multiplier is not None
    assert by_id[202].explain.oon_multiplier == CONFIG.oon.factor
    assert by_id[101].explain.oon_multiplier == 1.0
    assert by_id[202].explain.source == "phoenix_retrieval"
    assert by_id[101].explain.author_follower_count == 500  # author 10, from the author hydrator

    # Explain: every stage is reported with counts, removal reasons and time.
    stages = {(s.kind, s.name): s for s in result.stages}
    assert stages[("source", "Thunder")].candidates_out == 7  # 101..108 less the seen 107
    assert stages[("source", "PhoenixRetrieval")].candidates_out == 6
    expected_filters = [
        "DropDuplicates",
        "CoreDataHydration",
        "Age",
        "SelfPost",
        "RepostDeduplication",
        "IneligibleSubscription",
        "PreviouslySeen",
        "PreviouslyServed",
        "MutedKeyword",
        "AuthorSocialgraph",
        "OONRetweetReply",  # declared, disabled in this preset
    ]
    assert [s.name for s in result.stages if s.kind == "filter"] == expected_filters
    assert stages[("filter", "OONRetweetReply")].status == "disabled"
    assert stages[("filter", "CoreDataHydration")].removed == {"missing_core_data": 1}
    assert stages[("filter", "Age")].removed == {"too_old": 1}
    assert stages[("filter", "RepostDeduplication")].removed == {"duplicate_repost": 1}
    assert stages[("filter", "IneligibleSubscription")].removed == {"subscriber_only": 1}
    assert stages[("filter", "MutedKeyword")].removed == {"muted_keyword": 1}
    assert stages[("filter", "AuthorSocialgraph")].removed == {"muted_author": 1}
    assert stages[("filter", "PreviouslyServed")].status == "disabled"  # a top request
    assert stages[("post_selection_filter", "DedupConversation")].removed == {"same_conversation": 1}
    assert [s.name for s in result.stages if s.kind == "scorer"] == [
        "PhoenixScorer",
        "WeightedScorer",
        "AuthorDiversityScorer",
        "OONScorer",
        "AuthorColdStart",  # declared, disabled in this preset
        "DppReranker",  # declared, disabled in this preset
    ]
    assert all(s.ms >= 0 for s in result.stages)
    for s in result.stages:
        if s.kind in ("filter", "post_selection_filter") and s.status == "ok":
            assert s.candidates_in - s.candidates_out == sum(s.removed.values())

    # Side effects wait for the caller.
    assert sink.served == [] and sink.impressions == []
    asyncio.run(result.side_effects())
    assert sink.served == [(USER, served, NOW_MS)]
    assert [(i["post_id"], i["rank"], i["request_id"]) for i in sink.impressions] == [
        (pid, rank, "r-1") for rank, pid in enumerate(served, start=1)
    ]
    assert sink.impressions[0]["author_id"] == by_id[served[0]].author_id
    assert sink.impressions[0]["score"] == by_id[served[0]].score
    assert sink.impressions[0]["served_at_ms"] == NOW_MS


def test_bottom_requests_continue_without_repeats():
    posts = [post(i, 10, age_ms=i * 60_000) for i in range(1, 13)]
    user_state = FakeUserState(features={USER: UserFeatures(following=frozenset({10}))})
    sink = FakeSink()
    pipeline, _ = build(user_state=user_state, sink=sink, post_store=FakePostStore(posts), ranker=FakeRanker(score_fn))
    pages = []
    for page in range(3):
        result = asyncio.run(pipeline.execute(request(max_results=5, seen_ids=frozenset(), is_bottom_request=page > 0)))
        asyncio.run(result.side_effects())
        user_state.served[USER] = {pid for _, served, _ in sink.served for pid in served}
        pages.append([p.post_id for p in result.posts])
    assert [len(p) for p in pages] == [5, 5, 2]
    assert sorted(pid for p in pages for pid in p) == list(range(1, 13))


def test_in_network_only_skips_retrieval():
    ranker = FakeRanker(score_fn, CORPUS)
    pipeline, _ = build(ranker=ranker)
    result = asyncio.run(pipeline.execute(request(in_network_only=True)))
    assert ranker.retrieve_calls == []
    assert all(p.in_network for p in result.posts)
    assert {s.name: s.status for s in result.stages}["PhoenixRetrieval"] == "disabled"


def test_failing_retrieval_degrades_to_in_network():
    pipeline, _ = build(ranker=FakeRanker(score_fn, CORPUS, fail_retrieve=True))
    result = asyncio.run(pipeline.execute(request()))
    assert result.degraded == ["source:PhoenixRetrieval"]
    assert sorted(p.post_id for p in result.posts) == [101, 102, 103, 106, 108]
    assert result.model == "phoenix-test-1"


def test_failing_phoenix_scoring_falls_back_to_reverse_chron():
    pipeline, _ = build(ranker=FakeRanker(score_fn, CORPUS, fail_score=True))
    result = asyncio.run(pipeline.execute(request()))
    assert result.model == "reverse-chron"
    assert result.degraded == ["scorer:PhoenixScorer", "fallback:reverse-chron"]
    created = [next(p.created_at_ms for p in POSTS if p.post_id == r.post_id) for r in result.posts]
    assert created == sorted(created, reverse=True)


def test_unreadable_user_features_fail_closed():
    pipeline, _ = build(user_state=FakeUserState(failing={"user_features"}))
    result = asyncio.run(pipeline.execute(request()))
    assert result.posts == []
    assert result.degraded == ["query_hydrator:UserFeatures"]


def test_failing_core_hydration_degrades_to_an_empty_feed():
    store = FakePostStore(POSTS, failing={"get_many"})
    pipeline, _ = build(post_store=store)
    result = asyncio.run(pipeline.execute(request()))
    assert result.posts == []
    assert "hydrator:CoreData" in result.degraded


def test_post_deleted_after_scoring_is_dropped_and_backfilled():
    store = FakePostStore(POSTS)
    pipeline, _ = build(post_store=store)
    first = asyncio.run(pipeline.execute(request(max_results=3)))
    top = first.posts[0].post_id
    store.deleted.add(top)
    again = asyncio.run(pipeline.execute(request(max_results=3)))
    assert top not in [p.post_id for p in again.posts]
    assert len(again.posts) == 3
    assert {s.name: s for s in again.stages}["Visibility"].removed.get("deleted") == 1


def test_reverse_chron_is_in_network_newest_first_without_the_model():
    sink = FakeSink()
    pipeline = reverse_chron_pipeline(
        config=CONFIG,
        post_store=FakePostStore(POSTS),
        user_state=FakeUserState(features={USER: FEATURES}),
        sink=sink,
    )
    result = asyncio.run(pipeline.execute(request()))
    assert result.model == "reverse-chron"
    assert result.degraded == []
    assert [p.post_id for p in result.posts] == [108, 101, 102, 103, 105]  # 108 and 101 are as old: higher id first
    assert all(p.in_network for p in result.posts)


@pytest.mark.parametrize("explain", [False, True])
def test_wire_form(explain: bool):
    pipeline, _ = build()
    result = asyncio.run(pipeline.execute(request(explain=explain)))
    record = result.to_record("r-1", USER, 12.5)
    assert decode_ranked_feed(encode(record)) == record  # consumers decode everything, explain included
    wire = record.to_dict()
    assert set(wire) == {"v", "request_id", "user_id", "status", "error", "posts", "model", "latency_ms"} | (
        {"explain"} if explain else set()
    )
    assert wire["v"] == 1 and wire["status"] == "ok" and wire["error"] is None
    assert all(("explain" in p) is explain for p in wire["posts"])
    assert set(wire["posts"][0]) >= {"post_id", "author_id", "rank", "score", "in_network"}
    if explain:
        assert {"degraded", "stages"} == set(wire["explain"])
        assert len(wire["posts"][0]["explain"]["probabilities"]) == 19
        assert {"view_count", "mutual_follow", "cold_start_lifted", "dpp"} <= set(wire["posts"][0]["explain"])
        assert all(type(p) is float for p in wire["posts"][0]["explain"]["probabilities"].values())
    assert orjson.loads(orjson.dumps(wire)) == wire  # plain JSON types only (no numpy scalars)


PRODUCTION = load_config(env={})


def production_run(**fields):
    """The production-2026-10 pipeline over the same world, plus a popular post, counts and a mutual follow."""
    posts = [*POSTS, post(401, 40, age_ms=HOUR_MS // 2, text="a small author's first post")]
    store = FakePostStore(posts, followers={10: 500, 11: 7, 40: 3}, follow_edges={(10, USER)})
    counts = FakeEngagementCounts({401: PostCounts(views=3, favorites=1), 202: PostCounts(views=5_000)})
    pipeline, _ = build(post_store=store, config=PRODUCTION, counts=counts)
    result = asyncio.run(pipeline.execute(request(**fields)))
    return result, {p.post_id: p for p in result.posts}, {(s.kind, s.name): s for s in result.stages}


def test_the_production_preset_runs_every_new_stage_and_explains_it():
    result, by_id, stages = production_run()
    assert result.degraded == []
    for kind, name in [
        ("source", "PopularPosts"),
        ("hydrator", "EngagementCounts"),
        ("hydrator", "BidirectionalFollow"),
        ("filter", "OONRetweetReply"),
        ("scorer", "AuthorColdStart"),
        ("scorer", "DppReranker"),
    ]:
        assert stages[(kind, name)].status == "ok", name
    assert stages[("source", "PopularPosts")].candidates_out >= 1
    assert by_id[401].explain.source == "popular" and by_id[401].explain.view_count == 3
    assert by_id[101].explain.mutual_follow is True and by_id[102].explain.mutual_follow is False
    # No content-embedding hydrator fills the candidates here: DPP leaves the scores as they are and says so.
    assert {p.explain.dpp for p in result.posts} == {"fallback: no content embeddings"}
    # In-network replies and reposts get the OON factor in this preset.
    assert by_id[103].explain.oon_multiplier == 0.75 and by_id[101].explain.oon_multiplier == 1.0
    assert all(p.score >= 0 for p in result.posts)


def test_the_production_preset_serves_nothing_twice_even_on_a_refresh():
    _, by_id, _ = production_run(served_ids=frozenset({101}))
    assert 101 not in by_id  # the served filter applies to top requests too


class _Embeddings(CandidateHydrator):
    """Stands in for the content issue's hydrator: an embedding per post, two posts sharing one."""

    name = "TestContentEmbeddings"
    fields = frozenset({"content_embedding"})

    async def hydrate(self, query, candidates):
        def vector(post_id: int) -> np.ndarray:
            rng = np.random.default_rng(101 if post_id == 108 else post_id)  # 108 duplicates 101's content
            return rng.normal(size=16).astype(np.float32)

        return {"content_embedding": [vector(c.post_id) for c in candidates]}


def test_with_content_embeddings_dpp_selects_and_drops_a_near_duplicate():
    pipeline, _ = build(config=PRODUCTION)
    pipeline = dataclasses.replace(pipeline, hydrators=[*pipeline.hydrators, _Embeddings()])
    config_small = dataclasses.replace(PRODUCTION.dpp, max_selected=4)
    scorers = [DppReranker(config_small) if s.name == "DppReranker" else s for s in pipeline.scorers]
    pipeline = dataclasses.replace(pipeline, scorers=scorers)
    result = asyncio.run(pipeline.execute(request()))
    outcomes = {p.post_id: p.explain.dpp for p in result.posts}
    assert sum(o == "selected" for o in outcomes.values()) == 4
    assert set(outcomes.values()) == {"selected", "dropped"}
    ranked = [p.post_id for p in result.posts]
    assert all(outcomes[i] == "selected" for i in ranked[:4])  # the selected lead, the rest follow at 0
    assert not (outcomes.get(101) == "selected" and outcomes.get(108) == "selected")
