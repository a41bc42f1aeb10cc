"""Does two-tower retrieval find what a user would value most among the live posts? Measured in the world.

For a sample of users at a time `now` (default: the world's end), the ground truth's expected value
(`GroundTruth.expected_value` under the pipeline's weights) ranks every live post (created in the last
`window` before now and not deleted, not the user's own); its top k is the target. The model's user tower
(over the user's history in the engagement log, strictly before now) and candidate tower (over every live
post, with its content when the checkpoint reads content, from the world's posts file) give the model's
top k. recall@k is the share of the truth's top k found in the model's top k; a random top k finds k / N
of it in expectation, which is reported beside it (measured with a seeded random order).

Fresh posts are the point: every live post is younger than the window, so any post created after the
training log ends was never seen in training, and only its content can make it findable by topic.
"""

from pathlib import Path
from typing import Any

import numpy as np

from foryou.world.config import HOUR_MS
from foryou.world.evaluate import pipeline_weights
from foryou.world.offline import posts_records
from foryou.world.truth import GroundTruth
from foryou.world.world import World


def retrieval_recall_vs_truth(
    world: World,
    checkpoint: str | Path,
    log_path: str | Path,
    *,
    users: int = 200,
    k: int = 100,
    window_ms: int = 48 * HOUR_MS,
    now_ms: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    import jax

    from phoenix.batch import make_batch
    from phoenix.checkpoint import load_checkpoint
    from phoenix.evaluate import embed_posts
    from phoenix.examples import HistoryIndex
    from phoenix.log import read_log
    from phoenix.model import user_embedding
    from phoenix.posts import content_for_model

    ckpt = load_checkpoint(checkpoint)
    cfg, params = ckpt.cfg, jax.device_put(ckpt.params)
    now = world.config.end_ms if now_ms is None else now_ms
    post_ids = world.post_ids()
    created = world.created_ms(post_ids)
    deleted = world.posts.deleted_ms
    live = post_ids[(created <= now) & (created > now - window_ms) & (deleted > now)]
    authors = world.author_ids(live)
    content = content_for_model(cfg, ckpt.codebooks, posts_records(world)) if cfg.has_content else None
    corpus = embed_posts(params, cfg, live, authors, content)  # [N, R]
    history = HistoryIndex(read_log(log_path))
    rng = np.random.default_rng(seed)
    sample = rng.choice(world.user_ids(), size=min(users, world.num_users), replace=False)
    truth = GroundTruth(world)
    weights = pipeline_weights()
    embed_user = jax.jit(lambda p, batch: user_embedding(p, cfg, batch))
    model_recall, random_recall = [], []
    for user in sample.tolist():
        values = truth.expected_value(np.full(live.size, user), live, now, weights)
        own = authors == user
        values[own] = -np.inf
        target = set(live[np.argsort(-values, kind="stable")[:k]].tolist())
        batch = make_batch(cfg, [user], [history.history(user, now, cfg.history_len)], [[]], content=content)
        scores = corpus @ np.asarray(embed_user(params, batch))[0]
        scores[own] = -np.inf
        model_recall.append(len(target & set(live[np.argsort(-scores, kind="stable")[:k]].tolist())) / k)
        shuffled = rng.permutation(np.flatnonzero(~own))[:k]
        random_recall.append(len(target & set(live[shuffled].tolist())) / k)
    return {
        "checkpoint": str(checkpoint),
        "version": ckpt.version,
        "content": cfg.has_content,
        "live_posts": int(live.size),
        "users": int(sample.size),
        "k": k,
        "recall": {"model": float(np.mean(model_recall)), "random": float(np.mean(random_recall))},
    }


def retrieval_records(report: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """`world.retrieval_recall100_vs_truth` for the trained model and the random reference."""
    from foryou.benchmarks import record

    detail = {**params, "live_posts": report["live_posts"], "users": report["users"], "content": report["content"]}
    name = f"world.retrieval_recall{report['k']}_vs_truth"
    return [
        record(name, f"recall_at_{report['k']}", report["recall"]["model"], "ratio", None, policy="phoenix-trained",
               checkpoint_version=report["version"], **detail),
        record(name, f"recall_at_{report['k']}", report["recall"]["random"], "ratio", None, policy="random", **detail),
    ]
