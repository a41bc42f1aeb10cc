"""A checkpoint that cannot be read neither stops a worker nor replaces the model it serves."""

from collections.abc import Iterator
from pathlib import Path

import jax
import pytest

from foryou.client import FeedClient
from phoenix.checkpoint import save_checkpoint
from phoenix.config import DEMO
from phoenix.model import init_params
from tests.integration.conftest import StartWorker
from tests.integration.helpers import eventually, metric_value, wait_for_posts

pytestmark = pytest.mark.slow


def failures(worker: object, when: str) -> float:
    return metric_value(worker, "foryou_model_load_failures_total", when=when)


def test_a_truncated_checkpoint_is_refused_at_start_and_on_reload_and_the_worker_serves_on(
    start_worker: StartWorker, client: FeedClient, ids: Iterator[int], tmp_path: Path
) -> None:
    path = tmp_path / "phoenix.npz"
    params = init_params(DEMO, jax.random.PRNGKey(1))
    save_checkpoint(path, params, DEMO, {"step": 1})
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # as a copy cut short leaves it

    worker = start_worker(FORYOU_POLICY="phoenix", FORYOU_CHECKPOINT=str(path), ready=False)
    worker.wait_ready(600)  # it starts, on its fallback model
    assert failures(worker, "start") == 1
    assert worker.status()["model"].startswith("untrained")
    user, author, post = next(ids), next(ids), next(ids)
    client.follow(user, author)
    client.post(post, author)
    client.flush()
    wait_for_posts(worker, [post])
    answer = client.request(user, timeout_s=120)
    assert answer["status"] == "ok" and answer["model"].startswith("untrained"), answer

    # A good checkpoint written there later is swapped in ...
    version = save_checkpoint(path, params, DEMO, {"step": 2})
    eventually(lambda: worker.status()["model"] == version, timeout_s=300)
    # ... and a bad one after it is refused, once: the model in use stays.
    path.write_bytes(good[:100])
    eventually(lambda: failures(worker, "reload") == 1, timeout_s=120)
    answer = client.request(user, timeout_s=120)
    assert answer["status"] == "ok" and answer["model"] == version, answer
    assert worker.status()["model"] == version and failures(worker, "reload") == 1
    assert failures(worker, "start") == 1
    worker.stop()
