"""`foryou trainer` over the real broker: it continues an offline checkpoint that reads post content (its
config, codebooks and content inputs), joins a worker's impressions with engagements, trains, and publishes
a checkpoint that the worker hot-reloads."""

import dataclasses
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
import pytest
from confluent_kafka import KafkaException
from prometheus_client.parser import text_string_to_metric_families

from foryou.client import FeedClient
from foryou.processes import TrainerProcess, WorkerProcess
from foryou.world.kafka_io import commit_offsets, end_offsets, ensure_public_topics
from phoenix import semantic_ids
from phoenix.checkpoint import load_checkpoint, save_checkpoint
from phoenix.config import DEMO
from phoenix.content import load_encoder
from phoenix.model import init_params
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, wait_for_posts
from tests.test_compose_and_dashboard import TRAINER_PREFIX, dashboard_metric_names, registered_sample_names
from topics.specs import ENGAGEMENT_EVENTS, IMPRESSIONS


@pytest.fixture(scope="module")
def app_id() -> str:
    return f"foryou-test-trainer-{uuid.uuid4().hex[:8]}"


def content_checkpoint(path: Path) -> np.ndarray:
    """An offline-style checkpoint of the demo config with content inputs (semantic IDs 2 x 8, affinity);
    returns its codebooks."""
    encoder = load_encoder()
    texts = [f"{word} post {i}" for i, word in enumerate(["bread", "football", "election", "guitar"] * 16)]
    codebooks = semantic_ids.fit_codebooks(encoder.encode(texts, ["none"] * len(texts)), levels=2, size=8, seed=0)
    cfg = dataclasses.replace(
        DEMO, content_dim=encoder.dim, semantic_id_levels=2, semantic_id_size=8, content_encoder=encoder.encoder_id,
        affinity_buckets=16,
    )
    save_checkpoint(path, jax.device_get(init_params(cfg, jax.random.PRNGKey(1))), cfg, {"offline": True},
                    codebooks=codebooks)
    return codebooks


@pytest.fixture(scope="module")
def trainer(kafka_bootstrap: str, app_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainerProcess]:
    folder = tmp_path_factory.mktemp("trainer")
    ensure_public_topics(kafka_bootstrap)
    from agents.topology import ensure_topics
    from foryou.settings import Settings

    for _ in ensure_topics(Settings(bootstrap=kafka_bootstrap, app_id=app_id, partitions=4)):
        pass  # the post log the trainer tails
    # Like a worker of a new group, the trainer starts at the current end (earlier tests' impressions are not its).
    offsets = end_offsets(kafka_bootstrap, (IMPRESSIONS, ENGAGEMENT_EVENTS))

    def committed() -> bool:
        try:  # a fresh broker on a loaded machine may time out while it creates its offsets topic
            commit_offsets(kafka_bootstrap, f"{app_id}-trainer", offsets, timeout_s=60)
        except (KafkaException, TimeoutError):
            return False
        return True

    eventually(committed, timeout_s=300, interval_s=2.0)
    content_checkpoint(folder / "offline.ckpt")
    process = TrainerProcess(
        bootstrap=kafka_bootstrap, app_id=app_id, checkpoint=folder / "online.ckpt", log_path=folder / "trainer.log",
        args=["--window-s", "3", "--publish-every-s", "5", "--batch-size", "8", "--passes", "4",
              "--init", str(folder / "offline.ckpt")],
    ).start()
    process.wait_published(timeout_s=300)
    process.wait_ready(timeout_s=900)  # its programs compiled (minutes on a loaded 2-core machine)
    yield process
    process.stop()


