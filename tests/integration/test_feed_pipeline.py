"""The full For You pipeline behind the worker: Phoenix scores, the weights order, explain tells why."""

import time

import numpy as np
import pytest

from foryou.client import FeedClient
from foryou.processes import WorkerProcess
from tests.integration.conftest import StartWorker
from tests.integration.helpers import wait_for_posts, worker_json
from topics.actions import PHOENIX_ACTIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker) -> WorkerProcess:
    # An untrained but seeded Phoenix gives every post its own predictions; a heavy block weight makes the
    # ranking follow the predicted block probability, which is what this module checks end to end.
    # The January preset: its OON factor 0.8 and no cold-start lift (test_presets.py covers the other).
    return start_worker(
        FORYOU_POLICY="phoenix", FORYOU_PRESET="seed-2026-01", FORYOU_WEIGHTS_BLOCK_AUTHOR="-1000000.0"
    )


def test_explained_feed_ranks_in_and_out_of_network_posts_and_sinks_likely_blocks(
    worker: WorkerProcess, client: FeedClient, ids: iter
) -> None:
    user = next(ids)
    followed = [next(ids) for _ in range(8)]
    strangers = [next(ids) for _ in range(8)]
    now = int(time.time() * 1000)
    posts = {}
    for i, author in enumerate(followed + strangers):
        post = next(ids)
        posts[post] = author
        client.post(post, author, created_at_ms=now - 1_000 * (i + 1), text=f"post {i}")
    for author in followed:
        client.follow(user, author)
    client.flush()
    wait_for_posts(worker, posts)

    answer = client.request(user, explain=True, max_results=50, timeout_s=60)
    assert answer["status"] == "ok", answer
    assert answer["model"].startswith("untrained-")
    served = answer["posts"]
    assert {p["post_id"] for p in served} <= set(posts)
    in_network = {p["post_id"] for p in served if p["in_network"]}
    assert in_network == {p for p, a in posts.items() if a in followed}
    assert any(not p["in_network"] for p in served), "retrieval brought no out-of-network post"

    for post in served:
        explain = post["explain"]
        assert set(explain["probabilities"]) == set(PHOENIX_ACTIONS)  # an untrained model has the 19 heads
        assert all(0.0 <= v <= 1.0 for v in explain["probabilities"].values())
        assert explain["oon_multiplier"] == (1.0 if post["in_network"] else pytest.approx(0.8))
    scores = [p["score"] for p in served]
    assert scores == sorted(scores, reverse=True)
    # With block_author weighted -1e6, the weighted score falls as the predicted block probability rises.
    block = [p["explain"]["probabilities"]["block_author"] for p in served if p["in_network"]]
    assert block == sorted(block), "posts more likely to be blocked must rank lower"

    stages = {(s["kind"], s["name"]): s for s in answer["explain"]["stages"]}
    kinds = {kind for kind, _ in stages}
    assert {"source", "filter", "scorer", "selector"} <= kinds
    sources = {name: s["out"] for (kind, name), s in stages.items() if kind == "source"}
    assert sum(sources.values()) >= len(served)
    assert all(s["ms"] >= 0 for s in stages.values())


def test_posts_get_content_vectors_at_ingest_and_a_repost_shares_its_originals(
    worker: WorkerProcess, client: FeedClient, ids: iter
) -> None:
    author = next(ids)
    texts = {
        next(ids): "The striker scored a late goal to win the league match",
        next(ids): "Coach praises the team after the playoff victory at the stadium",
        next(ids): "Senate debate on election policy heats up before the ballot",
    }
    now = int(time.time() * 1000)
    for i, (post, text) in enumerate(texts.items()):
        client.post(post, author, created_at_ms=now - 1_000 * (i + 2), text=text)
    football, other_football, election = texts
    client.flush()
    # A repost takes its original's vector when the original is already stored (posts reach the post log
    # through different partitions, so a repost read first keeps its own).
    wait_for_posts(worker, list(texts))
    repost = next(ids)
    client.post(repost, next(ids), created_at_ms=now - 500, repost_of_post_id=football, repost_of_user_id=author)
    client.flush()
    wait_for_posts(worker, [repost])
    vectors = {post: np.array(worker_json(worker, f"/inspect/post/{post}")[1]["content_vector"]) for post in texts}
    repost_vector = np.array(worker_json(worker, f"/inspect/post/{repost}")[1]["content_vector"])
    np.testing.assert_array_equal(repost_vector, vectors[football])
    assert vectors[football] @ vectors[other_football] > vectors[football] @ vectors[election]
