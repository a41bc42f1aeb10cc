"""How well a trained Phoenix ranks against the world's ground truth, and the world's benchmark records.

Offline ranking (`ranking_vs_truth`): the held-out part of the engagement log the checkpoint was trained
on (the same chronological split as `phoenix.evaluate`) is scored by the model; each post's score is the
pipeline's weighted sum Σ w_a P(a) with the configured weights (streams/defaults.toml; the served ranking
adds only the short-video vqv gate and the diversity and out-of-network multipliers). Pairwise accuracy
and NDCG@10 are measured against the ground-truth expected value (`ground_truth_ranking_metrics`, under
DEFAULT_WEIGHTS) within each held-out request, next to three references scored on the same lines: the
untrained model (seed 0, as an untrained worker serves), newest-first and random order. A model whose
config has ages gets each candidate's age at its impression from the log's `post_created_at_ms`, as serving
gets it from the post's creation time at request time.

Benchmark records (bench/results/world.json, a JSON list of {"name","metric","value","unit","target",
"params","at"}): `world.engagements_per_impression` and `world.negatives_per_impression` per online policy
(params.policy; params also hold the first and last window's engagements per impression), and
`world.pairwise_accuracy_vs_truth` (target 0.8) and `world.ndcg10_vs_truth` for the trained ranker, merged into
the file by `foryou.benchmarks.merge_results`.
"""

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from foryou.benchmarks import record
from foryou.tables import render_table
from foryou.world.config import HOUR_MS
from foryou.world.metrics import OnlineMetrics
from foryou.world.offline import RankingMetrics, ground_truth_ranking_metrics, posts_records
from foryou.world.truth import GroundTruth
from foryou.world.world import World

# Issue 10's offline targets against the world's ground truth (the oracle scores 1.0 on both).
PAIRWISE_TARGET = 0.75
NDCG10_TARGET = 0.85
ENGAGEMENT_RATIO_TARGET = 1.3  # trained Phoenix vs reverse-chron, engagements per impression


def pipeline_weights() -> np.ndarray:
    """The serving pipeline's action weights in ACTIONS order (the configured preset's)."""
    from scoring.weighted import weight_vector
    from streams.config import load_config

    return weight_vector(load_config().weights)


def ranking_vs_truth(
    world: World, checkpoint: str | Path, log_path: str | Path, *, seed: int = 0, batch_size: int = 128,
) -> dict[str, Any]:
    """Pairwise accuracy and NDCG@10 vs the ground truth on the held-out log (module docstring)."""
    import jax

    from phoenix.checkpoint import load_checkpoint
    from phoenix.evaluate import model_outputs
    from phoenix.examples import NegativeSampling
    from phoenix.log import file_sha256, read_log
    from phoenix.model import init_params
    from phoenix.posts import content_for_model
    from phoenix.train import prepare

    ckpt = load_checkpoint(checkpoint)
    meta = ckpt.meta
    same_data = meta.get("data_sha256") == file_sha256(log_path)
    num_candidates = int(meta.get("options", {}).get("num_candidates", 8))
    # A model with content reads the world's posts as training did (the world's own posts file).
    content = content_for_model(ckpt.cfg, ckpt.codebooks, posts_records(world)) if ckpt.cfg.has_content else None
    data = prepare(
        read_log(log_path), num_candidates, float(meta.get("holdout_fraction", 0.1)),
        NegativeSampling(4, 3 * HOUR_MS, seed), split_ts_ms=int(meta["split_ts_ms"]) if same_data else None,
        content=content,
    )
    examples = data.held_out_examples
    users, posts, groups, times = [], [], [], []
    for example in examples:
        for post_id, _ in example.candidates:
            users.append(example.user_id)
            posts.append(post_id)
            groups.append(example.group)
            times.append(example.ts_ms)
    arrays = np.asarray(users), np.asarray(posts), np.asarray(groups), np.asarray(times)
    weights = pipeline_weights()

    def model_scores(params: Any) -> np.ndarray:
        probs, _ = model_outputs(jax.device_put(params), ckpt.cfg, data, num_candidates, batch_size)
        heads = weights[: probs.shape[-1]]  # the model's heads; the optional ones it lacks weigh nothing
        return np.concatenate([probs[n, : len(ex.candidates)] @ heads for n, ex in enumerate(examples)])

    truth = GroundTruth(world)
    rng = np.random.default_rng(seed)
    scores = {
        "trained": model_scores(ckpt.params),
        "untrained": model_scores(init_params(ckpt.cfg, jax.random.PRNGKey(0))),
        "newest_first": world.created_ms(arrays[1]).astype(np.float64),
        "random": rng.random(arrays[1].size),
    }
    results = {name: ground_truth_ranking_metrics(truth, s, *arrays) for name, s in scores.items()}
    return {
        "checkpoint": str(checkpoint),
        "version": ckpt.version,
        "log": str(log_path),
        "held_out_lines": int(arrays[1].size),
        "held_out_requests": results["trained"].groups,
        "score": "pipeline weighted sum of the 19 predicted probabilities",
        "metrics": {name: asdict(result) for name, result in results.items()},
    }


