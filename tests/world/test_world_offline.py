"""Engagement-log export, ground-truth ranking metrics, the offline loop and the CLI."""

from pathlib import Path

import numpy as np
import orjson
import pytest

from foryou.world.cli import main
from foryou.world.client import ClientBehaviour
from foryou.world.config import preset
from foryou.world.offline import Impression, export_engagement_log, ground_truth_ranking_metrics
from foryou.world.posts import POST_ID_BASE
from foryou.world.simulate import oracle_policy, random_policy, simulate_offline
from foryou.world.truth import GroundTruth
from foryou.world.world import World


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(preset("tiny", seed=5))


def _engagement(user: int, post: int, action: str, ts: int) -> dict:
    return {"v": 1, "user_id": user, "post_id": post, "author_id": 9, "action": action,
            "surface": "home_for_you", "ts_ms": ts, "dwell_ms": None}


def test_export_engagement_log(tmp_path: Path) -> None:
    impressions = [
        Impression(1, 100, 9, 1_000, "r1"),
        Impression(1, 101, 9, 1_000, "r1"),
        Impression(1, 100, 9, 5_000, "r2"),  # the same post served again later
        Impression.from_wire({"v": 1, "request_id": "r3", "user_id": 2, "post_id": 100, "author_id": 9,
                              "rank": 0, "score": 1.5, "served_at_ms": 2_000}),
    ]
    engagements = [
        _engagement(1, 100, "repost", 1_500),
        _engagement(1, 100, "favorite", 1_200),
        _engagement(1, 100, "favorite", 1_300),  # listed once
        _engagement(1, 100, "dwell", 6_000),
        _engagement(1, 100, "click", 500),  # before every impression: joins the first
        _engagement(3, 100, "favorite", 1_000),  # never impressed: left out
    ]
    path = tmp_path / "log" / "engagements.jsonl"
    assert export_engagement_log(impressions, engagements, path) == 4
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0] == {"user_id": 1, "post_id": 100, "author_id": 9, "ts_ms": 1_000, "surface": "home_for_you",
                        "actions": ["favorite", "repost", "click"], "request_id": "r1"}
    assert lines[1]["actions"] == []
    assert lines[2]["actions"] == ["dwell"] and lines[2]["request_id"] == "r2"
    assert lines[3]["actions"] == [] and lines[3]["user_id"] == 2 and lines[3]["ts_ms"] == 2_000
    with pytest.raises(KeyError):
        export_engagement_log(impressions, [_engagement(1, 100, "like", 1_000)], path)


def test_export_writes_creation_times_that_phoenix_reads(tmp_path: Path) -> None:
    from phoenix.log import read_log

    impressions = [Impression(1, 100, 9, 1_000, "r1"), Impression(1, 101, 9, 1_000, "r1")]
    path = tmp_path / "log.jsonl"
    export_engagement_log(impressions, [_engagement(1, 100, "favorite", 1_100)], path,
                          created_ms=lambda posts: posts * 3)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["post_created_at_ms"] for line in lines] == [300, 303]
    parsed = read_log(path)
    assert [line.post_age_ms for line in parsed] == [700.0, 697.0]
    assert parsed[0].actions == ("favorite",)


def test_ranking_metrics_perfect_reversed_and_tied(world: World) -> None:
    truth = GroundTruth(world)
    rng = np.random.default_rng(0)
    groups, per_group = 8, 25
    user_ids = np.repeat(rng.integers(1, world.num_users + 1, groups), per_group)
    post_ids = POST_ID_BASE + rng.integers(0, world.num_posts, groups * per_group)
    request_ids = np.repeat([f"req-{g}" for g in range(groups)], per_group)
    now = world.config.end_ms
    values = truth.expected_value(user_ids, post_ids, now)

    perfect = ground_truth_ranking_metrics(truth, values, user_ids, post_ids, request_ids, now)
    assert perfect.pairwise_accuracy == pytest.approx(1.0)
    assert perfect.ndcg_at_10 == pytest.approx(1.0)
    assert perfect.groups == groups and perfect.pairs > 0

    reversed_ = ground_truth_ranking_metrics(truth, -values, user_ids, post_ids, request_ids, now)
    assert reversed_.pairwise_accuracy == pytest.approx(0.0)
    assert reversed_.ndcg_at_10 < perfect.ndcg_at_10

    tied = ground_truth_ranking_metrics(truth, np.zeros_like(values), user_ids, post_ids, request_ids, now)
    assert tied.pairwise_accuracy == pytest.approx(0.5)


def test_ranking_metrics_are_per_request(world: World) -> None:
    # Scores that order each group right but are not comparable across groups still score perfectly.
    truth = GroundTruth(world)
    user_ids = np.array([1, 1, 1, 2, 2, 2])
    post_ids = POST_ID_BASE + np.array([10, 200, 3000, 11, 201, 3001])
    now = world.config.end_ms
    values = truth.expected_value(user_ids, post_ids, now)
    offsets = np.array([0, 0, 0, 1e6, 1e6, 1e6])
    metrics = ground_truth_ranking_metrics(truth, values - offsets, user_ids, post_ids,
                                           ["a", "a", "a", "b", "b", "b"], now)
    assert metrics.pairwise_accuracy == pytest.approx(1.0)


def test_oracle_policy_beats_random(world: World) -> None:
    client = ClientBehaviour(world)
    random_run = simulate_offline(world, random_policy(1), 150, seed=2, policy_name="random", client=client)
    oracle_run = simulate_offline(world, oracle_policy(client), 150, seed=2, policy_name="oracle", client=client)
    random_total = random_run.metrics.total("random")
    oracle_total = oracle_run.metrics.total("oracle")
    assert oracle_total.value_per_impression > random_total.value_per_impression + 0.1
    assert oracle_total.engagements_per_impression > 1.5 * random_total.engagements_per_impression
    assert oracle_total.negatives_per_impression < random_total.negatives_per_impression
    assert random_total.requests == oracle_total.requests == 150
    assert oracle_run.impressions and oracle_run.engagements
    assert {e["post_id"] for e in oracle_run.engagements} <= {i.post_id for i in oracle_run.impressions}


def test_offline_loop_is_deterministic(world: World) -> None:
    client = ClientBehaviour(world)
    first = simulate_offline(world, random_policy(4), 60, seed=9, client=client)
    second = simulate_offline(world, random_policy(4), 60, seed=9, client=client)
    assert first.engagements == second.engagements and first.impressions == second.impressions
    assert first.feed_requests == second.feed_requests


def test_cli_generate_writes_topic_files(tmp_path: Path) -> None:
    out = tmp_path / "world"
    assert main(["generate", "--preset", "tiny", "--seed", "3", "--out", str(out)]) == 0
    manifest = orjson.loads((out / "world.json").read_bytes())
    assert manifest["config"]["num_users"] == 300 and manifest["config"]["seed"] == 3
    tweets = [orjson.loads(line) for line in (out / "tweet-events.jsonl").read_bytes().splitlines()]
    social = [orjson.loads(line) for line in (out / "social-graph-events.jsonl").read_bytes().splitlines()]
    assert len(tweets) == manifest["events"]["tweet-events"]
    assert len(social) == manifest["events"]["social-graph-events"]
    assert sum(t["type"] == "create" for t in tweets) == 4_000
    assert {s["type"] for s in social} >= {"follow", "block", "mute", "mute_keyword"}
    events = list(World.generate(preset("tiny", seed=3)).events())
    assert [e.value for e in events if e.topic == "tweet-events"] == tweets
