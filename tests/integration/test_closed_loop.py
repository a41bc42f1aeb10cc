"""A short closed loop over the real broker: a worker serves feeds of a replayed world, simulated users read
them, and their engagements flow back through engagement-events into the worker."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from foryou.processes import WorkerProcess
from foryou.world.client import ClientBehaviour
from foryou.world.config import HOUR_MS, preset
from foryou.world.experiment import (
    policy_specs,
    replay,
    start_worker,
    wait_ingested,
    world_anchor,
    world_stream,
)
from foryou.world.kafka_io import AnswerReader, EventProducer
from foryou.world.loop import ClosedLoop, LoopConfig
from foryou.world.metrics import OnlineMetrics
from foryou.world.world import World
from tests.integration.helpers import eventually, metric_value


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(preset("tiny", seed=11, num_users=120, num_posts=1_500))


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    reverse_chron = policy_specs(None)[0]
    process = start_worker(kafka_bootstrap, reverse_chron, Path(tmp_path_factory.mktemp("closed-loop")))
    yield process
    process.stop()


def test_served_feeds_produce_engagements_that_reach_the_worker(
    kafka_bootstrap: str, world: World, worker: WorkerProcess
) -> None:
    shift = world_anchor(world)
    counts = replay(kafka_bootstrap, world_stream(world, shift, 12 * HOUR_MS))
    worker.wait_ready(120)
    wait_ingested(worker, kafka_bootstrap, timeout_s=120)
    # The worker started at the broker's end offsets: it holds this replay's live posts and nothing older.
    status = worker.status() or {}
    assert 0 < status["posts"] <= counts["tweet-events"]

    behaviour = ClientBehaviour(world)
    rng = np.random.default_rng(0)
    states = {int(u): behaviour.initial_state(rng, int(u), 0) for u in world.user_ids()}
    metrics = OnlineMetrics(window_ms=10_000)
    answers = AnswerReader(kafka_bootstrap)
    try:
        loop = ClosedLoop(world=world, behaviour=behaviour, answers=answers, producer=EventProducer(kafka_bootstrap),
                          shift=shift, metrics=metrics, policy="reverse-chron",
                          config=LoopConfig(batch_size=16, duration_s=12, answer_timeout_s=20))
        result = loop.run(states)
    finally:
        answers.close()

    stats = result.stats
    assert stats.answered == stats.requests > 0 and stats.errors == 0
    total = metrics.total("reverse-chron")
    assert total.impressions > 0 and total.out_of_network_share == 0.0  # reverse-chron serves the follow graph
    assert result.engagements, "users engaged with nothing they were served"
    assert metrics.unattributed == 0  # every engagement is on a post the worker served to that user
    served_users = {impression.user_id for impression in result.impressions}
    assert {event["user_id"] for event in result.engagements} <= served_users

    sent = len(result.engagements)
    history = counts.get("engagement-events", 0)
    eventually(lambda: metric_value(worker, "foryou_records_ingested_total", topic="engagement-events")
               >= history + sent, timeout_s=60)
