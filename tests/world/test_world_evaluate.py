"""Benchmark records of the world and the offline ranking report against the ground truth."""

from pathlib import Path

import orjson
import pytest

from foryou.benchmarks import merge_results
from foryou.world.config import preset
from foryou.world.evaluate import (
    PAIRWISE_TARGET,
    format_ranking,
    online_records,
    ranking_records,
    ranking_vs_truth,
)
from foryou.world.history import simulate_history
from foryou.world.metrics import OnlineMetrics, ServedPost
from foryou.world.world import World

RECORD_KEYS = {"name", "metric", "value", "unit", "target", "params", "at"}


def _metrics() -> OnlineMetrics:
    metrics = OnlineMetrics(window_ms=1_000)
    for policy, actions in (("reverse-chron", ["favorite"]), ("phoenix-trained", ["favorite", "reply", "report"])):
        metrics.record_served(policy, 1, 0, [ServedPost(10, 2, 0, True), ServedPost(11, 3, 0, False)])
        for action in actions:
            metrics.record_engagement(1, 10, action, 5)
    return metrics


def test_online_records_per_policy() -> None:
    records = online_records(_metrics(), {"seed": 0})
    assert all(set(r) == RECORD_KEYS for r in records)
    values = {(r["name"], r["params"]["policy"]): r["value"] for r in records}
    assert values[("world.engagements_per_impression", "reverse-chron")] == 0.5
    assert values[("world.engagements_per_impression", "phoenix-trained")] == 1.0
    assert values[("world.negatives_per_impression", "phoenix-trained")] == 0.5
    assert values[("world.negatives_per_impression", "reverse-chron")] == 0.0


def test_merge_results_replaces_same_name_policy_and_preset(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    path.write_bytes(orjson.dumps([{"name": "other", "params": {}}]))
    merge_results(path, online_records(_metrics(), {"run": 1}))
    merge_results(path, online_records(_metrics(), {"run": 2})[:1])
    merge_results(path, online_records(_metrics(), {"run": 3, "preset": "seed-2026-01"})[:1])
    entries = orjson.loads(path.read_bytes())
    per_policy = 5  # engagements, negatives, author diversity, out-of-network share, cold-start exposure
    assert len(entries) == 1 + 2 * per_policy + 1
    runs = [e["params"].get("run") for e in entries if e["name"] == "world.engagements_per_impression"]
    assert sorted(runs) == [1, 2, 3]


def _report(pairwise: float) -> dict:
    metrics = {name: {"pairwise_accuracy": pairwise, "ndcg_at_10": 0.7, "groups": 5, "pairs": 40}
               for name in ("trained", "random")}
    return {"version": "v1", "metrics": metrics, "held_out_requests": 5, "held_out_lines": 30}


def test_ranking_records_carry_the_target() -> None:
    records = ranking_records(_report(0.83), {"seed": 0})
    by_name = {r["name"]: r for r in records}
    assert by_name["world.pairwise_accuracy_vs_truth"]["value"] == 0.83
    assert by_name["world.pairwise_accuracy_vs_truth"]["target"] == PAIRWISE_TARGET
    assert by_name["world.ndcg10_vs_truth"]["value"] == 0.7
    assert all(r["params"]["policy"] == "phoenix-trained" for r in records)
    assert "0.8300" in format_ranking(_report(0.83))


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path, Path]:
    import jax

    from phoenix.checkpoint import save_checkpoint
    from phoenix.config import DEMO
    from phoenix.model import init_params

    world = World.generate(preset("tiny", seed=2, num_users=60, num_posts=800))
    directory = tmp_path_factory.mktemp("ranking")
    history = simulate_history(world, directory, hours=10, seed=0)
    checkpoint = directory / "untrained.ckpt"
    save_checkpoint(checkpoint, jax.device_get(init_params(DEMO, jax.random.PRNGKey(0))), DEMO,
                    {"holdout_fraction": 0.2, "options": {"num_candidates": 8}})
    return world, checkpoint, history.log_path


def test_ranking_report_compares_with_references(untrained_checkpoint: tuple[World, Path, Path]) -> None:
    world, checkpoint, log = untrained_checkpoint
    report = ranking_vs_truth(world, checkpoint, log)
    metrics = report["metrics"]
    assert set(metrics) == {"trained", "untrained", "newest_first", "random"}
    # The checkpoint holds the seed-0 initial parameters, so it ranks exactly as the untrained reference.
    assert metrics["trained"] == metrics["untrained"]
    for values in metrics.values():
        assert 0.0 <= values["pairwise_accuracy"] <= 1.0 and 0.0 <= values["ndcg_at_10"] <= 1.0
    assert report["held_out_requests"] > 0 and report["held_out_lines"] >= report["held_out_requests"]


def test_a_content_checkpoint_is_evaluated_with_the_worlds_posts_and_retrieval(
    untrained_checkpoint: tuple[World, Path, Path], tmp_path: Path
) -> None:
    import dataclasses

    import jax

    from foryou.world.history import POSTS_FILE
    from foryou.world.offline import posts_records
    from foryou.world.retrieval import retrieval_recall_vs_truth, retrieval_records
    from phoenix.checkpoint import save_checkpoint
    from phoenix.config import DEMO
    from phoenix.content import CONTENT_DIM, ENCODER_ID, load_encoder
    from phoenix.model import init_params
    from phoenix.posts import encode_posts, iter_posts
    from phoenix.semantic_ids import fit_codebooks

    world, _, log = untrained_checkpoint
    exported = list(iter_posts(log.parent / POSTS_FILE))
    assert len(exported) == world.num_posts and exported[0].text
    cfg = dataclasses.replace(DEMO, content_dim=CONTENT_DIM, semantic_id_levels=2, semantic_id_size=8,
                              content_encoder=ENCODER_ID, affinity_buckets=8)
    codebooks = fit_codebooks(encode_posts(posts_records(world), load_encoder()).vectors, 2, 8)
    checkpoint = tmp_path / "content.ckpt"
    save_checkpoint(checkpoint, jax.device_get(init_params(cfg, jax.random.PRNGKey(0))), cfg,
                    {"holdout_fraction": 0.2, "options": {"num_candidates": 8}}, codebooks=codebooks)
    metrics = ranking_vs_truth(world, checkpoint, log)["metrics"]
    assert 0.0 <= metrics["trained"]["pairwise_accuracy"] <= 1.0
    report = retrieval_recall_vs_truth(world, checkpoint, log, users=5, k=20)
    assert report["content"] and report["users"] == 5 and report["live_posts"] > 20
    assert 0.0 <= report["recall"]["model"] <= 1.0 and 0.0 <= report["recall"]["random"] <= 1.0
    records = retrieval_records(report, {"preset": "tiny", "seed": 2})
    assert {r["name"] for r in records} == {"world.retrieval_recall20_vs_truth"}
    assert {r["params"]["policy"] for r in records} == {"phoenix-trained", "random"}
    assert all(set(r) == RECORD_KEYS for r in records)
