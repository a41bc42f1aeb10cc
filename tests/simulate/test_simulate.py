"""The draft simulator: the batched path agrees with the production pipeline run with the draft in it."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.draft import Draft
from streams.simulate import choose_audience, merge, summarize
from tests.simulate.sim_world import TINY_AGED, TINY_CONTENT, USERS, SimWorld
from topics.actions import PHOENIX_ACTIONS
from topics.validation import InvalidRecord


@pytest.fixture(scope="module", params=[TINY_AGED, TINY_CONTENT], ids=lambda model: model.name)
def world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[SimWorld]:
    w = SimWorld(Path(tmp_path_factory.mktemp("sim")), model=request.param)
    yield w
    w.close()


def test_batched_rank_equals_the_pipeline_run_with_the_draft(world: SimWorld) -> None:
    draft = Draft(author_id=105, text="our launch is today", media="video", video_duration_ms=30_000)
    outcomes = asyncio.run(world.simulator.simulate_audience(draft, USERS, top_k=10, now_ms=world.now_ms))
    assert [o.user_id for o in outcomes] == USERS
    served_somewhere = 0
    for outcome in outcomes:
        exact = asyncio.run(world.simulator.simulate_user(draft, outcome.user_id, top_k=10, now_ms=world.now_ms))
        assert exact["follower"] == outcome.follower
        if outcome.filtered_by is None:
            assert exact["rank"] == outcome.rank, (outcome, exact["rank"])
            assert exact["explain"]["weighted_score"] == pytest.approx(outcome.weighted_score, rel=1e-4)
            assert exact["explain"]["score"] == pytest.approx(outcome.score, rel=1e-4)
        else:
            assert exact["rank"] is None  # the pipeline's filter removed it too
        assert exact["served"] == outcome.served
        served_somewhere += outcome.served
    # The muted keyword removes it for user 7; the world has both served and unserved users.
    assert next(o for o in outcomes if o.user_id == 7).filtered_by == "MutedKeyword:muted_keyword"
    if world.ranker.cfg.content_dim == 0:  # this world's untrained content model ranks the draft low for all
        assert 0 < served_somewhere < len(USERS)


def test_exact_path_reports_stages_and_the_feed_with_the_draft(world: SimWorld) -> None:
    follower = next(u for u, f in world.following().items() if 105 in f and u != 7)
    result = asyncio.run(world.simulator.simulate_user(Draft(author_id=105, text="hi"), follower, top_k=5))
    assert result["follower"] and result["reached"]
    names = [s["name"] for s in result["stages"]]
    assert "Draft" in names and "PhoenixScorer" in names and "TopK" in names
    assert len(result["feed"]) <= 5
    assert result["served"] == any(p["draft"] for p in result["feed"])


def test_cache_reuses_baselines_until_the_model_changes(world: SimWorld) -> None:
    sim = world.simulator
    first = asyncio.run(sim.baseline(1, 10, world.now_ms))
    assert asyncio.run(sim.baseline(1, 10, world.now_ms)) is first


def test_audience_is_followers_plus_a_deterministic_sample() -> None:
    following = {1: frozenset({9}), 2: frozenset(), 3: frozenset({9}), 4: frozenset(), 5: frozenset(), 9: frozenset()}
    followers, sample, population = choose_audience(9, list(following), following, oon_sample=2)
    assert followers == [1, 3] and len(sample) == 2 and population == 3 and 9 not in sample
    assert choose_audience(9, list(following), following, oon_sample=2) == (followers, sample, population)


def test_summaries_scale_the_sample_and_merge_over_workers(world: SimWorld) -> None:
    draft = Draft(author_id=105, text="x")
    outcomes = asyncio.run(world.simulator.simulate_audience(draft, USERS[:20], top_k=10, now_ms=world.now_ms))
    part = summarize(outcomes, oon_population=100, weights=world.config.weights, worker="a")
    sampled = sum(not o.follower for o in outcomes)
    assert part["impressions_out_of_network"] == pytest.approx(part["served_oon_sampled"] * 100 / sampled)
    report = merge([part, part], world.config.weights)
    assert report["expected_impressions"]["in_network"] == 2 * part["impressions_in_network"]
    assert report["weighted_score"]["count"] == 2 * len(part["weighted_scores"])
    assert set(report["expected_engagements"]) == set(PHOENIX_ACTIONS)
    assert 0.0 <= report["share_in_top_k"] <= 1.0


def test_bad_drafts_are_refused_with_the_reason(world: SimWorld) -> None:
    with pytest.raises(ValueError, match="media"):
        Draft.from_json({"author_id": 1, "media": "gif"})
    with pytest.raises(ValueError, match="author_id"):
        Draft.from_json({"text": "no author"})
    with pytest.raises(ValueError, match="unknown fields"):
        Draft.from_json({"author_id": 1, "colour": "red"})
    with pytest.raises(InvalidRecord):
        Draft(author_id=1, text="x" * 100_000).tweet_event(world.now_ms, world.post_store)


def test_cli_formats_a_report_and_a_user(world: SimWorld) -> None:
    from foryou.simulate_post import format_report, format_user

    draft = Draft(author_id=105, text="x", media="photo")
    outcomes = asyncio.run(world.simulator.simulate_audience(draft, USERS, top_k=10, now_ms=world.now_ms))
    report = merge([summarize(outcomes, oon_population=30, weights=world.config.weights, worker="w")],
                   world.config.weights)
    follower = next(u["user_id"] for u in report["users"] if u["follower"])
    sample = asyncio.run(world.simulator.simulate_user(draft, follower, top_k=10, now_ms=world.now_ms))
    report.update(draft=draft.to_json(), post_id=draft.effective_post_id(), top_k=10, model="m", latency_ms=1.0,
                  sample_user=sample)
    text = format_report(report)
    assert "expected impressions" in text and "weighted score: p10" in text and "expected engagements" in text
    assert f"user {follower}: follower" in text and "PhoenixScorer" in text
    assert format_user(sample).count("\n") >= len(sample["stages"])
