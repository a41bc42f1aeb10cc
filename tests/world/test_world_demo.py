"""The demo's pure parts: the checkpoint cache key, the explained feed and the target verdict."""

from foryou.demo import cache_key, comparison_lines, format_explained, parse_args
from foryou.world.config import preset
from foryou.world.metrics import OnlineMetrics, ServedPost
from foryou.world.world import World


def test_cache_key_follows_every_input() -> None:
    base = cache_key(preset("tiny", seed=0), 36.0, 300, "abc")
    assert base == cache_key(preset("tiny", seed=0), 36.0, 300, "abc")
    changed = [
        cache_key(preset("tiny", seed=1), 36.0, 300, "abc"),
        cache_key(preset("tiny", seed=0, num_users=301), 36.0, 300, "abc"),
        cache_key(preset("tiny", seed=0), 24.0, 300, "abc"),
        cache_key(preset("tiny", seed=0), 36.0, 200, "abc"),
        cache_key(preset("tiny", seed=0), 36.0, 300, "abd"),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_explained_feed_shows_posts_and_stages() -> None:
    world = World.generate(preset("tiny", seed=0, num_users=40, num_posts=300))
    post_id = int(world.post_ids()[-1])
    author = int(world.author_ids(world.post_ids()[-1:])[0])
    answer = {
        "user_id": 1 if author != 1 else 2, "model": "demo-v1", "latency_ms": 12.0, "world_now_ms": world.config.end_ms,
        "posts": [{"post_id": post_id, "author_id": author, "rank": 1, "score": 1.25, "in_network": False,
                   "explain": {"probabilities": {"favorite": 0.3, "reply": 0.01, "dwell": 0.6}, "weighted_score": 0.45,
                               "diversity_multiplier": 1.0, "oon_multiplier": 0.8, "source": "phoenix_retrieval",
                               "retrieval_score": 0.2}}],
        "explain": {"degraded": [], "stages": [{"kind": "filter", "name": "AgeFilter", "status": "ok", "in": 40,
                                                "out": 31, "removed": {"too_old": 9}, "ms": 0.4, "error": None}]},
    }
    text = "\n".join(format_explained(world, answer))
    assert "dwell 0.60, favorite 0.30, reply 0.01" in text
    assert "phoenix_retrieval" in text and "0.450" in text and "oon" in text
    assert "AgeFilter" in text and "40 -> 31" in text and "too_old 9" in text


def test_verdict_needs_both_more_engagements_and_fewer_negatives() -> None:
    metrics = OnlineMetrics(window_ms=1_000)
    for policy, actions in (("reverse-chron", ["favorite", "report"]), ("phoenix-trained", ["favorite", "reply"])):
        metrics.record_served(policy, 1, 0, [ServedPost(10, 2, 0, True), ServedPost(11, 3, 0, True)])
        for action in actions:
            metrics.record_engagement(1, 10, action, 1)
    [line] = comparison_lines(metrics)
    assert "2.00x" in line and ": met" in line
    assert parse_args([]).policies == ["reverse-chron", "phoenix-untrained", "phoenix-trained", "phoenix-online"]


def test_online_policy_line_compares_its_last_window_with_reverse_chron() -> None:
    metrics = OnlineMetrics(window_ms=1_000)
    metrics.record_served("reverse-chron", 1, 0, [ServedPost(10, 2, 0, True), ServedPost(11, 3, 0, True)])
    metrics.record_engagement(1, 10, "favorite", 1)  # reverse-chron: 0.5 per impression
    for window, liked in ((0, False), (1, True)):  # the online policy learns: nothing, then both posts
        at = window * 1_000
        metrics.record_served("phoenix-online", 2, at, [ServedPost(20 + window, 2, 0, True),
                                                         ServedPost(30 + window, 3, 0, True)])
        if liked:
            metrics.record_engagement(2, 20 + window, "favorite", at + 1)
            metrics.record_engagement(2, 30 + window, "favorite", at + 2)
    [online] = [line for line in comparison_lines(metrics) if line.startswith("phoenix-online")]
    assert "first window 0.0000, last window 1.0000 (2 windows)" in online
    assert "the last beats reverse-chron's 0.5000" in online


def test_every_model_source_exists() -> None:
    from foryou.demo import _MODEL_SOURCES, REPO

    assert all((REPO / name).is_file() for name in _MODEL_SOURCES)


def test_preset_comparison_runs_the_trained_model_per_preset_and_records_the_preset() -> None:
    from foryou.world.evaluate import online_records
    from foryou.world.experiment import preset_specs

    args = parse_args(["--compare-presets"])
    assert args.compare_presets and args.presets == ["seed-2026-01", "production-2026-10"]
    specs = preset_specs("model.ckpt", args.presets)
    assert [s.name for s in specs] == ["phoenix-trained@seed-2026-01", "phoenix-trained@production-2026-10"]
    assert {s.env["FORYOU_CHECKPOINT"] for s in specs} == {"model.ckpt"}
    assert [s.env["FORYOU_PRESET"] for s in specs] == args.presets

    metrics = OnlineMetrics(window_ms=1_000)
    for spec, actions in zip(specs, (["favorite"], ["favorite", "reply"]), strict=True):
        metrics.record_served(spec.name, 1, 0, [ServedPost(10, 2, 0, True, small_author=True),
                                                ServedPost(11, 3, 0, False)])
        for action in actions:
            metrics.record_engagement(1, 10, action, 1)
    [line] = comparison_lines(metrics)
    assert "engagements per impression 1.0000 vs 0.5000" in line and "cold-start exposure 0.5000" in line
    records = online_records(metrics, {"preset": "tiny"})
    assert {r["params"]["pipeline_preset"] for r in records} == set(args.presets)
    assert {r["name"] for r in records} >= {"world.author_diversity", "world.out_of_network_share",
                                            "world.cold_start_share"}


def test_preset_policies_give_valid_kafka_names() -> None:
    import re

    from foryou.world import experiment

    [spec] = experiment.preset_specs("m.ckpt", ["seed-2026-01"])
    app_id = experiment.new_app_id(spec)  # prefixes the worker's internal topics
    assert re.fullmatch(r"[A-Za-z0-9._-]+", app_id) and "seed-2026-01" in app_id
    assert experiment.new_app_id(spec) != app_id
