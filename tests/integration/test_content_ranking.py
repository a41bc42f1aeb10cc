"""A worker serving a checkpoint trained with content: vectors computed at ingest reach the ranker (history,
candidates, retrieval corpus) and every stage runs; nothing degrades to the reverse-chron fallback."""

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from foryou.client import FeedClient
from foryou.processes import WorkerProcess
from phoenix.checkpoint import save_checkpoint
from phoenix.config import DEMO
from phoenix.content import CONTENT_DIM, ENCODER_ID
from phoenix.model import init_params
from tests.integration.conftest import StartWorker
from tests.integration.helpers import wait_for_posts

pytestmark = pytest.mark.slow

CONFIG = dataclasses.replace(
    DEMO, name="content-test", content_dim=CONTENT_DIM, semantic_id_levels=2, semantic_id_size=8,
    content_encoder=ENCODER_ID, affinity_buckets=8,
)


@pytest.fixture(scope="module")
def worker(start_worker: StartWorker, tmp_path_factory: pytest.TempPathFactory) -> WorkerProcess:
    checkpoint = Path(tmp_path_factory.mktemp("content")) / "content.ckpt"
    codebooks = np.random.default_rng(0).standard_normal((2, 8, CONTENT_DIM)).astype(np.float32) * 0.1
    params = jax.device_get(init_params(CONFIG, jax.random.PRNGKey(0)))
    # The affinity table starts at zero; random rows make the test see affinity reach the scores too.
    params["phoenix"]["affinity_table"] = np.random.default_rng(1).standard_normal((2, 8, DEMO.emb_size)).astype(
        np.float32
    )
    save_checkpoint(checkpoint, params, CONFIG, {"note": "content integration test"}, codebooks=codebooks)
    return start_worker(FORYOU_POLICY="phoenix", FORYOU_CHECKPOINT=str(checkpoint))


def test_a_content_model_ranks_with_ingested_content(worker: WorkerProcess, client: FeedClient, ids: iter) -> None:
    user = next(ids)
    followed, stranger = next(ids), next(ids)
    now = int(time.time() * 1000)
    liked = next(ids)
    client.post(liked, followed, created_at_ms=now - 60_000, text="The striker scored a late goal", media="photo")
    posts = {liked: followed}
    texts = ["Coach praises the team after the playoff win", "Senate debate on election policy",
             "My sourdough recipe needs patience", "The rover found signs of water on Mars"]
    for i, text in enumerate(texts):
        for author in (followed, stranger):
            post = next(ids)
            posts[post] = author
            client.post(post, author, created_at_ms=now - 1_000 * (i + 1), text=text)
    client.follow(user, followed)
    client.flush()
    wait_for_posts(worker, posts)
    client.engage(user, liked, followed, "favorite")
    client.flush()
    time.sleep(2)  # the engagement reaches the user's action sequence

    answer = client.request(user, explain=True, max_results=20, timeout_s=60)
    assert answer["status"] == "ok", answer
    assert answer["model"].startswith("content-test-"), answer["model"]
    assert answer["explain"]["degraded"] == [], answer["explain"]["degraded"]
    served = {p["post_id"] for p in answer["posts"]}
    assert any(not p["in_network"] for p in answer["posts"]), "retrieval over the content corpus found nothing"
    assert served <= set(posts)