class ScrapedRegistry:
    """Scraped text seen as a registry (what registered_sample_names reads)."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))

    def collect(self) -> list:
        return self.families


def params_digest(version: str) -> str:
    return version.rsplit("-", 1)[-1]


def served_version(worker: WorkerProcess) -> str:
    versions = [series for series in worker.metrics_text().splitlines() if series.startswith("foryou_model_info{")]
    assert len(versions) == 1, versions
    return re.search(r'version="([^"]+)"', versions[0]).group(1)  # type: ignore[union-attr]


def published_version(trainer: TrainerProcess) -> str | None:
    for series in trainer.metrics():
        match = re.fullmatch(r'foryou_trainer_model_info\{version="([^"]+)"\}', series)
        if match:
            return match.group(1)
    return None


def test_trainer_learns_from_served_feeds_and_the_worker_loads_its_checkpoint(
    start_worker: StartWorker, trainer: TrainerProcess, client: FeedClient, app_id: str, ids: Iterator[int]
) -> None:
    worker = start_worker(app_id=app_id, FORYOU_CHECKPOINT=str(trainer.checkpoint))
    first = eventually(lambda: published_version(trainer), timeout_s=120, explain=trainer.tail)
    # The worker serves the trainer's starting point (a version names the time and the params' digest; the
    # trainer republishes the same params until it has trained).
    assert params_digest(served_version(worker)) == params_digest(first)

    users = [next(ids) for _ in range(6)]
    authors = [next(ids) for _ in range(4)]
    posts = [(next(ids), authors[i % 4]) for i in range(12)]
    for user in users:
        for author in authors:
            client.follow(user, author)
    now = int(time.time() * 1000)
    for offset, (post_id, author) in enumerate(posts):
        client.post(post_id, author, created_at_ms=now - 60_000 + offset, text=f"post {offset}")
    client.flush()
    wait_for_posts(worker, [post_id for post_id, _ in posts])

    served = 0
    for round_ in range(4):  # 24 requests: 24 examples, 12 steps of 8 at 4 passes
        for user in users:
            answer = client.request(user, max_results=6, timeout_s=120)
            assert answer["status"] == "ok", answer
            served += len(answer["posts"])
            for post in answer["posts"][: 1 + (user + round_) % 3]:  # engage with some of what was served
                client.engage(user, post["post_id"], post["author_id"], "favorite")
    client.flush()
    assert served > 0

    def trained() -> bool:
        samples = trainer.metrics()
        steps = samples.get("foryou_trainer_steps_total", 0)
        return steps > 0 and samples.get("foryou_trainer_checkpoints_total", 0) >= 2

    eventually(trained, timeout_s=240, interval_s=1.0, explain=trainer.tail)
    samples = trainer.metrics()
    assert samples['foryou_trainer_lines_total{label="positive"}'] > 0
    assert samples['foryou_trainer_lines_total{label="negative"}'] > 0  # served, not engaged within the window
    assert samples["foryou_trainer_records_total{topic=\"impressions\"}"] >= served
    assert 0.0 <= samples["foryou_trainer_window_auc"] <= 1.0
    assert samples["foryou_trainer_checkpoint_age_seconds"] < 60
    # Every trainer metric the dashboard's Trainer row queries is on the trainer's /metrics.
    exported = registered_sample_names(ScrapedRegistry(trainer.metrics_text()))
    queried = {name for name in dashboard_metric_names() if name.startswith(TRAINER_PREFIX)}
    assert queried and queried <= exported, sorted(queried - exported)

    # The worker hot-reloads a checkpoint published after training (its reload timer runs every 10 s): new
    # params, which only the trainer writes to that path.
    def worker_serves_trained_params() -> str | None:
        version = served_version(worker)
        return version if params_digest(version) != params_digest(first) else None

    eventually(worker_serves_trained_params, timeout_s=180, interval_s=1.0, explain=trainer.tail)

    def answered_with_the_served_model() -> bool:
        answer = client.request(users[0], max_results=6, timeout_s=60)
        return answer["status"] == "ok" and answer["model"] == served_version(worker)

    eventually(answered_with_the_served_model, timeout_s=60, interval_s=1.0)
    # The file on the path is always a whole checkpoint (temp file, then rename), even while it publishes. It
    # continues the offline one: same config (content inputs), same codebooks, the served posts' content read
    # from the post log.
    published = load_checkpoint(trainer.checkpoint)
    offline = load_checkpoint(trainer.checkpoint.parent / "offline.ckpt")
    assert published.meta["online"] is True
    assert published.cfg == offline.cfg and published.cfg.has_content
    assert np.array_equal(published.codebooks, offline.codebooks)
    assert published.meta["content_posts"] >= len(posts)