def format_ranking(report: Mapping[str, Any]) -> str:
    lines = [render_table(
        [("ranking (held-out requests)", "left"), ("pairwise_acc", "right"), ("ndcg@10", "right")],
        ([name, f"{values['pairwise_accuracy']:.4f}", f"{values['ndcg_at_10']:.4f}"]
         for name, values in report["metrics"].items()),
    )]
    lines.append(f"{report['held_out_requests']} requests, {report['held_out_lines']} lines; "
                 f"targets: pairwise accuracy {PAIRWISE_TARGET}, NDCG@10 {NDCG10_TARGET}")
    return "\n".join(lines)


def online_records(metrics: OnlineMetrics, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Engagements and negatives per impression, author diversity, out-of-network share and cold-start
    exposure for every policy in `metrics`."""
    records = []
    for policy in metrics.policies():
        total = metrics.total(policy)
        windows = metrics.windows(policy)
        detail = {**params, "policy": policy, "requests": total.requests, "impressions": total.impressions,
                  "windows": len(windows),
                  # over time (the online policy learns while it serves): its first and last window
                  "first_window_engagements_per_impression": round(windows[0].engagements_per_impression, 6)
                  if windows else None,
                  "last_window_engagements_per_impression": round(windows[-1].engagements_per_impression, 6)
                  if windows else None}
        if "@" in policy:  # phoenix-trained@<pipeline preset> (foryou demo --compare-presets)
            detail["pipeline_preset"] = policy.split("@", 1)[1]
        records.append(record("world.engagements_per_impression", "engagements_per_impression",
                              total.engagements_per_impression, "ratio", **detail))
        records.append(record("world.negatives_per_impression", "negatives_per_impression",
                              total.negatives_per_impression, "ratio", **detail))
        records.append(record("world.author_diversity", "distinct_authors_per_post", total.author_diversity,
                              "ratio", **detail))
        records.append(record("world.out_of_network_share", "out_of_network_share", total.out_of_network_share,
                              "ratio", **detail))
        records.append(record("world.cold_start_share", "fresh_small_author_share", total.cold_start_share,
                              "ratio", **detail))
    return records


def ranking_records(report: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    trained = RankingMetrics(**report["metrics"]["trained"])
    detail = {**params, "policy": "phoenix-trained", "checkpoint_version": report["version"],
              "held_out_requests": trained.groups, "pairs": trained.pairs,
              "references": {name: values["pairwise_accuracy"] for name, values in report["metrics"].items()}}
    return [
        record("world.pairwise_accuracy_vs_truth", "pairwise_accuracy", trained.pairwise_accuracy, "ratio",
               target=PAIRWISE_TARGET, **detail),
        record("world.ndcg10_vs_truth", "ndcg_at_10", trained.ndcg_at_10, "ratio", target=NDCG10_TARGET,
               **detail),
    ]
